"""Numbers and plots for `snakemake --report`; the logic lives in glan.dataset.report."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

from glan.dataset import report
from glan.dataset.accounting import run_stats
from glan.io import iter_jsonl, read_json, write_json
from glan.logs import setup_logging

setup_logging(snakemake.log[0])
inputs, outputs = snakemake.input, snakemake.output
summary = report.summarise(
    raw=iter_jsonl(inputs.raw),
    splits={"train": iter_jsonl(inputs.train), "test": iter_jsonl(inputs.test)},
    duplicates=iter_jsonl(inputs.duplicates),
    contamination=read_json(inputs.contamination),
    accounting=read_json(inputs.accounting),
    run=run_stats(list(inputs.logs)),
)
write_json(outputs.stats, summary)
report.summary_html(summary, outputs.summary)
report.plot_records(summary, outputs.fields, outputs.disciplines)
report.plot_mix(summary, outputs.mix)
report.plot_lengths(summary, outputs.lengths)
report.plot_cost(summary, outputs.cost)
report.plot_removed(summary, outputs.removed)
