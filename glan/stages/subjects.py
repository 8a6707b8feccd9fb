"""Stage 1: per discipline, the subjects a student should learn, asked `queries` times and merged."""

from __future__ import annotations

from glan.prompts import Template
from glan.stages.common import array, make_request, record, text

PLACEHOLDERS = {"discipline", "description", "path", "count"}
LEVELS = ["high school", "undergraduate", "graduate", "professional"]


def schema(settings: dict) -> dict:
    subject = record(
        name=text(120),
        level={"type": "string", "enum": LEVELS},
        subtopics=array(text(160), settings["subtopics"]),
    )
    return record(subjects=array(subject, settings["per_query"]))


def plan(node: dict, settings: dict, template: Template) -> list:
    messages = template.render(
        discipline=node["name"],
        description=node["description"] or "(no description given)",
        path=" > ".join(node["path"]),
        count=settings["per_query"],
    )
    return [
        make_request(settings, messages, schema(settings), "subjects", sample=i) for i in range(settings["queries"])
    ]


def assemble(node: dict, outcomes: list, settings: dict) -> dict:
    """Subjects named alike across queries are kept once (the first); GLAN kept shared subjects per discipline."""
    subjects, seen = [], set()
    for outcome in outcomes:
        if not outcome.ok:
            continue
        for subject in outcome.json()["subjects"]:
            norm = " ".join(subject["name"].lower().split())
            if norm in seen:
                continue
            seen.add(norm)
            subjects.append({**subject, "keys": {"subjects": outcome.key}})
    return {"node": node, "models": {"subjects": settings["llm"]["model"]}, "subjects": subjects}
