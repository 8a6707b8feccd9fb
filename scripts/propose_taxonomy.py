"""Propose taxonomy nodes from several prompts into results/taxonomy/proposed.yaml (glan.curate.propose)."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

from glan.curate.propose import propose_llm, run_proposal
from glan.logs import setup_logging

setup_logging(snakemake.log[0])
run_proposal(
    taxonomy=snakemake.input.taxonomy,
    template=snakemake.input.prompt,
    output=snakemake.output[0],
    settings=snakemake.params.settings,
    llm=propose_llm(snakemake.config),
    cache_dir=snakemake.config["cache_dir"],
)
