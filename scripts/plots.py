"""Numbers and plots for `snakemake --report`; the logic lives in the glan.dataset.report package."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

import pyarrow.parquet as pq

from glan.dataset.accounting import run_stats
from glan.dataset.composition import Composition, NodeFacts, removed_ids
from glan.dataset.export import held_out
from glan.dataset.facts import REPORTED
from glan.dataset.report.html import summary_html
from glan.dataset.report.numbers import summarise
from glan.dataset.report.plots import plot_cost, plot_lengths, plot_mix, plot_records, plot_removed
from glan.io import iter_jsonl, read_json, write_json
from glan.logs import setup_logging

setup_logging(snakemake.log[0])
inputs, outputs = snakemake.input, snakemake.output
source = Composition(inputs.facts, inputs.records, removed_ids(inputs.removed))
split = [(part.node.number, part.rows, held_out(part, snakemake.params.split)) for part in source.parts()]


def tables(test: bool):
    """The counted columns of a split's records, a discipline at a time (the split is the export's)."""
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
