"""One discipline's facts for the whole-dataset steps; the logic lives in glan.dataset.facts."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

import logging

import orjson

from glan.dataset import facts
from glan.dataset.accounting import node_usage
from glan.dataset.clean import Screen
from glan.io import ArtifactChanged, checked_lines
from glan.llm.cache import open_cache
from glan.logs import said_in_one_line, setup_logging

setup_logging(snakemake.log[0])
settings = snakemake.params.settings
with said_in_one_line("facts", ArtifactChanged):
    lines = checked_lines(snakemake.input.records)
records = [orjson.loads(line) for line in lines]
screen = Screen(settings["decontaminate"])
with open_cache(settings["cache_dir"]) as cache:
    usage = node_usage(records, cache)
facts.write(snakemake.output.facts, facts.compute(lines, records, settings, screen))
facts.write_usage(snakemake.output.usage, usage)
logging.getLogger("glan").info("facts: %d records of %s", len(records), snakemake.wildcards.node)
