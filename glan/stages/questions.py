"""Stage 3: homework questions from key concepts sampled as GLAN does.

Single-session questions take 1..max_concepts concepts of one session (easy or medium);
two-session questions combine concepts of two sessions (hard). Sampling is seeded per
node, subject and question index, so a re-run plans the very same requests, and raising
`per_subject` keeps every earlier question.
"""

from __future__ import annotations

import random

from glan.llm.request import canonical_json, sha256_hex
from glan.prompts import Template
from glan.stages.common import bullets, carried, customise, instructions, make_request, record, text

PLACEHOLDERS = {
    "discipline",
    "subject",
    "level",
    "syllabus",
    "learned_up_to",
    "sessions",
    "concepts",
    "difficulty",
    "instructions",
}
SCHEMA = record(question=text(1500))


def question_rng(seed: int, node_id: str, subject: str, index: int) -> random.Random:
    return random.Random(int(sha256_hex(canonical_json([seed, node_id, subject, index])), 16))


def sample_concepts(rng: random.Random, sessions: list[dict], max_concepts: int, single_share: float) -> dict:
    """Pick the sessions and key concepts of one question; return them with the strategy and difficulty."""
    if len(sessions) >= 2 and max_concepts >= 2 and rng.random() >= single_share:
        picked = sorted(rng.sample(range(len(sessions)), 2))
        first, second = (sessions[i]["key_concepts"] for i in picked)
        from_first = rng.randint(1, min(len(first), max_concepts - 1))
        from_second = rng.randint(1, min(len(second), max_concepts - from_first))
        concepts = rng.sample(first, from_first) + rng.sample(second, from_second)
        return {"strategy": "two-sessions", "difficulty": "hard", "sessions": picked, "concepts": concepts}
    index = rng.randrange(len(sessions))
    pool = sessions[index]["key_concepts"]
    concepts = rng.sample(pool, rng.randint(1, min(len(pool), max_concepts)))
    difficulty = "easy" if len(concepts) <= 2 else "medium"
    return {"strategy": "single-session", "difficulty": difficulty, "sessions": [index], "concepts": concepts}


def syllabus_text(sessions: list[dict], up_to: int) -> str:
    return "\n".join(
        f"Session {i + 1}: {s['title']}\n  Key concepts: {', '.join(s['key_concepts'])}"
        for i, s in enumerate(sessions[: up_to + 1])
    )


def _questions(syllabus: dict, settings: dict):
    """Yield (subject, sampled concepts, question index) in a fixed order: the plan and the assembly share it."""
    node_id = syllabus["node"]["id"]
    for subject in syllabus["subjects"]:
        for index in range(settings["per_subject"]):
            rng = question_rng(settings["seed"], node_id, subject["name"], index)
            sample = sample_concepts(
                rng, subject["sessions"], settings["max_concepts"], settings["single_session_share"]
            )
            yield subject, sample, index


def plan(syllabus: dict, settings: dict, template: Template) -> list:
    settings = customise(settings, syllabus["node"], "questions")
    extra = instructions(syllabus["node"], template)
    requests = []
    for subject, sample, index in _questions(syllabus, settings):
        sessions = subject["sessions"]
        messages = template.render(
            discipline=syllabus["node"]["name"],
            subject=subject["name"],
            level=subject["level"],
            syllabus=syllabus_text(sessions, max(sample["sessions"])),
            learned_up_to=max(sample["sessions"]) + 1,
            sessions=", ".join(f"Session {i + 1} ({sessions[i]['title']})" for i in sample["sessions"]),
            concepts=bullets(sample["concepts"]),
            difficulty=sample["difficulty"],
            instructions=extra,
        )
        requests.append(make_request(settings, messages, SCHEMA, "question", sample=index))
    return requests


def assemble(syllabus: dict, outcomes: list, settings: dict) -> list[dict]:
    settings = customise(settings, syllabus["node"], "questions")
    models = {**syllabus["models"], "questions": settings["llm"]["model"]}
    custom = carried(syllabus["node"])  # the answers stage reads the node's customisation from here
    records = []
    for (subject, sample, _), outcome in zip(_questions(syllabus, settings), outcomes, strict=True):
        if not outcome.ok:
            continue
        records.append(
            {
                "node": syllabus["node"]["id"],
                "path": syllabus["node"]["path"],
                "subject": subject["name"],
                "level": subject["level"],
                "strategy": sample["strategy"],
                "difficulty": sample["difficulty"],
                "sessions": [{"number": i + 1, "title": subject["sessions"][i]["title"]} for i in sample["sessions"]],
                "concepts": sample["concepts"],
                "question": outcome.json()["question"].strip(),
                "models": models,
                "keys": {**subject["keys"], "questions": outcome.key},
                **({"custom": custom} if custom else {}),
            }
        )
    return records
