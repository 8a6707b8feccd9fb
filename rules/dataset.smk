rule dataset:
    input:
        expand("results/nodes/{node}/answers.jsonl", node=NODES),
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
