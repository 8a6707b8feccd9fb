from glan.config import config_slice


# With the judge on, records graded below clean.judge's minimums go first: a low-scored first copy
# of a question must not make dedup drop a later, better one.
rule judge_filter:
    input:
        "results/dataset.jsonl",
    output:
        kept="results/clean/graded.jsonl",
        removed="results/clean/low_scores.jsonl",
        report="results/clean/judge.json",
    log:
        "logs/clean/judge_filter.log",
    benchmark:
        "benchmarks/clean/judge_filter.tsv"
    conda:
        "../envs/glan.yaml"
    params:
        settings=config_slice(config, "clean", "judge"),
    script:
        "../scripts/judge_filter.py"


rule dedup:
    input:
        rules.judge_filter.output.kept if JUDGE else "results/dataset.jsonl",
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
