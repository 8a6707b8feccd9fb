"""Run one stage for one node: read upstream, plan, send through the cache, assemble, write atomically."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from glan.io import read_json, read_jsonl, write_json, write_jsonl
from glan.llm.send import Sender, job_limiter
from glan.logs import close_logger, job_logger, peak_rss_mib
from glan.prompts import Template
from glan.stages import answers, questions, subjects, syllabus
from glan.stages.job import StageJob

STAGES = {"subjects": subjects, "syllabus": syllabus, "questions": questions, "answers": answers}


def read_artifact(path: str | Path):
    return read_jsonl(path) if str(path).endswith(".jsonl") else read_json(path)


def write_artifact(path: str | Path, artifact) -> None:
    if str(path).endswith(".jsonl"):
        write_jsonl(path, artifact)
    else:
        write_json(path, artifact)


def check_prompts(directory: str | Path = "prompts") -> None:
    """Fail at parse time, before any request, on a template that asks for a value its stage lacks."""
    for stage, module in STAGES.items():
        Template(Path(directory) / f"{stage}.yaml").check(module.PLACEHOLDERS)


def planned_requests(stage: str, upstream: str, template: str, settings: dict) -> int:
    """How many requests the stage's job will plan: the share of the global cap it asks for."""
    return len(plan_stage(stage, upstream, template, settings)[1])


class TooManyRejects(RuntimeError):
    pass


async def run_stage(job: StageJob, sender: Sender, log: logging.Logger) -> None:
    """Reading, planning and writing run in a thread: on the stage server, other jobs' replies
    keep flowing while a job reads, plans or writes thousands of records."""
    source, requests = await asyncio.to_thread(plan_stage, job.stage, job.upstream, job.template, job.settings)
    log.info("%s: %d requests planned", job.stage, len(requests))
    outcomes, stats = await sender.send(requests, job.llm, job.cache_dir, log)
    log.info("%s: %s", job.stage, stats.summary())
    log.info("%s: process peak RSS %d MiB", job.stage, peak_rss_mib())
    rejected = [
        {"key": o.key, "reason": o.error, "attempts": o.request.attempt + 1, "messages": o.request.messages}
        for o in outcomes
        if not o.ok
    ]
    for reject in rejected:
        log.warning(
            "%s: rejected after %d attempts: %s (%s)", job.stage, reject["attempts"], reject["reason"], reject["key"]
        )
    share = len(rejected) / len(outcomes) if outcomes else 0.0
    limit = job.llm.get("max_reject_share", 0.2)
    if share > limit:
        message = (
            f"{job.stage}: {len(rejected)} of {len(outcomes)} requests ({share:.0%}) still had no valid reply after "
            f"{job.llm.get('max_attempts', 3)} attempts, more than llm.max_reject_share={limit}; the reasons are in "
            "this log. Raise llm.max_attempts or the stage's max_tokens, or fix the prompt."
        )
        log.error(message)
        raise TooManyRejects(message)
    await asyncio.to_thread(write_job, job, source, outcomes, rejected)


def plan_stage(stage: str, upstream: str, template: str, settings: dict) -> tuple[object, list]:
    """The stage's upstream artifact and the requests it plans from it."""
    module = STAGES[stage]
    prompt = Template(template)
    prompt.check(module.PLACEHOLDERS)
    source = read_artifact(upstream)
    return source, module.plan(source, settings, prompt)


def write_job(job: StageJob, source, outcomes: list, rejected: list[dict]) -> None:
    write_artifact(job.rejects, rejected)
    write_artifact(job.output, STAGES[job.stage].assemble(source, outcomes, job.settings))


def run_job(job: StageJob) -> None:
    """Run a job in this process, within its own share of the cap (on a cluster, or without a stage server)."""

    async def run() -> None:
        sender = Sender(job_limiter(job.llm))
        try:
            await run_stage(job, sender, log)
        finally:
            await sender.aclose()

    log = job_logger(job.log)
    try:
        asyncio.run(run())
    finally:
        close_logger(log)
