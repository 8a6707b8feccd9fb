"""Stage 3: homework questions from key concepts sampled as GLAN does.

Single-session questions take 1..max_concepts concepts of one session (easy or medium);
two-session questions combine concepts of two sessions (hard). Sampling is seeded per
node, subject and question index, so a re-run plans the very same requests, and raising
`per_subject` keeps every earlier question.
"""

from __future__ import annotations

import random

from glan.llm.request import canonical_json, sha256_hex
from glan.stages.contract import Answered, Planned, Resolved, Stage, carried
from glan.stages.shapes import bullets, record, text

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


def plan(syllabus: dict, work: Resolved) -> list[Planned]:
    """Each question's concepts are sampled with its own seeded generator, so a re-run plans the same requests."""
    node, settings = syllabus["node"], work.settings
    planned = []
    for subject in syllabus["subjects"]:
        sessions = subject["sessions"]
        for index in range(settings["per_subject"]):
            rng = question_rng(settings["seed"], node["id"], subject["name"], index)
            sample = sample_concepts(rng, sessions, settings["max_concepts"], settings["single_session_share"])
            messages = work.template.render(
                discipline=node["name"],
                subject=subject["name"],
                level=subject["level"],
                syllabus=syllabus_text(sessions, max(sample["sessions"])),
                learned_up_to=max(sample["sessions"]) + 1,
                sessions=", ".join(f"Session {i + 1} ({sessions[i]['title']})" for i in sample["sessions"]),
                concepts=bullets(sample["concepts"]),
                difficulty=sample["difficulty"],
                instructions=work.instructions,
            )
            planned.append(Planned(work.request(messages, SCHEMA, "question", sample=index), (subject, sample)))
    return planned


def assemble(syllabus: dict, answered: list[Answered], work: Resolved) -> list[dict]:
    models = {**syllabus["models"], "questions": work.model}
    custom = carried(syllabus["node"])  # the answers stage reads the node's customisation from here
    records = []
    for (subject, sample), outcome in ((a.context, a.outcome) for a in answered):
        if not outcome.valid:
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


STAGE = Stage(
    name="questions",
    upstream="syllabus.json",
    output="questions.jsonl",
    placeholders=frozenset(
        {
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
    ),
    required=frozenset({"concepts"}),
    node_settings=("per_subject", "max_concepts", "single_session_share"),
    custom=lambda syllabus: syllabus["node"],
    plan=plan,
    assemble=assemble,
)
