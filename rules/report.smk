from glan.stages import active


rule accounting:
    input:
        usage=USAGE,
    output:
        "results/report/accounting.json",
    log:
        "logs/report/accounting.log",
    benchmark:
        "benchmarks/report/accounting.tsv"
    params:
        prices=config_slice(config, "prices"),
    run:
        step("accounting", input, output, params, log, wildcards)


rule plots:
    input:
        facts=FACTS,
        records=NODE_RECORDS,
        removed=REMOVED_BY["export"],
        # the split is the export's (glan.dataset.export.held_out), counted from the facts
        manifest=rules.export.output.manifest,
        duplicates="results/clean/duplicates.jsonl",
        contamination="results/clean/contamination.json",
        accounting="results/report/accounting.json",
        # the judge filter's scores and removals, with the judge on
        judge=rules.judge_filter.output.report if JUDGE else [],
        # each stage job's counts (planned, cached, sent, rejected, ...): the cache hit rate
        counts=expand(
            "logs/{node}/{stage}.counts.json", node=NODES, stage=active(config)
        ),
    output:
        stats="results/report/stats.json",
        summary=report(
            "results/report/summary.html",
            caption="../report/summary.rst",
            category="1. Overview",
            labels={"plot": "Key numbers"},
        ),
        fields=report(
            "results/report/records_per_field.png",
            caption="../report/records.rst",
            category="2. Dataset",
            labels={"plot": "1. Records per field"},
        ),
        disciplines=report(
            "results/report/records_per_discipline.png",
            caption="../report/records.rst",
            category="2. Dataset",
            labels={"plot": "2. Records per discipline"},
        ),
        mix=report(
            "results/report/mix.png",
            caption="../report/mix.rst",
            category="2. Dataset",
            labels={"plot": "3. Difficulty and strategy mix"},
        ),
        lengths=report(
            "results/report/lengths.png",
            caption="../report/lengths.rst",
            category="2. Dataset",
            labels={"plot": "4. Question and answer lengths"},
        ),
        removed=report(
            "results/report/removed.png",
            caption="../report/removed.rst",
            category="3. Cleaning",
            labels={"plot": "Records removed and rejected replies"},
        ),
        cost=report(
            "results/report/cost.png",
            caption="../report/cost.rst",
            category="4. Cost",
            labels={"plot": "Tokens and cost per stage"},
        ),
    log:
        "logs/report/plots.log",
    benchmark:
        "benchmarks/report/plots.tsv"
    params:
        split={
            k: config["export"][k]
            for k in ("max_test_share", "seed", "test_per_discipline")
        },
    run:
        step("plots", input, output, params, log, wildcards)


rule judge_scores:
    input:
        rules.plots.output.stats,
    output:
        report(
            "results/report/judge_scores.png",
            caption="../report/judge.rst",
            category="3. Cleaning",
            labels={"plot": "Judge scores"},
        ),
    log:
        "logs/report/judge_scores.log",
    benchmark:
        "benchmarks/report/judge_scores.tsv"
    run:
        step("judge_scores", input, output, params, log, wildcards)
