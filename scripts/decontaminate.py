"""Remove records that contain benchmark texts; the logic lives in glan.dataset.clean."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

import logging

from glan.dataset.clean import decontaminate, sift
from glan.dataset.composition import Composition, removed_ids
from glan.io import write_json
from glan.logs import setup_logging

setup_logging(snakemake.log[0])
source = Composition(snakemake.input.facts, snakemake.input.records, removed_ids(snakemake.input.removed))
removals, report = decontaminate(source, snakemake.params.settings)
sift(removals, snakemake.output.removed)
write_json(snakemake.output.report, report)
log = logging.getLogger("glan")
log.info("decontaminate: %(records_in)d records in, %(records_out)d kept", report)
for benchmark in report["benchmarks"]:
    log.info("decontaminate: %(name)s: %(texts)d texts, %(matched)d records matched, %(removed)d removed", benchmark)
