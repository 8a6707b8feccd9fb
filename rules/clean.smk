from glan.config import config_slice
from glan.dataset import FACTS_LAYOUT

BENCHMARKS = [b["path"] for b in config["clean"]["decontaminate"]["benchmarks"]]
FACTS = expand(node_file("facts.parquet"), node=NODES)
USAGE = expand(node_file("usage.json"), node=NODES)
# The cleaning steps' removal files in order; each whole-dataset step reads those of the steps before it.
REMOVALS = [
    *(["results/clean/low_scores.jsonl"] if JUDGE else []),
    "results/clean/duplicates.jsonl",
    "results/clean/contaminated.jsonl",
]
REMOVED_BY = {
    "dedup": REMOVALS[:-2],
    "decontaminate": REMOVALS[:-1],
    "export": REMOVALS,
}


# What the whole-dataset steps need of each record (folded question, MinHash, benchmark matches, usage
# of its replies, its Parquet row), computed per discipline: after an edit of one discipline only its
# facts are computed again, and dedup, decontaminate, accounting, export and plots only join them. The
# cleaning steps write what they remove; what stays is the facts less the removal files.
rule facts:
    input:
        records=node_file(RECORDS),
        benchmarks=BENCHMARKS,
    output:
        facts=node_file("facts.parquet"),
        usage=node_file("usage.json"),
    log:
        "logs/{node}/facts.log",
    benchmark:
        "benchmarks/{node}/facts.tsv"
    conda:
        "../envs/glan.yaml"
    params:
        settings={
            # a facts file of another layout is made again (a change of params re-runs the job)
            "layout": FACTS_LAYOUT,
            "dedup": config_slice(config, "clean", "dedup"),
            "decontaminate": config_slice(config, "clean", "decontaminate"),
            "cache_dir": config["cache_dir"],
        },
    script:
        "../scripts/step.py"


# With the judge on, records graded below clean.judge's minimums go first: a low-scored first copy
# of a question must not make dedup drop a later, better one.
rule judge_filter:
    input:
        facts=FACTS,
        records=NODE_RECORDS,
    output:
        removed="results/clean/low_scores.jsonl",
        report="results/clean/judge.json",
    log:
        "logs/clean/judge_filter.log",
    benchmark:
        "benchmarks/clean/judge_filter.tsv"
    params:
        settings=config_slice(config, "clean", "judge"),
    run:
        step("judge_filter", input, output, params, log, wildcards)


rule dedup:
    input:
        facts=FACTS,
        records=NODE_RECORDS,
        # what the steps before removed: with the facts, what the step's input holds (glan.dataset.composition)
        removed=REMOVED_BY["dedup"],
    output:
        removed="results/clean/duplicates.jsonl",
    log:
        "logs/clean/dedup.log",
    benchmark:
        "benchmarks/clean/dedup.tsv"
    params:
        settings=config_slice(config, "clean", "dedup"),
    run:
        step("dedup", input, output, params, log, wildcards)


rule decontaminate:
    input:
        facts=FACTS,
        records=NODE_RECORDS,
        removed=REMOVED_BY["decontaminate"],
        benchmarks=BENCHMARKS,
    output:
        removed="results/clean/contaminated.jsonl",
        report="results/clean/contamination.json",
    log:
        "logs/clean/decontaminate.log",
    benchmark:
        "benchmarks/clean/decontaminate.tsv"
    params:
        settings=config_slice(config, "clean", "decontaminate"),
    run:
        step("decontaminate", input, output, params, log, wildcards)
