"""The report's numbers: what is in the dataset, what was removed, what it cost, counted as the outputs stream by.

`summarise` turns the workflow's outputs into one JSON-able dict (stats.json); the plots and the page only read it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from itertools import accumulate

import pyarrow as pa
import pyarrow.compute as pc

DIFFICULTIES = ("easy", "medium", "hard")
STRATEGIES = ("single-session", "two-sessions")


def summarise(
    generated: int,
    splits: dict[str, Iterable[pa.Table]],
    duplicates: Iterable[dict],
    contamination: dict,
    accounting: dict,
    run: dict,
    judge: dict | None = None,
) -> dict:
    """Counts, not records: every input is read once, as it comes, so memory does not grow with the dataset.

    `generated` is the number of records in the raw dataset; each split gives its records' facts as tables
    (a discipline's at a time in the workflow) with the columns the report counts (glan.dataset.facts.REPORTED:
    node, path, difficulty, strategy, question_words, answer_words), counted a column at a time.

    Lengths are {words: records} histograms as [words, records] pairs, bounded by the longest text.
    `judge` is the judge filter's report (results/clean/judge.json) when the judge is on: the summary then
    has its step in the funnel, its removals, and a `judge` section (scores, minimums, what grading cost)."""
    fields: dict[str, Counter[str]] = {}
    disciplines: dict[str, dict] = {}
    sizes: Counter[str] = Counter()
    difficulty: Counter[str] = Counter()
    strategy: Counter[str] = Counter()
    lengths: dict[str, Counter[int]] = {"question": Counter(), "answer": Counter()}
    for name in ("train", "test"):
        for table in splits[name]:
            if not table.num_rows:
                continue
            sizes[name] += table.num_rows
            for node, count in _counts(table["node"]).items():
                path = table["path"][pc.index(table["node"], node).as_py()].as_py()
                fields.setdefault(path[0], Counter())[name] += count
                entry = disciplines.setdefault(node, {"path": path, "train": 0, "test": 0})
                entry[name] += count
            difficulty.update(_counts(table["difficulty"]))
            strategy.update(_counts(table["strategy"]))
            lengths["question"].update(_counts(table["question_words"]))
            lengths["answer"].update(_counts(table["answer_words"]))
    reasons = Counter(d["reason"] for d in duplicates)
    graded = generated if judge is None else judge["counts"]["records_out"]
    return {
        "funnel": {
            "generated": generated,
            **({} if judge is None else {"after_judge": graded}),
            "after_dedup": graded - reasons.total(),
            "after_decontamination": sizes.total(),
            "train": sizes["train"],
            "test": sizes["test"],
        },
        "removed": {
            **({} if judge is None else judge_removed(judge)),
            "exact-duplicate": reasons.get("exact-duplicate", 0),
            "near-duplicate": reasons.get("near-duplicate", 0),
            **{f"contamination: {b['name']}": b["removed"] for b in contamination["benchmarks"]},
        },
        "fields": {name: dict(c) for name, c in fields.items()},
        "disciplines": disciplines,
        "difficulty": {d: difficulty[d] for d in DIFFICULTIES},
        "strategy": {s: strategy[s] for s in STRATEGIES},
        "lengths": {key: sorted(map(list, counts.items())) for key, counts in lengths.items()},
        "accounting": {k: accounting[k] for k in ("totals", "by_stage", "by_model", "unpriced_models")},
        "run": run,
        **({} if judge is None else {"judge": judge_section(judge, accounting)}),
    }


def _counts(column: pa.ChunkedArray | pa.Array) -> dict:
    """Records per value, in the order the values first come."""
    counted = pc.value_counts(column)
    return dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True))


def judge_removed(judge: dict) -> dict[str, int]:
    """The judge filter's removals, by reason, as the report's removal table names them."""
    counts = judge["counts"]
    return {"judge: below the minimums": counts["removed_low_score"], "judge: ungraded": counts["removed_ungraded"]}


def judge_section(judge: dict, accounting: dict) -> dict:
    """The grades of the raw dataset and what grading cost: the judge's replies behind the records."""
    cost = accounting["by_stage"].get("judge", {})
    return {
        **{key: judge[key] for key in ("min_score", "min_criteria", "keep_ungraded", "counts", "below")},
        "overall": judge["overall"],
        "criteria": judge["criteria"],
        "cost": {key: cost.get(key, 0) for key in ("requests", "prompt_tokens", "completion_tokens", "cost")},
    }


def median(histogram: list[list[int]]) -> float:
    """The median of the values a sorted [value, count] histogram stands for, as statistics.median gives it."""
    ends = list(accumulate(count for _, count in histogram))  # one past the position of each value's last record

    def value_at(position: int) -> int:
        return histogram[bisect_right(ends, position)][0]

    return (value_at((ends[-1] - 1) // 2) + value_at(ends[-1] // 2)) / 2


def discipline_sizes(disciplines: dict[str, dict]) -> list[tuple[str, int]]:
    """(name, records in train and test) of each discipline of the summary, fewest first; ties keep its order."""
    sizes = [(d["path"][-1], d["train"] + d["test"]) for d in disciplines.values()]
    return sorted(sizes, key=lambda size: size[1])
