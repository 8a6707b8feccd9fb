"""The whole-dataset steps as the workflow runs them: one function a rule, reading the job's files by the
names its rule gives them.

Why in one module, run inside Snakemake: a step that starts an interpreter of its own pays Python's start,
Snakemake's script preamble and its imports (pyarrow, datasketch, matplotlib) every time, and after an edit
those are most of what the steps cost. The rules after the facts run these functions in Snakemake's own
process (`run:`; profiles/default sets `force-use-threads`, so they run in its threads), where each module
is imported once; the per-discipline rules (facts, browse_node), which run many at once, start
scripts/step.py, which calls the same function. Imports are inside the functions: the Snakefile imports
this module, and `snakemake -n` should not pay for pyarrow.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from glan.io import ArtifactChanged

log = logging.getLogger("glan")


class Job(Protocol):
    """What a step reads of its Snakemake job: the `snakemake` object of a script, or a run block's names."""

    input: Any
    output: Any
    params: Any
    log: Any
    wildcards: Any


class StepFailed(RuntimeError):
    """A step's input is wrong in a way the person can fix: the message says what to change."""


def dataset(job: Job) -> None:
    from glan.dataset.join import concatenate

    with _said("dataset", ArtifactChanged):
        count = concatenate(list(job.input), job.output[0])
    log.info("dataset: %d records from %d disciplines", count, len(job.input))


def facts(job: Job) -> None:
    import orjson

    from glan.dataset import facts
    from glan.dataset.accounting import node_usage
    from glan.dataset.clean import Screen
    from glan.io import checked_lines
    from glan.llm.cache import open_cache

    settings = job.params.settings
    with _said("facts", ArtifactChanged):
        lines = checked_lines(job.input.records)
    records = [orjson.loads(line) for line in lines]
    screen = Screen(settings["decontaminate"])
    with open_cache(settings["cache_dir"]) as cache:
        usage = node_usage(records, cache)
    facts.write(job.output.facts, facts.compute(lines, records, settings, screen))
    facts.write_usage(job.output.usage, usage)
    log.info("facts: %d records of %s", len(records), job.wildcards.node)


def _source(job: Job, removed: bool = True):
    """The step's input: the disciplines' records through their facts, less what the steps before removed."""
    from glan.dataset.composition import Composition, removed_ids

    gone = removed_ids(job.input.removed) if removed else set()
    return Composition(job.input.facts, job.input.records, gone)


def judge_filter(job: Job) -> None:
    from glan.dataset.clean import judge_filter, sift
    from glan.io import write_json

    removals, report = judge_filter(_source(job, removed=False), job.params.settings)
    sift(removals, job.output.removed)
    write_json(job.output.report, report)
    log.info(
        "judge_filter: %(records_in)d records in, %(records_out)d kept, %(removed_low_score)d below the minimums, "
        "%(ungraded)d ungraded (%(removed_ungraded)d removed)",
        report["counts"],
    )


def dedup(job: Job) -> None:
    from glan.dataset.clean import deduplicate, sift

    counts = sift(deduplicate(_source(job), job.params.settings), job.output.removed)
    reasons = {r: counts[r] for r in ("exact-duplicate", "near-duplicate")}
    log.info("dedup: %d records in, %d kept, removed %s", counts.total(), counts["kept"], reasons)


def decontaminate(job: Job) -> None:
    from glan.dataset.clean import decontaminate, sift
    from glan.io import write_json

    removals, report = decontaminate(_source(job), job.params.settings)
    sift(removals, job.output.removed)
    write_json(job.output.report, report)
    log.info("decontaminate: %(records_in)d records in, %(records_out)d kept", report)
    for benchmark in report["benchmarks"]:
        log.info(
            "decontaminate: %(name)s: %(texts)d texts, %(matched)d records matched, %(removed)d removed", benchmark
        )


def accounting(job: Job) -> None:
    from glan.dataset.accounting import account
    from glan.dataset.facts import read_usage
    from glan.io import write_json

    result = account(map(read_usage, job.input.usage), job.params.prices)
    write_json(job.output[0], result)
    log.info("accounting: %s", result["totals"])


