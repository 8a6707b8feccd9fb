"""Remove exact and near-duplicate questions; the logic lives in glan.clean."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

import logging

from glan.clean import deduplicate
from glan.io import read_jsonl, write_jsonl
from glan.stages.run import setup_logging

setup_logging(snakemake.log[0])
records = read_jsonl(snakemake.input[0])
kept, removed = deduplicate(records, snakemake.params.settings)
write_jsonl(snakemake.output.kept, kept)
write_jsonl(snakemake.output.removed, removed)
reasons = {r: sum(d["reason"] == r for d in removed) for r in ("exact-duplicate", "near-duplicate")}
logging.getLogger("glan").info("dedup: %d records in, %d kept, removed %s", len(records), len(kept), reasons)
