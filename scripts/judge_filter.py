"""Remove records the judge graded below the minimums of clean.judge; the logic lives in glan.dataset.clean."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

import logging

from glan.dataset.clean import judge_filter, sift
from glan.dataset.composition import Composition
from glan.io import write_json
from glan.logs import setup_logging

setup_logging(snakemake.log[0])
removals, report = judge_filter(Composition(snakemake.input.facts, snakemake.input.records), snakemake.params.settings)
sift(removals, snakemake.output.removed)
write_json(snakemake.output.report, report)
logging.getLogger("glan").info(
    "judge_filter: %(records_in)d records in, %(records_out)d kept, %(removed_low_score)d below the minimums, "
    "%(ungraded)d ungraded (%(removed_ungraded)d removed)",
    report["counts"],
)
