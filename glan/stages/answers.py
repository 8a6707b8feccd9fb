"""Stage 4: one answer per question, asked separately (GLAN: better answers, and a cheaper model will do).

Its output records are the dataset's records: chat `messages` plus the provenance of each.
"""

from __future__ import annotations

from glan.prompts import Template
from glan.stages.common import customise, instructions, make_request

PLACEHOLDERS = {"question", "discipline", "subject", "level", "instructions"}


def plan(questions: list[dict], settings: dict, template: Template) -> list:
    """Every question of a job comes from one node; its customisation travels in each record as "custom"."""
    return [
        make_request(
            customise(settings, q.get("custom", {}), "answers"),
            template.render(
                question=q["question"],
                discipline=q["path"][-1],
                subject=q["subject"],
                level=q["level"],
                instructions=instructions(q.get("custom", {}), template),
            ),
        )
        for q in questions
    ]


def assemble(questions: list[dict], outcomes: list, settings: dict) -> list[dict]:
    records = []
    for question, outcome in zip(questions, outcomes, strict=True):
        if not outcome.ok:
            continue
        own = customise(settings, question.get("custom", {}), "answers")
        provenance = {k: v for k, v in question.items() if k != "question"}
        provenance["models"] = {**question["models"], "answers": own["llm"]["model"]}
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
