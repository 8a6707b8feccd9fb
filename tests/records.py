"""Records in the dataset's format (see glan/stages/answers.py), made up for unit tests."""

from __future__ import annotations

import hashlib

PATHS = {
    "natural-sciences/physics/optics": ["Natural Sciences", "Physics", "Optics"],
    "natural-sciences/biology/genetics": ["Natural Sciences", "Biology", "Genetics"],
    "mathematics/number-theory": ["Mathematics", "Number Theory"],
}


def sha(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def make_record(
    question: str,
    node: str = "natural-sciences/physics/optics",
    answer: str = "An answer in a few words.",
    strategy: str = "single-session",
    difficulty: str = "easy",
    subject: str = "Geometric optics",
    model: str = "test-model",
) -> dict:
    keys = {
        "subjects": sha("subjects", node),
        "syllabus": sha("syllabus", node, subject),
        "questions": sha("questions", node, question),
        "answers": sha("answers", node, question, answer),
    }
    return {
        "id": keys["questions"],
        "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
        "provenance": {
            "node": node,
            "path": PATHS[node],
            "subject": subject,
            "level": "undergraduate",
            "strategy": strategy,
            "difficulty": difficulty,
            "sessions": [{"number": 1, "title": "Session one"}],
            "concepts": ["a concept"],
            "models": dict.fromkeys(keys, model),
            "keys": keys,
        },
    }
