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


def run_stage(stage: str, upstream: str, template: str, output: str, settings: dict, llm: dict, cache_dir: str) -> None:
    module = STAGES[stage]
    prompt = Template(template)
    prompt.check(module.PLACEHOLDERS)
    source = read_artifact(upstream)
    requests = module.plan(source, settings, prompt)
    outcomes, stats = send(requests, llm, cache_dir)
    log.info("%s: %s", stage, stats.summary())
    for error in stats.errors:
        log.warning("%s: rejected after %d attempts: %s", stage, llm.get("max_attempts", 3), error)
    write_artifact(output, module.assemble(source, outcomes, settings))


def setup_logging(path: str | None) -> None:
    handler = logging.FileHandler(path) if path else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)
