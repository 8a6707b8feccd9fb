"""Tokens and estimated cost of the replies behind the dataset; the logic lives in glan.dataset.accounting."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

import logging

from glan.dataset.accounting import account
from glan.dataset.facts import read_usage
from glan.io import write_json
from glan.logs import setup_logging

setup_logging(snakemake.log[0])
result = account(map(read_usage, snakemake.input.usage), snakemake.params.prices)
write_json(snakemake.output[0], result)
logging.getLogger("glan").info("accounting: %s", result["totals"])
