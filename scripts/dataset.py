"""Join every discipline's answer records into results/dataset.jsonl."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

import logging

from glan.dataset.join import concatenate
from glan.io import ArtifactChanged
from glan.logs import said_in_one_line, setup_logging

setup_logging(snakemake.log[0])
with said_in_one_line("dataset", ArtifactChanged):
    count = concatenate(list(snakemake.input), snakemake.output[0])
logging.getLogger("glan").info("dataset: %d records from %d disciplines", count, len(snakemake.input))
