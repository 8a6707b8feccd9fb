"""The judge's score distributions for `snakemake --report`, drawn from stats.json (glan.dataset.report.plots)."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

from glan.dataset.report.plots import plot_judge
from glan.io import read_json
from glan.logs import setup_logging

setup_logging(snakemake.log[0])
plot_judge(read_json(snakemake.input[0]), snakemake.output[0])
