"""Run one stage for one node: read upstream, plan, send through the cache, assemble, write atomically."""

from __future__ import annotations

import logging
from pathlib import Path

from glan.io import read_json, read_jsonl, write_json, write_jsonl
from glan.llm.send import send
from glan.prompts import Template
from glan.stages import answers, questions, subjects, syllabus

STAGES = {"subjects": subjects, "syllabus": syllabus, "questions": questions, "answers": answers}

log = logging.getLogger("glan")


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
    return len(STAGES[stage].plan(read_artifact(upstream), settings, Template(template)))


class TooManyRejects(RuntimeError):
    pass


def run_stage(
    stage: str, upstream: str, template: str, output: str, rejects: str, settings: dict, llm: dict, cache_dir: str
) -> None:
    module = STAGES[stage]
    prompt = Template(template)
    prompt.check(module.PLACEHOLDERS)
    source = read_artifact(upstream)
    requests = module.plan(source, settings, prompt)
    outcomes, stats = send(requests, llm, cache_dir)
    log.info("%s: %s", stage, stats.summary())
    rejected = [
        {"key": o.key, "reason": o.error, "attempts": o.request.attempt + 1, "messages": o.request.messages}
        for o in outcomes
        if not o.ok
    ]
    for reject in rejected:
        log.warning(
            "%s: rejected after %d attempts: %s (%s)", stage, reject["attempts"], reject["reason"], reject["key"]
        )
    share = len(rejected) / len(outcomes) if outcomes else 0.0
    limit = llm.get("max_reject_share", 0.2)
    if share > limit:
        message = (
            f"{stage}: {len(rejected)} of {len(outcomes)} requests ({share:.0%}) still had no valid reply after "
            f"{llm.get('max_attempts', 3)} attempts, more than llm.max_reject_share={limit}; the reasons are in this "
            "log. Raise llm.max_attempts or the stage's max_tokens, or fix the prompt."
        )
        log.error(message)
        raise TooManyRejects(message)
    write_artifact(rejects, rejected)
    write_artifact(output, module.assemble(source, outcomes, settings))


def setup_logging(path: str | None) -> None:
    handler = logging.FileHandler(path) if path else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
