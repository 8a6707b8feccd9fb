"""Stage 4: one answer per question, asked separately (GLAN: better answers, and a cheaper model will do).

Its output records are the dataset's records: chat `messages` plus the provenance of each.
"""

from __future__ import annotations

from glan.stages.contract import Answered, Planned, Resolved, Stage


def plan(questions: list[dict], work: Resolved) -> list[Planned]:
    return [
        Planned(
            work.request(
                work.template.render(
                    question=q["question"],
                    discipline=q["path"][-1],
                    subject=q["subject"],
                    level=q["level"],
                    instructions=work.instructions,
                )
            ),
            context=q,
        )
        for q in questions
    ]


def assemble(questions: list[dict], answered: list[Answered], work: Resolved) -> list[dict]:
    records = []
    for question, outcome in ((a.context, a.outcome) for a in answered):
        if outcome.reply is None:  # rejected
            continue
        provenance = {k: v for k, v in question.items() if k != "question"}
        provenance["models"] = {**question["models"], "answers": work.model}
        provenance["keys"] = {**question["keys"], "answers": outcome.key}
        records.append(
            {
                "id": question["keys"]["questions"],
                "messages": [
                    {"role": "user", "content": question["question"]},
                    {"role": "assistant", "content": outcome.reply.text.strip()},
                ],
                "provenance": provenance,
            }
        )
    return records


def node_custom(questions: list[dict]) -> dict:
    """Every question of a job comes from one node, whose customisation each record carries as "custom"."""
    return questions[0].get("custom", {}) if questions else {}


STAGE = Stage(
    name="answers",
    upstream="questions.jsonl",
    output="answers.jsonl",
    placeholders=frozenset({"question", "discipline", "subject", "level", "instructions"}),
    required=frozenset({"question"}),
    node_settings=(),
    custom=node_custom,
    plan=plan,
    assemble=assemble,
    free_text=True,
)
