import os
from types import SimpleNamespace

import snakemake
from snakemake.logging import logger

from glan.config import stage_llm, stage_settings
from glan.dataset import steps
from glan.runtime import policy
from glan.runtime.job import served
from glan.runtime.preflight import ReadyJob
from glan.runtime.progress import finish_run
from glan.runtime.run import planned_requests
from glan.stages import STAGES, enabled

JUDGE = enabled(config, "judge")
# a discipline's finished records: the judge's with the judge on, else the answers'
RECORDS = STAGES["judge" if JUDGE else "answers"].output


# The whole-dataset steps after the facts are `run:` blocks (glan/dataset/steps.py). With profiles/default's
# force-use-threads they run in Snakemake's own process, in its threads, where each module is imported once
# and no interpreter starts for a step; without it, Snakemake spawns each as a Snakemake process of its own.
def step(name, input, output, params, log, wildcards):
    """Run the whole-dataset step `name` with the job's files, as a run: block has them."""
    job = SimpleNamespace(
        input=input, output=output, params=params, log=log, wildcards=wildcards
    )
    steps.run(name, job)


def node_file(name):
    """A discipline's file, by the name its stage declares (glan/stages/<stage>.py)."""
    return f"{policy.NODE_FILES}/{{node}}/{name}"


# Requests in flight for the whole run stay under llm.concurrency, however many jobs run at once.
# Locally, one stage server (glan/runtime/server.py), started once there are jobs to run, runs
# every stage job on one client and one cap; a job process only hands its job over and waits.
# On a cluster, each job sends itself and takes a static share instead: as many of Snakemake's
# global `llm_slots` as it has requests, at most the cap. `--resources llm_slots=N` (command
# line or profile) sets that cluster pool apart from the config. A cluster job's own Snakemake
# processes (remote and job-step modes) re-evaluate llm_slots and must come to the same share.
CLUSTER = (
    not workflow.is_main_process
    or workflow.global_resources["_nodes"].value is not None
)
try:
    NODES = policy.prepare(config)
    policy.refuse(config, cluster=workflow.is_main_process and CLUSTER)
except policy.Refused as error:
    raise WorkflowError(str(error))
if "llm_slots" not in workflow.global_resources:
    workflow.register_resource("llm_slots", config["llm"]["concurrency"])
SERVED = policy.served_run(config, CLUSTER)
# every discipline's records file, in taxonomy order
NODE_RECORDS = expand(node_file(RECORDS), node=NODES)


onstart:
    try:
        policy.start(config, stage_jobs(), SERVED, logger.warning, CLUSTER)
    except policy.Refused as error:
        raise WorkflowError(str(error))
    if SERVED:
        why_not = policy.let_every_job_wait(
            workflow.scheduler, len(workflow.dag), snakemake.__version__
        )
        if why_not:
            logger.warning(
                f"jobs wait for the stage server at most --cores + 5 at once: {why_not}"
            )


onsuccess:
    finish_run(success=True)


onerror:
    finish_run(success=False)


def stage_jobs():
    return [
        ReadyJob(job.rule.name, job.input.upstream, job.input.prompt)
        for job in workflow.dag.needrun_jobs()
        if job.rule.name in STAGES
    ]


def stage_threads(stage):
    """A job handed to the stage server only waits for it: it takes no core, so `--cores N` does not
    cap how many jobs wait at once (their requests fill llm.concurrency, or one batch). A job that
    runs its stage itself (the embedded model, a cluster) takes one."""
    return 0 if SERVED and served(stage_llm(config, stage)) else 1


def llm_slots(stage):
    cap = config["llm"]["concurrency"]
    settings = stage_settings(config, stage)

    def slots(wildcards, input):
        if not CLUSTER:
            # the stage server holds the cap for the jobs it runs; an embedded model runs one at a time
            return 0 if stage_threads(stage) == 0 else 1
        # A job grouped with its upstream (profiles/slurm) is submitted before that upstream
        # exists: its share is unknown, so the group claims the whole cap.
        if not os.path.exists(input.upstream):
            return cap
        return max(
            1, min(cap, planned_requests(stage, input.upstream, input.prompt, settings))
        )

    return slots
