"""Remove exact and near-duplicate questions; the logic lives in glan.dataset.clean."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

import logging

from glan.dataset.clean import deduplicate, sift
from glan.dataset.facts import FactsCursor
from glan.io import iter_lines
from glan.logs import setup_logging

setup_logging(snakemake.log[0])
source = snakemake.input.dataset
pairs = deduplicate(iter_lines(source), source, FactsCursor(snakemake.input.facts), snakemake.params.settings)
counts = sift(pairs, snakemake.output.kept, snakemake.output.removed)
reasons = {r: counts[r] for r in ("exact-duplicate", "near-duplicate")}
logging.getLogger("glan").info("dedup: %d records in, %d kept, removed %s", counts.total(), counts["kept"], reasons)
