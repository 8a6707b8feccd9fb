"""Records in the dataset's format (see glan/stages/answers.py), made up for unit tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

from glan.dataset.composition import Composition
from glan.io import dump_line

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


def facts_of(records: list[dict], folder, dedup: dict, decontaminate: dict, cache=None) -> Composition:
    """`records` as the whole-dataset steps see them: a records file per run of records of one node, in order,
    with its facts as the facts jobs write them (`cache`, anything with .get(key), gives the usage of their
    replies); and `dataset.jsonl`, their concatenation, in `folder`."""
    from itertools import groupby

    from glan.dataset import facts
    from glan.dataset.accounting import node_usage
    from glan.dataset.clean import Screen

    settings = {"dedup": dedup, "decontaminate": decontaminate}
    screen = Screen(decontaminate)
    paths, sources = [], []
    runs = groupby(records, key=lambda r: r["provenance"]["node"])
    for number, (_, run) in enumerate(runs):
        run = list(run)
        path = Path(folder) / f"facts-{number:05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        facts.write(path, facts.compute(lines_of(run), run, settings, screen))
        facts.write_usage(Path(folder) / f"usage-{number:05d}.json", node_usage(run, cache or {}))
        (Path(folder) / f"records-{number:05d}.jsonl").write_bytes(b"".join(lines_of(run)))
        paths.append(path)
        sources.append(Path(folder) / f"records-{number:05d}.jsonl")
    (Path(folder) / "dataset.jsonl").write_bytes(b"".join(lines_of(records)))
    return Composition(paths, sources)


def lines_of(records: list[dict]) -> list[bytes]:
    return [dump_line(r) for r in records]


def accounted(records: list[dict], cache_dir, prices: dict) -> dict:
    """account() over the usage of each run of records of one node, as the accounting rule joins the facts."""
    from itertools import groupby

    from glan.dataset.accounting import account, node_usage
    from glan.llm.cache import open_cache

    with open_cache(cache_dir) as cache:
        usages = [node_usage(list(run), cache) for _, run in groupby(records, key=lambda r: r["provenance"]["node"])]
    return account(usages, prices)
