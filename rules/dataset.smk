rule dataset:
    input:
        expand(node_file(STAGES["judge" if JUDGE else "answers"].output), node=NODES),
    output:
        "results/dataset.jsonl",
    log:
        "logs/dataset.log",
    benchmark:
        "benchmarks/dataset.tsv"
    conda:
        "../envs/glan.yaml"
    script:
        "../scripts/dataset.py"
