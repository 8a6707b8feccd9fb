"""Numbers and plots for `snakemake --report`; the logic lives in the glan.dataset.report package."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

import pyarrow.parquet as pq

from glan.dataset.accounting import run_stats
from glan.dataset.composition import Composition, record_id, removed_ids
from glan.dataset.report.html import summary_html
from glan.dataset.report.numbers import summarise
from glan.dataset.report.plots import plot_cost, plot_lengths, plot_mix, plot_records, plot_removed
from glan.io import iter_jsonl, iter_lines, read_json, write_json
from glan.logs import setup_logging

setup_logging(snakemake.log[0])
inputs, outputs = snakemake.input, snakemake.output
removed = removed_ids(inputs.removed)
test = {record_id(line) for line in iter_lines(inputs.test)}
splits = {
    "train": Composition(inputs.facts, inputs.train, removed=removed | test),
    "test": Composition(inputs.facts, inputs.test, removed=removed, only=test),
}
summary = summarise(
    generated=sum(pq.read_metadata(path).num_rows for path in inputs.facts),
    splits={name: (part.fact(i) for part in split.parts() for i in range(len(part))) for name, split in splits.items()},
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
