"""Stage 1: per discipline, the subjects a student should learn, asked `queries` times and merged.

A discipline that pins its subjects in the taxonomy sends nothing: its pinned list is the artifact.
"""

from __future__ import annotations

from glan.stages.contract import Answered, Planned, Resolved, Stage
from glan.stages.shapes import array, record, text

LEVELS = ["high school", "undergraduate", "graduate", "professional"]  # of a subject, as a curriculum sets it
PINNED = "pinned"  # the "model" of pinned subjects in provenance: taxonomy.yaml, not an LLM; their key is None


def schema(settings: dict) -> dict:
    subject = record(
        name=text(120),
        level={"type": "string", "enum": LEVELS},
        subtopics=array(text(160), settings["subtopics"]),
    )
    return record(subjects=array(subject, settings["per_query"]))


def plan(node: dict, work: Resolved) -> list[Planned]:
    if "subjects" in node:
        return []
    settings = work.settings
    messages = work.template.render(
        discipline=node["name"],
        description=node["description"] or "(no description given)",
        path=" > ".join(node["path"]),
        count=settings["per_query"],
        instructions=work.instructions,
    )
    return [Planned(work.request(messages, schema(settings), "subjects", sample=i)) for i in range(settings["queries"])]


def assemble(node: dict, answered: list[Answered], work: Resolved) -> dict:
    """Subjects named alike across queries are kept once (the first); GLAN kept shared subjects per discipline."""
    if "subjects" in node:
        pinned = [{**subject, "keys": {"subjects": None}} for subject in node["subjects"]]
        return {"node": node, "models": {"subjects": PINNED}, "subjects": pinned}
    subjects, seen = [], set()
    for outcome in (a.outcome for a in answered if a.outcome.valid):
        for subject in outcome.json()["subjects"]:
            norm = " ".join(subject["name"].lower().split())
            if norm in seen:
                continue
            seen.add(norm)
            subjects.append({**subject, "keys": {"subjects": outcome.key}})
    return {"node": node, "models": {"subjects": work.model}, "subjects": subjects}


STAGE = Stage(
    name="subjects",
    upstream="node.json",
    output="subjects.json",
    placeholders=frozenset({"discipline", "description", "path", "count", "instructions"}),
    required=frozenset({"discipline"}),
    node_settings=("queries", "per_query", "subtopics"),
    custom=lambda node: node,
    plan=plan,
    assemble=assemble,
)
