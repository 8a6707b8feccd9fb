from glan.config import config_slice


rule dedup:
    input:
        "results/dataset.jsonl",
    output:
        kept="results/clean/deduplicated.jsonl",
        removed="results/clean/duplicates.jsonl",
    log:
        "logs/clean/dedup.log",
    benchmark:
        "benchmarks/clean/dedup.tsv"
    conda:
        "../envs/glan.yaml"
    params:
        settings=config_slice(config, "clean", "dedup"),
    script:
        "../scripts/dedup.py"


rule decontaminate:
    input:
        dataset="results/clean/deduplicated.jsonl",
        benchmarks=[b["path"] for b in config["clean"]["decontaminate"]["benchmarks"]],
    output:
        kept="results/clean/dataset.jsonl",
        removed="results/clean/contaminated.jsonl",
        report="results/clean/contamination.json",
    log:
        "logs/clean/decontaminate.log",
    benchmark:
        "benchmarks/clean/decontaminate.tsv"
    conda:
        "../envs/glan.yaml"
    params:
        settings=config_slice(config, "clean", "decontaminate"),
    script:
        "../scripts/decontaminate.py"
