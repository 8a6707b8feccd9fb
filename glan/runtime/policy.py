"""The run's policy, which the workflow (rules/common.smk) applies: what a run prepares when the
Snakefile is read, what it refuses, and what it starts once there are jobs to run.

Why here and not in the workflow: each of these is a decision with reasons, and a module has tests of
its own (tests/test_policy.py); the workflow keeps its input and resource functions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from glan.config import stage_llm
from glan.llm.backends.local import LocalBackendError, check_local_backend
from glan.llm.cache import CacheLayoutError, prepare_cache
from glan.llm.meter import Budget, budget_problems
from glan.llm.preflight import PreflightFailed
from glan.prompts import PromptError, Template
from glan.runtime import watch
from glan.runtime.job import served
from glan.runtime.preflight import ReadyJob, preflight_run
from glan.runtime.progress import start_run
from glan.runtime.run import check_prompts
from glan.runtime.server import settings_of, start_for_run
from glan.stages import STAGES, active, enabled
from glan.taxonomy import TaxonomyError, load_taxonomy, select, write_node_files

NODE_FILES = "results/nodes"
SKIP_PREFLIGHT = "(skip it with --config 'llm={preflight: false}')"
# The local executor's shape let_every_job_wait was written for: Snakemake 9's
# snakemake.executors.local.Executor, with a ThreadPoolExecutor `pool` of `workers` (cores + 5).
EXECUTOR_WRITTEN_FOR = "9."


class Refused(Exception):
    """A run that cannot work as configured; the message says what to change."""


def prepare(config: dict) -> list[str]:
    """When the Snakefile is read: the templates checked, one file per discipline written (rewritten only when
    its own content changes: each node's jobs depend on that file alone, never on taxonomy.yaml, so editing one
    node re-runs one node), the cache given its layout. The selected disciplines' ids."""
    try:
        check_prompts("prompts")
        if enabled(config, "judge"):
            STAGES["judge"].check(Template("prompts/judge.yaml"))
        roots = load_taxonomy(config["taxonomy"])
        nodes = select(write_node_files(roots, NODE_FILES, STAGES["subjects"].upstream), config["select"])
        prepare_cache(config["cache_dir"], config["cache_layout"])
    except (TaxonomyError, PromptError, CacheLayoutError) as error:
        raise Refused(str(error)) from error
    return nodes


def refuse(config: dict, cluster: bool) -> None:
    """What a cluster run (or a run of any kind) cannot do as configured."""
    llms = [stage_llm(config, stage) for stage in active(config)]
    # Batch mode waits up to a day for the provider and computes nothing: it runs on the submit host,
    # where one stage server gathers every job's requests, never as cluster jobs holding nodes idle.
    if cluster and any(llm["mode"] == "batch" for llm in llms):
        raise Refused(
            "llm.mode batch needs no compute nodes: run this build on the submit host without the cluster "
            "profile (snakemake --cores 8 --configfile ...), or set llm.mode: online for the cluster run"
        )
    # A budget is held by the stage server, which meters every request of the run; cluster jobs send
    # on their own, with no one to hold it. And a budget with no price to count against is no budget.
    if Budget.of_config(config).limits:
        if cluster:
            raise Refused(
                "llm.budget is held by the stage server of a local run: run this build on the submit host "
                "without the cluster profile, or unset llm.budget (and stages.<stage>.llm.budget)"
            )
        if problems := budget_problems(config, active(config)):
            raise Refused(
                "llm.budget is set, but "
                + "; ".join(problems)
                + ". Add the model's prices (per million tokens) to `prices` in the config, or unset the budget."
            )


def served_run(config: dict, cluster: bool) -> bool:
    """Whether a stage server runs this run's jobs: locally, unless every stage runs the embedded model (which
    runs in its jobs' own processes)."""
    return not cluster and any(served(stage_llm(config, stage)) for stage in active(config))


def start(config: dict, jobs: list[ReadyJob], serve: bool, warn: Callable[[str], None], cluster: bool = False) -> None:
    """Once there are jobs to run, before any starts: the embedded model checked (a missing package or a model
    that cannot be loaded stops the run, naming the fix), the endpoints' preflight, the progress line, and the
    stage server, or locally without one, the process that prints the progress line (glan.runtime.watch). Not
    when the Snakefile is read, so that `snakemake --lint` and `-n` need only the package."""
    if any(stage_llm(config, stage)["backend"] == "local" for stage in active(config)):
        try:
            check_local_backend(config["llm"])
        except LocalBackendError as error:
            raise Refused(str(error)) from error
    try:
        for warning in preflight_run(config, jobs):
            warn(f"preflight: {warning}")
    except PreflightFailed as error:
        raise Refused(f"preflight: {error}\n{SKIP_PREFLIGHT}") from error
    start_run(dict(Counter(job.stage for job in jobs)), config["progress"]["interval"])
    if serve:
        start_for_run(settings_of(config))
    elif not cluster:
        watch.start_for_run(config["progress"]["interval"])


def let_every_job_wait(scheduler, jobs: int, version: str) -> str | None:
    """Give Snakemake's local executor a worker for every job of the run; None once done, else why it could not.

    It runs at most cores + 5 jobs at once, zero-thread ones included, so at --cores 2 only 7 jobs could wait
    on the stage server: their requests would go out in waves of 7 jobs (online, the cap would not fill; in
    batch mode, one batch a wave). A waiting job costs a thread and a small Python process (about 25 MB).
    This reaches into the executor's private attributes, so it checks the Snakemake version and the shape it
    was written for (EXECUTOR_WRITTEN_FOR); with another, the run goes on in waves and says so."""
    if not version.startswith(EXECUTOR_WRITTEN_FOR):
        return f"written for Snakemake {EXECUTOR_WRITTEN_FOR}x's local executor, this is Snakemake {version}"
    executor = getattr(scheduler, "_executor", None)
    pool = getattr(executor, "pool", None)
    if (
        executor is None
        or not isinstance(pool, ThreadPoolExecutor)
        or not isinstance(getattr(executor, "workers", None), int)
    ):
        return f"the executor ({type(executor).__name__}) has no thread pool of workers to widen"
    executor.workers += jobs
    executor.pool = ThreadPoolExecutor(max_workers=executor.workers)
    pool.shutdown(wait=False)
    return None
