rule dataset:
    input:
        NODE_RECORDS,
    output:
        "results/dataset.jsonl",
    log:
        "logs/dataset.log",
    benchmark:
        "benchmarks/dataset.tsv"
    run:
        step("dataset", input, output, params, log, wildcards)
