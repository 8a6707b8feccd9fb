import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from snakemake.logging import logger

from glan.config import stage_llm, stage_settings
from glan.llm.backends.local import LocalBackendError, check_local_backend
from glan.llm.cache import CacheLayoutError, prepare_cache
from glan.prompts import PromptError
from glan.llm.meter import Budget, budget_problems
from glan.llm.preflight import PreflightFailed
from glan.runtime.job import served
from glan.runtime.preflight import ReadyJob, preflight_run
from glan.runtime.run import check_prompts, planned_requests
from glan.runtime.progress import finish_run, start_run
from glan.runtime.server import settings_of, start_for_run
from glan.stages import STAGES, active
from glan.taxonomy import TaxonomyError, load_taxonomy, select, write_node_files

NODE_FILES = "results/nodes"


def node_file(name):
    """A discipline's file, by the name its stage declares (glan/stages/<stage>.py)."""
    return f"{NODE_FILES}/{{node}}/{name}"


# One file per discipline, rewritten only when its own content changes: each node's jobs
# depend on that file alone, never on taxonomy.yaml, so editing one node re-runs one node.
try:
    check_prompts("prompts")
    NODES = select(
        write_node_files(
            load_taxonomy(config["taxonomy"]), NODE_FILES, STAGES["subjects"].upstream
        ),
        config["select"],
    )
    prepare_cache(config["cache_dir"], config["cache_layout"])
except (TaxonomyError, PromptError, CacheLayoutError) as error:
    raise WorkflowError(str(error))

STAGE_LLMS = [stage_llm(config, stage) for stage in active(config)]

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
# Batch mode waits up to a day for the provider and computes nothing: it runs on the submit host,
# where one stage server gathers every job's requests, never as cluster jobs holding nodes idle.
if (
    workflow.is_main_process
    and CLUSTER
    and any(llm["mode"] == "batch" for llm in STAGE_LLMS)
):
    raise WorkflowError(
        "llm.mode batch needs no compute nodes: run this build on the submit host without the cluster "
        "profile (snakemake --cores 8 --configfile ...), or set llm.mode: online for the cluster run"
    )
# A budget is held by the stage server, which meters every request of the run; cluster jobs send
# on their own, with no one to hold it. And a budget with no price to count against is no budget.
if Budget.of_config(config).limits:
    if workflow.is_main_process and CLUSTER:
        raise WorkflowError(
            "llm.budget is held by the stage server of a local run: run this build on the submit host "
            "without the cluster profile, or unset llm.budget (and stages.<stage>.llm.budget)"
        )
    if problems := budget_problems(config, active(config)):
        raise WorkflowError(
            "llm.budget is set, but "
            + "; ".join(problems)
            + ". Add the model's prices (per million tokens) to `prices` in the config, or unset the budget."
        )
if "llm_slots" not in workflow.global_resources:
    workflow.register_resource("llm_slots", config["llm"]["concurrency"])


# A run whose stages all run in their own jobs' processes (the embedded model) needs no server.
SERVED = not CLUSTER and any(served(llm) for llm in STAGE_LLMS)


# The embedded model is checked once there are jobs to run, before any starts: a missing package
# or a model that cannot be loaded stops the run, naming the fix. Not at parse time, so that
# `snakemake --lint` and `-n` need only `pip install -e .`.
onstart:
    if any(llm["backend"] == "local" for llm in STAGE_LLMS):
        try:
            check_local_backend(config["llm"])
        except LocalBackendError as error:
            raise WorkflowError(str(error))
    jobs = stage_jobs()
    try:
        for warning in preflight_run(config, jobs):
            logger.warning(f"preflight: {warning}")
    except PreflightFailed as error:
        raise WorkflowError(
            f"preflight: {error}\n(skip it with --config 'llm={{preflight: false}}')"
        )
    start_run(
        dict(Counter(job.stage for job in jobs)), config["progress"]["interval"]
    )
    if SERVED:
        start_for_run(settings_of(config))
        let_every_job_wait()


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


def let_every_job_wait():
    """Give Snakemake's local executor a worker for every job of the run. It runs at most cores + 5
    jobs at once, zero-thread ones included, so at --cores 2 only 7 jobs could wait on the stage
    server: their requests would go out in waves of 7 jobs (online, the cap would not fill; in batch
    mode, one batch a wave). A waiting job costs a thread and a small Python process (about 25 MB).
    The pool makes its threads as jobs need them. With another executor, or a Snakemake whose local
    executor looks different, the run goes on as before."""
    executor = getattr(workflow.scheduler, "_executor", None)
    pool = getattr(executor, "pool", None)
    if not isinstance(pool, ThreadPoolExecutor) or not isinstance(
        executor.workers, int
    ):
        return
    executor.workers += len(workflow.dag)
    executor.pool = ThreadPoolExecutor(max_workers=executor.workers)
    pool.shutdown(wait=False)


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
