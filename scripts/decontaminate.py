"""Remove records that contain benchmark texts; the logic lives in glan.clean."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

import logging

from glan.clean import decontaminate
from glan.io import read_jsonl, write_json, write_jsonl
from glan.stages.run import setup_logging

setup_logging(snakemake.log[0])
records = read_jsonl(snakemake.input.dataset)
kept, removed, report = decontaminate(records, snakemake.params.settings)
write_jsonl(snakemake.output.kept, kept)
write_jsonl(snakemake.output.removed, removed)
write_json(snakemake.output.report, report)
log = logging.getLogger("glan")
log.info("decontaminate: %d records in, %d kept", len(records), len(kept))
for benchmark in report["benchmarks"]:
    log.info("decontaminate: %(name)s: %(texts)d texts, %(matched)d records matched, %(removed)d removed", benchmark)
