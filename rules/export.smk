rule export:
    input:
        dataset="results/clean/dataset.jsonl",
        facts=FACTS,
        removed=REMOVED_BY["export"],
        duplicates="results/clean/duplicates.jsonl",
        contamination="results/clean/contamination.json",
        accounting="results/report/accounting.json",
        judge=rules.judge_filter.output.report if JUDGE else [],
        taxonomy=config["taxonomy"],
    output:
        train="results/export/train.jsonl",
        test="results/export/test.jsonl",
        train_parquet="results/export/train.parquet",
        test_parquet="results/export/test.parquet",
        hf_train="results/export/hf/data/train.parquet",
        hf_test="results/export/hf/data/test.parquet",
        hf_card="results/export/hf/README.md",
    log:
        "logs/export.log",
    benchmark:
        "benchmarks/export.tsv"
    conda:
        "../envs/glan.yaml"
    params:
        settings=config_slice(config, "export"),
    script:
        "../scripts/export.py"
