"""Remove records that contain benchmark texts; the logic lives in glan.dataset.clean."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

import logging

from glan.dataset.clean import decontaminate, sift
from glan.dataset.facts import FactsCursor
from glan.io import iter_lines, write_json
from glan.logs import setup_logging

setup_logging(snakemake.log[0])
source = snakemake.input.dataset
facts = FactsCursor(snakemake.input.facts)
pairs, report = decontaminate(iter_lines(source), source, facts, snakemake.params.settings)
sift(pairs, snakemake.output.kept, snakemake.output.removed)
write_json(snakemake.output.report, report)
log = logging.getLogger("glan")
log.info("decontaminate: %(records_in)d records in, %(records_out)d kept", report)
for benchmark in report["benchmarks"]:
    log.info("decontaminate: %(name)s: %(texts)d texts, %(matched)d records matched, %(removed)d removed", benchmark)
