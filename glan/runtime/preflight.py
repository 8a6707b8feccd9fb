"""The run's preflight (glan.llm.preflight): which endpoints and models to check, and whether to check at all.

A replay stays offline: when every request of the stage jobs that can run now (their upstream
exists) is in the cache, nothing is checked. Otherwise every model and structured-output mode of
the run's OpenAI-compatible stages is checked, later waves' included, before the first job starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from glan.config import stage_llm, stage_settings
from glan.io import ArtifactChanged
from glan.llm.backends.openai_compat import OpenAIBackend
from glan.llm.cache import open_cache
from glan.llm.lookup import lookup
from glan.llm.preflight import Target, preflight
from glan.runtime.run import JobPlan
from glan.stages import STAGES


@dataclass(frozen=True)
class ReadyJob:
    """A stage job of the run, by what planning it needs."""

    stage: str
    upstream: str
    template: str


def targets(config: dict, stages: Iterable[str]) -> list[Target]:
    """One per model and structured-output mode among `stages` that send to an OpenAI-compatible endpoint."""
    found: dict[tuple[str, str | None], list[str]] = {}
    for stage in stages:
        llm = stage_llm(config, stage)
        if llm["backend"] == "openai":
            mode = None if STAGES[stage].free_text else llm["structured_output"]
            found.setdefault((llm["model"], mode), []).append(stage)
    return [Target(model, mode, tuple(names)) for (model, mode), names in found.items()]


def sends_now(config: dict, jobs: Iterable[ReadyJob]) -> bool:
    """Whether a job that can start now has a request the cache does not hold (stops at the first)."""
    ready = [job for job in jobs if Path(job.upstream).exists()]
    if not ready:
        return False
    with open_cache(config["cache_dir"]) as cache:
        for job in ready:
            llm = stage_llm(config, job.stage)
            if llm["backend"] != "openai":
                continue
            identity = OpenAIBackend(llm).identity
            try:
                plan = JobPlan.load(job.stage, job.upstream, job.template, stage_settings(config, job.stage))
            except ArtifactChanged:
                continue  # the job stops on it itself, in one line naming the file and the fix
            for request in plan.requests:
                if lookup(request, identity, cache, llm["max_attempts"]).outcome is None:
                    return True
    return False


def preflight_run(config: dict, jobs: list[ReadyJob]) -> list[str]:
    """Check the run's endpoints once, unless turned off (llm.preflight) or nothing would be sent now: the
    warnings of a run that goes on, or PreflightFailed."""
    if not config["llm"]["preflight"] or not sends_now(config, jobs):
        return []
    checks = targets(config, sorted({job.stage for job in jobs}, key=list(STAGES).index))
    return preflight(checks, config["llm"]) if checks else []
