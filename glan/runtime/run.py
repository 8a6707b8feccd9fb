"""Run one stage for one node: read upstream, plan, send through the cache, assemble, write atomically."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from glan.io import (
    ArtifactChanged,
    dump_json,
    dump_jsonl,
    dump_line,
    parse_lines,
    read_checked,
    write_json,
    write_jsonl,
    write_summed,
)
from glan.llm.limits import job_share
from glan.llm.lookup import Outcome
from glan.llm.meter import Meter
from glan.llm.send import Sender
from glan.llm.settings import SendSettings
from glan.logs import close_logger, job_logger, peak_rss_mib
from glan.prompts import Template
from glan.runtime.job import StageJob
from glan.runtime.progress import job_part, report
from glan.stages import GLAN_STAGES, STAGES
from glan.stages.contract import Answered, Planned, Resolved, Stage


def read_artifact(path: str | Path):
    """An upstream artifact, checked against the sum its stage wrote beside it (glan.io.read_checked)."""
    data = read_checked(path)
    return list(parse_lines(data.split(b"\n"), path)) if str(path).endswith(".jsonl") else orjson.loads(data)


def write_artifact(path: str | Path, artifact) -> None:
    """A stage's artifact, and beside it its sum, which the jobs that read it check."""
    write_summed(path, map(dump_line, artifact) if str(path).endswith(".jsonl") else [dump_json(artifact)])


def dump_artifact(name: str, artifact) -> bytes:
    """The bytes `write_artifact` writes for an artifact named `name`."""
    return (dump_jsonl if name.endswith(".jsonl") else dump_json)(artifact)


def checked_template(stage: Stage, directory: str | Path = "prompts") -> Template:
    """The stage's template in `directory`, refused if it asks for a value the stage lacks or leaves
    out what tells its requests apart."""
    template = Template(Path(directory) / f"{stage.name}.yaml")
    stage.check(template)
    return template


def check_prompts(directory: str | Path = "prompts") -> None:
    """Fail at parse time, before any request, on a template its stage would refuse."""
    for name in GLAN_STAGES:
        checked_template(STAGES[name], directory)


@dataclass(frozen=True)
class JobPlan:
    """One stage planned for one node's job: its upstream artifact, its resolved settings and its requests."""

    stage: Stage
    source: Any
    work: Resolved
    planned: list[Planned]

    @classmethod
    def load(cls, stage: str, upstream: str | Path, template: str | Path, settings: dict) -> JobPlan:
        return cls.of(STAGES[stage], read_artifact(upstream), Template(template), settings)

    @classmethod
    def of(cls, stage: Stage, source, template: Template, settings: dict) -> JobPlan:
        work = stage.resolve(source, settings, template)
        return cls(stage, source, work, stage.plan(source, work))

    @property
    def requests(self) -> list:
        return [p.request for p in self.planned]

    def assemble(self, outcomes: list[Outcome]):
        answered = [Answered(p.context, o) for p, o in zip(self.planned, outcomes, strict=True)]
        return self.stage.assemble(self.source, answered, self.work)


def planned_requests(stage: str, upstream: str, template: str, settings: dict) -> int:
    """How many requests the stage's job will plan: the share of the global cap it asks for; 0 for an
    upstream changed since it was built: the job stops on it, naming the fix, and sends nothing."""
    try:
        return len(JobPlan.load(stage, upstream, template, settings).planned)
    except ArtifactChanged:
        return 0


class TooManyRejects(RuntimeError):
    pass


def rejects(outcomes: list[Outcome]) -> list[dict]:
    return [
        {"key": o.key, "reason": o.error, "attempts": o.request.attempt + 1, "messages": o.request.messages}
        for o in outcomes
        if not o.valid
    ]


async def run_stage(job: StageJob, llm: SendSettings, sender: Sender, log: logging.Logger) -> None:
    """Run `job`, whose `llm` settings its caller typed once (SendSettings.of(job.llm)). Reading, planning and
    writing run in a thread: on the stage server, other jobs' replies keep flowing while a job reads, plans
    or writes thousands of records."""
    plan = await asyncio.to_thread(JobPlan.load, job.stage, job.upstream, job.template, job.settings)
    log.info("%s: %d requests planned", job.stage, len(plan.planned))
    outcomes, counts = await sender.send(plan.requests, llm, job.cache_dir, log, job.stage)
    log.info("%s: %s", job.stage, counts.summary())
    if job.counts is not None:
        await asyncio.to_thread(write_json, job.counts, {"stage": job.stage, **counts.as_dict()})
    log.info("%s: process peak RSS %d MiB", job.stage, peak_rss_mib())
    rejected = rejects(outcomes)
    for reject in rejected:
        log.warning(
            "%s: rejected after %d attempts: %s (%s)", job.stage, reject["attempts"], reject["reason"], reject["key"]
        )
    share = len(rejected) / len(outcomes) if outcomes else 0.0
    limit = llm.max_reject_share
    if share > limit:
        message = (
            f"{job.stage}: {len(rejected)} of {len(outcomes)} requests ({share:.0%}) still had no valid reply after "
            f"{llm.max_attempts} attempts, more than llm.max_reject_share={limit}; the reasons are in "
            "this log. Raise llm.max_attempts or the stage's max_tokens, or fix the prompt."
        )
        log.error(message)
        raise TooManyRejects(message)
    await asyncio.to_thread(write_job, job, plan, outcomes, rejected)


def write_job(job: StageJob, plan: JobPlan, outcomes: list[Outcome], rejected: list[dict]) -> None:
    write_jsonl(job.rejects, rejected)
    write_artifact(job.output, plan.assemble(outcomes))


def run_job(job: StageJob) -> None:
    """Run a job in this process, within its own share of the cap (on a cluster, or without a stage server)."""

    async def run() -> None:
        meter = Meter(job.prices)
        sender = Sender(job_share(llm), meter)
        done = asyncio.get_running_loop().create_future()
        reporting = None
        if job.progress_interval is not None:
            part = job_part(job.output)
            reporting = asyncio.create_task(report(meter, part, job.progress_interval, done, directory=None))
        try:
            await run_stage(job, llm, sender, log)
        finally:
            done.set_result(None)
            await sender.aclose()
            if reporting is not None:
                await reporting

    llm = SendSettings.of(job.llm)
    log = job_logger(job.log)
    try:
        asyncio.run(run())
    except Exception:
        log.exception("%s failed", job.stage)
        raise
    finally:
        close_logger(log)
