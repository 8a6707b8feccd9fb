"""Remove exact and near-duplicate questions; the logic lives in glan.dataset.clean."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

import logging

from glan.dataset.clean import deduplicate, sift
from glan.dataset.composition import Composition, removed_ids
from glan.logs import setup_logging

setup_logging(snakemake.log[0])
source = Composition(snakemake.input.facts, snakemake.input.records, removed_ids(snakemake.input.removed))
counts = sift(deduplicate(source, snakemake.params.settings), snakemake.output.removed)
reasons = {r: counts[r] for r in ("exact-duplicate", "near-duplicate")}
logging.getLogger("glan").info("dedup: %d records in, %d kept, removed %s", counts.total(), counts["kept"], reasons)
