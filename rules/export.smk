rule export:
    input:
        facts=FACTS,
        records=NODE_RECORDS,
        removed=REMOVED_BY["export"],
        duplicates="results/clean/duplicates.jsonl",
        contamination="results/clean/contamination.json",
        accounting="results/report/accounting.json",
        judge=rules.judge_filter.output.report if JUDGE else [],
        taxonomy=config["taxonomy"],
    # The shards (results/export/hf/data/{split}-NNNNN-of-MMMMM.parquet, results/export/jsonl/ the same way)
    # are not outputs: Snakemake would delete them before the rule runs, and the rule keeps those whose
    # records did not change (glan/dataset/shards.py). The manifest lists them.
    output:
        card="results/export/hf/README.md",
        manifest="results/export/shards.json",
    log:
        "logs/export.log",
    benchmark:
        "benchmarks/export.tsv"
    params:
        settings=config_slice(config, "export"),
    run:
        step("export", input, output, params, log, wildcards)
