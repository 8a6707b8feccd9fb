rule dataset:
    input:
        NODE_RECORDS,
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
