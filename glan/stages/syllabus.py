"""Stage 2: one syllabus per subject: class sessions, each with a description and key concepts."""

from __future__ import annotations

from glan.prompts import Template
from glan.stages.common import array, bullets, customise, instructions, make_request, record, text

PLACEHOLDERS = {"discipline", "subject", "level", "subtopics", "sessions", "concepts", "instructions"}
# Pinned subjects may leave their subtopics to the model.
OPEN_SUBTOPICS = "- (not given: cover what a course of this name usually covers)"


def schema(settings: dict) -> dict:
    session = record(
        title=text(120),
        description=text(400),
        key_concepts=array(text(100), settings["concepts_per_session"]),
    )
    return record(sessions=array(session, settings["sessions"], min_items=min(2, settings["sessions"])))


def plan(subjects: dict, settings: dict, template: Template) -> list:
    node = subjects["node"]
    settings = customise(settings, node, "syllabus")
    return [
        make_request(
            settings,
            template.render(
                discipline=node["name"],
                subject=subject["name"],
                level=subject["level"],
                subtopics=bullets(subject["subtopics"]) or OPEN_SUBTOPICS,
                sessions=settings["sessions"],
                concepts=settings["concepts_per_session"],
                instructions=instructions(node, template),
            ),
            schema(settings),
            "syllabus",
        )
        for subject in subjects["subjects"]
    ]


def assemble(subjects: dict, outcomes: list, settings: dict) -> dict:
    settings = customise(settings, subjects["node"], "syllabus")
    kept = [
        {**subject, "sessions": outcome.json()["sessions"], "keys": {**subject["keys"], "syllabus": outcome.key}}
        for subject, outcome in zip(subjects["subjects"], outcomes, strict=True)
        if outcome.ok
    ]
    return {
        "node": subjects["node"],
        "models": {**subjects["models"], "syllabus": settings["llm"]["model"]},
        "subjects": kept,
    }
