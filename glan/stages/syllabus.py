"""Stage 2: one syllabus per subject: class sessions, each with a description and key concepts."""

from __future__ import annotations

from glan.stages.contract import Answered, Planned, Resolved, Stage
from glan.stages.shapes import array, bullets, record, text

# Pinned subjects may leave their subtopics to the model.
OPEN_SUBTOPICS = "- (not given: cover what a course of this name usually covers)"


def schema(settings: dict) -> dict:
    session = record(
        title=text(120),
        description=text(400),
        key_concepts=array(text(100), settings["concepts_per_session"]),
    )
    return record(sessions=array(session, settings["sessions"], min_items=min(2, settings["sessions"])))


def plan(subjects: dict, work: Resolved) -> list[Planned]:
    node, settings = subjects["node"], work.settings
    return [
        Planned(
            work.request(
                work.template.render(
                    discipline=node["name"],
                    subject=subject["name"],
                    level=subject["level"],
                    subtopics=bullets(subject["subtopics"]) or OPEN_SUBTOPICS,
                    sessions=settings["sessions"],
                    concepts=settings["concepts_per_session"],
                    instructions=work.instructions,
                ),
                schema(settings),
                "syllabus",
            ),
            context=subject,
        )
        for subject in subjects["subjects"]
    ]


def assemble(subjects: dict, answered: list[Answered], work: Resolved) -> dict:
    kept = [
        {
            **a.context,
            "sessions": a.outcome.json()["sessions"],
            "keys": {**a.context["keys"], "syllabus": a.outcome.key},
        }
        for a in answered
        if a.outcome.valid
    ]
    return {"node": subjects["node"], "models": {**subjects["models"], "syllabus": work.model}, "subjects": kept}


STAGE = Stage(
    name="syllabus",
    upstream="subjects.json",
    output="syllabus.json",
    placeholders=frozenset({"discipline", "subject", "level", "subtopics", "sessions", "concepts", "instructions"}),
    required=frozenset({"subject"}),
    node_settings=("sessions", "concepts_per_session"),
    custom=lambda subjects: subjects["node"],
    plan=plan,
    assemble=assemble,
)
