"""Stage 1: per discipline, the subjects a student should learn, asked `queries` times and merged.

A discipline that pins its subjects in the taxonomy sends nothing: its pinned list is the artifact.
"""

from __future__ import annotations

from glan.prompts import Template
from glan.stages.common import array, customise, instructions, make_request, record, text
from glan.taxonomy import LEVELS

PLACEHOLDERS = {"discipline", "description", "path", "count", "instructions"}
PINNED = "pinned"  # the "model" of pinned subjects in provenance: taxonomy.yaml, not an LLM; their key is None


def schema(settings: dict) -> dict:
    subject = record(
        name=text(120),
        level={"type": "string", "enum": LEVELS},
        subtopics=array(text(160), settings["subtopics"]),
    )
    return record(subjects=array(subject, settings["per_query"]))


def plan(node: dict, settings: dict, template: Template) -> list:
    if "subjects" in node:
        return []
    settings = customise(settings, node, "subjects")
    messages = template.render(
        discipline=node["name"],
        description=node["description"] or "(no description given)",
        path=" > ".join(node["path"]),
        count=settings["per_query"],
        instructions=instructions(node, template),
    )
    return [
        make_request(settings, messages, schema(settings), "subjects", sample=i) for i in range(settings["queries"])
    ]


def assemble(node: dict, outcomes: list, settings: dict) -> dict:
    """Subjects named alike across queries are kept once (the first); GLAN kept shared subjects per discipline."""
    if "subjects" in node:
        pinned = [{**subject, "keys": {"subjects": None}} for subject in node["subjects"]]
        return {"node": node, "models": {"subjects": PINNED}, "subjects": pinned}
    settings = customise(settings, node, "subjects")
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
