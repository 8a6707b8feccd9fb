"""The page of key numbers that opens the report: the funnel, cost and cache use at a glance, as plain tables."""

from __future__ import annotations

import html
from pathlib import Path

from glan.io import write_bytes_atomic
from glan.stages import STAGES
from glan.stages.judge import SCALE


def _rows(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _rate(value) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def summary_html(summary: dict, path: str | Path) -> None:
    """One page of key numbers: the pipeline's funnel, cost and cache use at a glance."""
    funnel, accounting, run = summary["funnel"], summary["accounting"], summary["run"]
    totals = accounting["totals"]
    unpriced = accounting["unpriced_models"]
    if unpriced and len(unpriced) == len(accounting["by_model"]):
        cost = "no price for " + ", ".join(unpriced)
    else:
        cost = f"{totals['cost']:,.4f}" + (" (no price for " + ", ".join(unpriced) + ")" if unpriced else "")
    judge = summary.get("judge")
    graded = funnel.get("after_judge", funnel["generated"])
    key_numbers = [
        ["records generated", f"{funnel['generated']:,}"],
        *([] if judge is None else _judge_numbers(judge, funnel)),
        ["duplicates removed", f"{graded - funnel['after_dedup']:,}"],
        ["contaminated removed", f"{funnel['after_dedup'] - funnel['after_decontamination']:,}"],
        ["records in the dataset", f"{funnel['after_decontamination']:,}"],
        ["train / test", f"{funnel['train']:,} / {funnel['test']:,}"],
        ["fields / disciplines", f"{len(summary['fields'])} / {len(summary['disciplines'])}"],
        ["tokens (prompt + completion)", f"{totals['prompt_tokens']:,} + {totals['completion_tokens']:,}"],
        [
            "prompt tokens from the provider's prefix cache (saved)",
            f"{totals.get('cached_tokens', 0):,} ({totals.get('saved_by_cache', 0.0):,.4f})",
        ],
        ["estimated cost", cost],
        ["cache hit rate (latest run of each job)", _rate(run["totals"].get("hit_rate"))],
    ]
    stages = [
        [
            stage,
            f"{accounting['by_stage'][stage]['requests']:,}",
            f"{accounting['by_stage'][stage]['total_tokens']:,}",
            f"{accounting['by_stage'][stage]['cost']:,.4f}",
            run["by_stage"].get(stage, {}).get("sent", 0),
            run["by_stage"].get(stage, {}).get("cached", 0),
            _rate(run["by_stage"].get(stage, {}).get("hit_rate")),
            run["by_stage"].get(stage, {}).get("rejected", 0),
            run["by_stage"].get(stage, {}).get("failed", 0),
        ]
        for stage in STAGES
        if stage in accounting["by_stage"]
    ]
    models = [
        [m, f"{b['requests']:,}", f"{b['total_tokens']:,}", f"{b['cost']:,.4f}"]
        for m, b in accounting["by_model"].items()
    ]
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Dataset summary</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 12px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
th {{ background: #f3f3f3; }}
h2 {{ font-size: 1.1em; margin-top: 1.2em; }}
</style></head><body>
<h2>Key numbers</h2>
<p>From the taxonomy to train and test: what was generated, what cleaning removed, what it cost.</p>
{_rows(["", "value"], key_numbers)}
<h2>Per stage</h2>
{
        _rows(
            [
                "stage",
                "replies in dataset",
                "tokens",
                "est. cost",
                "sent",
                "cached",
                "hit rate",
                "rejected",
                "given up",
            ],
            stages,
        )
    }
<h2>Per model</h2>
{_rows(["model", "replies", "tokens", "est. cost"], models)}
{"" if judge is None else _judge_tables(judge)}
</body></html>
"""
    write_bytes_atomic(path, page.encode())


def _judge_numbers(judge: dict, funnel: dict) -> list[list[str]]:
    counts, cost = judge["counts"], judge["cost"]
    minimums = ", ".join(f"{c} >= {m}" for c, m in judge["min_criteria"].items())
    return [
        ["records graded / ungraded", f"{counts['records_in'] - counts['ungraded']:,} / {counts['ungraded']:,}"],
        [
            f"removed by the judge (overall >= {judge['min_score']}{', ' + minimums if minimums else ''})",
            f"{funnel['generated'] - funnel['after_judge']:,}",
        ],
        [
            "grading cost (judge replies, tokens)",
            f"{cost['cost']:,.4f} ({cost['prompt_tokens'] + cost['completion_tokens']:,})",
        ],
    ]


def _judge_tables(judge: dict) -> str:
    """The overall score distribution per field and per difficulty, one column per score of the scale."""
    scores = [str(score) for score in range(SCALE[0], SCALE[1] + 1)]
    tables = []
    for by in ("field", "difficulty"):
        rows = [[group, *(counts.get(score, 0) for score in scores)] for group, counts in judge["overall"][by].items()]
        tables.append(f"<h2>Judge: overall scores per {by}</h2>\n{_rows([by, *scores], rows)}")
    rows = [[criterion, *(counts.get(score, 0) for score in scores)] for criterion, counts in judge["criteria"].items()]
    tables.append(f"<h2>Judge: scores per criterion</h2>\n{_rows(['criterion', *scores], rows)}")
    return "\n".join(tables)
