"""Run the stage named after the rule for one node: on the run's stage server if there is one, else here."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

from glan.config import stage_llm
from glan.runtime.job import StageJob, failure_paragraph, submit

job = StageJob(
    stage=snakemake.rule,
    upstream=snakemake.input.upstream,
    template=snakemake.input.prompt,
    output=snakemake.output.artifact,
    rejects=snakemake.output.rejects,
    settings=snakemake.params.settings,
    llm={**stage_llm(snakemake.config, snakemake.rule), "slots": snakemake.resources.llm_slots},
    cache_dir=snakemake.config["cache_dir"],
    log=snakemake.log[0],
    counts=snakemake.log.counts,
    prices=snakemake.config["prices"],
    progress_interval=snakemake.config["progress"]["interval"],
)
try:
    if not submit(job):
        from glan.runtime.run import run_job

        run_job(job)
except Exception as error:  # the traceback is in the job's log: Snakemake's output gets one paragraph
    sys.exit(failure_paragraph(job, error))
