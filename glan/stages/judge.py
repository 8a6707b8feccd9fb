"""Stage 5, optional (`stages.judge.enabled`): a judge model grades every question-answer pair.

GLAN kept its answers as they came; a wrong answer to a hard question trains like a right one. The
judge grades each pair against the rubric of prompts/judge.yaml, with structured output: a score per
criterion and an overall score on one fixed scale (SCALE), and a short reason. Its output records are
the answer records with the grade in their provenance; cleaning (glan.dataset.clean.judge_filter)
removes records below the configured minimums, so changing a threshold sends nothing.

Every record comes out, graded or not: a pair whose grade was rejected says so (`graded: false`),
so a filter can tell "below the bar" from "never graded".
"""

from __future__ import annotations

from glan.stages.answers import node_custom
from glan.stages.contract import Answered, Planned, Resolved, Stage
from glan.stages.shapes import record, text

SCALE = (1, 10)  # every score, per criterion and overall: 1 worst, 10 best
CRITERIA = ("correctness", "completeness", "addresses_question")
REASON_CHARS = 400

SCORE = {"type": "integer", "enum": list(range(SCALE[0], SCALE[1] + 1))}
# The reason comes first: a model that writes its reason before its scores grades more consistently.
SCHEMA = record(reason=text(REASON_CHARS), **dict.fromkeys(CRITERIA, SCORE), overall=SCORE)


def plan(records: list[dict], work: Resolved) -> list[Planned]:
    planned = []
    for rec in records:
        question, answer = (m["content"] for m in rec["messages"])
        provenance = rec["provenance"]
        messages = work.template.render(
            question=question,
            answer=answer,
            discipline=provenance["path"][-1],
            subject=provenance["subject"],
            level=provenance["level"],
            difficulty=provenance["difficulty"],
            low=SCALE[0],
            high=SCALE[1],
            instructions=work.instructions,
        )
        planned.append(Planned(work.request(messages, SCHEMA, "judge"), context=rec))
    return planned


def grade(answered: Answered, model: str) -> dict:
    """A record with its grade, or with why it has none, in its provenance."""
    rec, outcome = answered.context, answered.outcome
    provenance = {**rec["provenance"], "models": {**rec["provenance"]["models"], "judge": model}}
    if outcome.valid:
        reply = outcome.json()
        provenance["keys"] = {**provenance["keys"], "judge": outcome.key}
        provenance["judge"] = {
            "graded": True,
            "overall": reply["overall"],
            "scores": {criterion: reply[criterion] for criterion in CRITERIA},
            "reason": reply["reason"].strip(),
        }
    else:
        provenance["judge"] = {"graded": False, "reason": f"no valid grade: {outcome.error}"}
    return {**rec, "provenance": provenance}


def assemble(records: list[dict], answered: list[Answered], work: Resolved) -> list[dict]:
    return [grade(a, work.model) for a in answered]


def record_custom(records: list[dict]) -> dict:
    """The node's customisation, which answer records carry in their provenance as "custom"."""
    return node_custom([r["provenance"] for r in records])


STAGE = Stage(
    name="judge",
    upstream="answers.jsonl",
    output="judged.jsonl",
    placeholders=frozenset(
        {"question", "answer", "discipline", "subject", "level", "difficulty", "low", "high", "instructions"}
    ),
    required=frozenset({"question", "answer"}),
    node_settings=(),
    custom=record_custom,
    plan=plan,
    assemble=assemble,
)