def export(job: Job) -> None:
    """The clean dataset's shards and card: glan.dataset.export and glan.dataset.shards."""
    from glan.dataset.export import write_exports
    from glan.io import iter_jsonl, read_json, write_json

    about = {
        "taxonomy": {
            "path": job.input.taxonomy,
            "sha256": hashlib.sha256(Path(job.input.taxonomy).read_bytes()).hexdigest(),
        },
        "duplicates": Counter(d["reason"] for d in iter_jsonl(job.input.duplicates)),
        "contamination": read_json(job.input.contamination),
        "accounting": read_json(job.input.accounting),
        **({"judge": read_json(job.input.judge)} if job.input.judge else {}),
    }
    shards = write_exports(_source(job), about, job.params.settings, Path(job.output.manifest).parent, job.output.card)
    written = shards.pop("written")
    write_json(job.output.manifest, shards)
    records: Counter = Counter()
    for shard in shards["shards"]:
        records[shard["split"]] += shard["records"]
    log.info(
        "export: train=%d test=%d in %d shards, %d written",
        records["train"],
        records["test"],
        len(shards["shards"]),
        len(written),
    )


def plots(job: Job) -> None:
    """The report's numbers and plots: glan.dataset.report. The split is the export's, from the facts."""
    import pyarrow.parquet as pq

    from glan.dataset.accounting import run_stats
    from glan.dataset.composition import NodeFacts
    from glan.dataset.export import held_out
    from glan.dataset.facts import REPORTED
    from glan.dataset.report.html import summary_html
    from glan.dataset.report.numbers import summarise
    from glan.dataset.report.plots import plot_cost, plot_lengths, plot_mix, plot_records, plot_removed
    from glan.io import iter_jsonl, read_json, write_json

    inputs, outputs = job.input, job.output
    split = [(part.node.number, part.rows, held_out(part, job.params.split)) for part in _source(job).parts()]

    def tables(test: bool) -> Iterator:
        for number, rows, held in split:
            yield NodeFacts(number, inputs.facts[number]).table(REPORTED, rows[held if test else ~held])

    summary = summarise(
        generated=sum(pq.read_metadata(path).num_rows for path in inputs.facts),
        splits={"train": tables(test=False), "test": tables(test=True)},
        duplicates=iter_jsonl(inputs.duplicates),
        contamination=read_json(inputs.contamination),
        accounting=read_json(inputs.accounting),
        run=run_stats(list(inputs.counts)),
        judge=read_json(inputs.judge) if inputs.judge else None,
    )
    write_json(outputs.stats, summary)
    summary_html(summary, outputs.summary)
    plot_records(summary, outputs.fields, outputs.disciplines)
    plot_mix(summary, outputs.mix)
    plot_lengths(summary, outputs.lengths)
    plot_cost(summary, outputs.cost)
    plot_removed(summary, outputs.removed)


def judge_scores(job: Job) -> None:
    from glan.dataset.report.plots import plot_judge
    from glan.io import read_json

    plot_judge(read_json(job.input[0]), job.output[0])


def browse_node(job: Job) -> None:
    from glan.dataset.browse import write_node

    write_node(Path(job.input.node).parent, Path(job.input.records).name, Path(job.output[0]))


def browse(job: Job) -> None:
    from glan.dataset.browse import write_page

    nodes = [Path(path).parent for path in job.input.syllabi]
    removed = map(Path, job.input.removed)
    write_page(nodes, removed, Path(job.input.accounting), Path(job.output.page).parent)


def browse_screenshot(job: Job) -> None:
    from glan.dataset.browse.screenshot import first_kept, take
    from glan.dataset.composition import Composition, removed_ids

    clean = Composition(job.input.facts, job.input.records, removed_ids(job.input.removals))
    take(job.params.browser, Path(job.input.page), first_kept(clean), Path(job.output[0]), Path(job.log[0]))


STEPS: dict[str, Callable[[Job], None]] = {
    step.__name__: step
    for step in (
        dataset,
        facts,
        judge_filter,
        dedup,
        decontaminate,
        accounting,
        export,
        plots,
        judge_scores,
        browse_node,
        browse,
        browse_screenshot,
    )
}


def run(rule: str, job: Job) -> None:
    """Run the step of `rule` with its log file taking what the `glan` logger says in this thread, ending
    with the process's peak RSS (in Snakemake's process, that of every step so far)."""
    from glan.logs import log_handler, peak_rss_mib

    handler = log_handler(job.log[0] if job.log else None)
    thread = threading.get_ident()
    handler.addFilter(lambda record: record.thread == thread)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        STEPS[rule](job)
        log.info("process peak RSS %d MiB", peak_rss_mib())
    except Exception:
        log.exception("%s failed", rule)
        raise
    finally:
        log.removeHandler(handler)
        handler.close()


@contextmanager
def _said(step: str, *errors: type[BaseException]) -> Iterator[None]:
    """`errors`, which say what to change, become one StepFailed line for the person (Snakemake's output)."""
    try:
        yield
    except errors as error:
        raise StepFailed(f"{step} failed: {error}") from error
