"""Numbers and plots for Snakemake's report: what is in the dataset, what was removed, what it cost.

`summarise` turns the workflow's outputs into one JSON-able dict; each `plot_*` draws one PNG from it,
and `summary_html` writes the page of key numbers that opens the report.
"""

from __future__ import annotations

import html
import statistics
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from itertools import accumulate
from pathlib import Path

from glan.dataset.clean import answer, question, words
from glan.io import write_bytes_atomic
from glan.stages import STAGE_NAMES as STAGES

DIFFICULTIES = ("easy", "medium", "hard")
STRATEGIES = ("single-session", "two-sessions")
COLOURS = {"train": "#4C72B0", "test": "#DD8452", "prompt": "#8172B3", "completion": "#55A868"}
MANY_DISCIPLINES = 40  # above this, disciplines are shown as a distribution rather than one bar each


def summarise(
    raw: Iterable[dict],
    splits: dict[str, Iterable[dict]],
    duplicates: Iterable[dict],
    contamination: dict,
    accounting: dict,
    run: dict,
) -> dict:
    """Counts, not records: every input is read once, as it comes, so memory does not grow with the dataset.

    Lengths are {words: records} histograms as [words, records] pairs, bounded by the longest text."""
    fields: dict[str, Counter] = {}
    disciplines: dict[str, dict] = {}
    sizes: Counter = Counter()
    difficulty, strategy = Counter(), Counter()
    lengths = {"question": Counter(), "answer": Counter()}
    for name in ("train", "test"):
        for record in splits[name]:
            sizes[name] += 1
            provenance = record["provenance"]
            fields.setdefault(provenance["path"][0], Counter())[name] += 1
            entry = disciplines.setdefault(provenance["node"], {"path": provenance["path"], "train": 0, "test": 0})
            entry[name] += 1
            difficulty[provenance["difficulty"]] += 1
            strategy[provenance["strategy"]] += 1
            lengths["question"][len(words(question(record)))] += 1
            lengths["answer"][len(words(answer(record)))] += 1
    reasons = Counter(d["reason"] for d in duplicates)
    generated = sum(1 for _ in raw)
    return {
        "funnel": {
            "generated": generated,
            "after_dedup": generated - reasons.total(),
            "after_decontamination": sizes.total(),
            "train": sizes["train"],
            "test": sizes["test"],
        },
        "removed": {
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
    }


def median(histogram: list[list[int]]) -> float:
    """The median of the values a sorted [value, count] histogram stands for, as statistics.median gives it."""
    ends = list(accumulate(count for _, count in histogram))  # one past the position of each value's last record

    def value_at(position: int) -> int:
        return histogram[bisect_right(ends, position)][0]

    return (value_at((ends[-1] - 1) // 2) + value_at(ends[-1] // 2)) / 2


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "font.size": 10,
            "axes.titlesize": 12,
            "axes.titleweight": "bold",
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    return plt


def _save(fig, path: str | Path) -> None:
    import io

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    write_bytes_atomic(path, buffer.getvalue())
    fig.clf()


def _label_bars(ax, bars, horizontal: bool = False, fmt="{:,.0f}") -> None:
    for bar in bars:
        value = bar.get_width() if horizontal else bar.get_height()
        if not value:
            continue
        if horizontal:
            ax.annotate(
                fmt.format(value),
                (bar.get_x() + value, bar.get_y() + bar.get_height() / 2),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        else:
            ax.annotate(
                fmt.format(value),
                (bar.get_x() + bar.get_width() / 2, bar.get_y() + value),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )


def _integer_ticks(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _human(value: float, _position=None) -> str:
    """1,850,000 -> 1.85M: token axes stay readable from a smoke run to GLAN's scale."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.0f}"


def _money(value: float) -> str:
    return f"{value:,.2f}" if value >= 1 else f"{value:.4f}"


def _note(ax, text: str) -> None:
    """A line in the middle of an empty panel, so "nothing here" reads as a result rather than a broken plot."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#555555")


def _split_barh(ax, labels: list[str], train: list[int], test: list[int]) -> None:
    positions = range(len(labels))
    ax.barh(positions, train, color=COLOURS["train"], label="train")
    bars = ax.barh(positions, test, left=train, color=COLOURS["test"], label="test")
    for bar, t, h in zip(bars, train, test, strict=True):
        ax.annotate(
            f"{t + h:,}",
            (t + h, bar.get_y() + bar.get_height() / 2),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_yticks(list(positions), labels)
    ax.invert_yaxis()
    ax.set_xlabel("records")
    ax.set_xlim(0, max([1, *(t + h for t, h in zip(train, test, strict=True))]) * 1.1)
    _integer_ticks(ax.xaxis)
    ax.legend(loc="lower left", bbox_to_anchor=(1.0, 0.0), frameon=False)


def plot_records(summary: dict, fields_png: str | Path, disciplines_png: str | Path) -> None:
    plt = _pyplot()
    fields = summary["fields"]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * max(len(fields), 1)))
    _split_barh(
        ax, list(fields), [c.get("train", 0) for c in fields.values()], [c.get("test", 0) for c in fields.values()]
    )
    ax.set_title(f"Records per field ({len(fields)} fields)")
    _save(fig, fields_png)
    plt.close(fig)

    disciplines = summary["disciplines"]
    if len(disciplines) <= MANY_DISCIPLINES:
        fig, ax = plt.subplots(figsize=(9, 1.2 + 0.35 * max(len(disciplines), 1)))
        labels = [f"{d['path'][-1]}  ({d['path'][0]})" for d in disciplines.values()]
        _split_barh(ax, labels, [d["train"] for d in disciplines.values()], [d["test"] for d in disciplines.values()])
        ax.set_title(f"Records per discipline ({len(disciplines)} disciplines)")
    else:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        counts = [d["train"] + d["test"] for d in disciplines.values()]
        ax.hist(counts, bins=30, color=COLOURS["train"])
        ax.set_xlabel("records in a discipline")
        ax.set_ylabel("disciplines")
        ax.set_title(f"Records per discipline ({len(disciplines)} disciplines)")
        smallest = sorted(disciplines.values(), key=lambda d: d["train"] + d["test"])[:5]
        note = "fewest: " + "; ".join(f"{d['path'][-1]} {d['train'] + d['test']}" for d in smallest)
        ax.text(
            0.99,
            0.97,
            f"min {min(counts)}, median {statistics.median(counts):g}, max {max(counts)}\n{note}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=8,
        )
    _save(fig, disciplines_png)
    plt.close(fig)


def plot_mix(summary: dict, path: str | Path) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    panels = (
        (axes[0], "difficulty", "Difficulty", ["#55A868", "#C4AD66", "#C44E52"]),
        (axes[1], "strategy", "Sampling strategy", ["#4C72B0", "#8172B3"]),
    )
    for ax, key, title, colours in panels:
        counts = summary[key]
        total = sum(counts.values()) or 1
        bars = ax.bar(list(counts), list(counts.values()), color=colours)
        for bar, value in zip(bars, counts.values(), strict=True):
            ax.annotate(
                f"{value:,} ({value / total:.0%})",
                (bar.get_x() + bar.get_width() / 2, value),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
            )
        ax.set_ylim(0, max([1, *counts.values()]) * 1.25)
        _integer_ticks(ax.yaxis)
        ax.set_title(title)
        ax.set_ylabel("records")
    fig.suptitle("Question mix: single-session questions are easy or medium, two-session questions hard", fontsize=10)
    _save(fig, path)
    plt.close(fig)


def plot_lengths(summary: dict, path: str | Path) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, colour in ((axes[0], "question", COLOURS["train"]), (axes[1], "answer", COLOURS["completion"])):
        histogram = summary["lengths"][key]
        if histogram:
            values, counts = zip(*histogram, strict=True)
            low, high = values[0], values[-1]
            bins = range(low, high + 2) if high - low < 40 else 40
            ax.hist(values, bins=bins, weights=counts, color=colour, align="left" if high - low < 40 else "mid")
            _integer_ticks(ax.xaxis)
            _integer_ticks(ax.yaxis)
            middle = median(histogram)
            ax.axvline(middle, color="black", linestyle="--", linewidth=1)
            ax.text(middle, ax.get_ylim()[1] * 0.95, f" median {middle:g}", va="top", fontsize=8)
        ax.set_title(f"{key.capitalize()} length")
        ax.set_xlabel("words")
        ax.set_ylabel("records")
    _save(fig, path)
    plt.close(fig)


def plot_cost(summary: dict, path: str | Path) -> None:
    plt = _pyplot()
    stages = summary["accounting"]["by_stage"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    names = [s for s in STAGES if s in stages]
    prompt = [stages[s]["prompt_tokens"] for s in names]
    completion = [stages[s]["completion_tokens"] for s in names]
    axes[0].bar(names, prompt, color=COLOURS["prompt"], label="prompt")
    bars = axes[0].bar(names, completion, bottom=prompt, color=COLOURS["completion"], label="completion")
    for bar, p, c in zip(bars, prompt, completion, strict=True):
        axes[0].annotate(
            _human(p + c),
            (bar.get_x() + bar.get_width() / 2, p + c),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    from matplotlib.ticker import FuncFormatter

    axes[0].yaxis.set_major_formatter(FuncFormatter(_human))
    axes[0].set_title("Tokens per stage")
    axes[0].set_ylabel("tokens")
    axes[0].legend(frameon=False)
    costs = [stages[s]["cost"] for s in names]
    bars = axes[1].bar(names, costs, color="#937860")
    for bar, cost in zip(bars, costs, strict=True):
        if cost:
            axes[1].annotate(
                _money(cost),
                (bar.get_x() + bar.get_width() / 2, cost),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )
    unpriced = summary["accounting"]["unpriced_models"]
    total = summary["accounting"]["totals"]["cost"]
    axes[1].set_title(f"Estimated cost per stage (total {_money(total)})")
    axes[1].set_ylim(0, max([0.0001, *costs]) * 1.2)
    if unpriced:
        axes[1].text(
            0.5,
            0.9,
            "no price for: " + ", ".join(unpriced),
            transform=axes[1].transAxes,
            ha="center",
            fontsize=9,
            color="#C44E52",
        )
    if not any(costs):
        axes[1].set_yticks([])
        if not unpriced:
            _note(axes[1], "the price table gives these models no cost")
    axes[1].set_ylabel("cost (price table's currency)")
    _save(fig, path)
    plt.close(fig)


def plot_removed(summary: dict, path: str | Path) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), gridspec_kw={"width_ratios": [1.2, 1.2, 1]})
    funnel = summary["funnel"]
    steps = {"generated": "generated", "after_dedup": "after dedup", "after_decontamination": "after\ndecontamination"}
    bars = axes[0].bar(list(steps.values()), [funnel[s] for s in steps], color=COLOURS["train"])
    _label_bars(axes[0], bars)
    axes[0].set_title(f"Records kept (train {funnel['train']:,}, test {funnel['test']:,})")
    axes[0].tick_params(axis="x", labelsize=8)

    removed = summary["removed"]
    bars = axes[1].barh(list(removed), list(removed.values()), color="#C44E52")
    _label_bars(axes[1], bars, horizontal=True)
    axes[1].invert_yaxis()
    axes[1].set_title("Records removed, by reason")
    axes[1].set_xlabel("records")
    axes[1].set_xlim(0, max([1, *removed.values()]) * 1.2)
    _integer_ticks(axes[1].xaxis)
    if not any(removed.values()):
        _note(axes[1], "no duplicates or benchmark texts found")

    run = summary["run"]["by_stage"]
    rejected = [run[s].get("rejected_replies", 0) for s in STAGES]
    failed = [run[s].get("failed", 0) for s in STAGES]
    axes[2].bar(STAGES, rejected, color="#C4AD66", label="rejected replies (re-asked)")
    bars = axes[2].bar(STAGES, failed, bottom=rejected, color="#C44E52", label="requests given up")
    axes[2].set_title("Rejected replies per stage")
    axes[2].set_ylim(0, max([1, *(r + f for r, f in zip(rejected, failed, strict=True))]) * 1.3)
    _integer_ticks(axes[2].yaxis)
    axes[2].legend(frameon=False, fontsize=8)
    if not any(rejected) and not any(failed):
        _note(axes[2], "every reply passed validation")
    axes[2].tick_params(axis="x", labelsize=8)
    _save(fig, path)
    plt.close(fig)


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
    key_numbers = [
        ["records generated", f"{funnel['generated']:,}"],
        ["duplicates removed", f"{funnel['generated'] - funnel['after_dedup']:,}"],
        ["contaminated removed", f"{funnel['after_dedup'] - funnel['after_decontamination']:,}"],
        ["records in the dataset", f"{funnel['after_decontamination']:,}"],
        ["train / test", f"{funnel['train']:,} / {funnel['test']:,}"],
        ["fields / disciplines", f"{len(summary['fields'])} / {len(summary['disciplines'])}"],
        ["tokens (prompt + completion)", f"{totals['prompt_tokens']:,} + {totals['completion_tokens']:,}"],
        ["estimated cost", cost],
        ["cache hit rate (latest run of each job)", _rate(run["totals"].get("hit_rate"))],
    ]
    stages = [
        [
            stage,
            f"{accounting['by_stage'][stage]['requests']:,}",
            f"{accounting['by_stage'][stage]['total_tokens']:,}",
            f"{accounting['by_stage'][stage]['cost']:,.4f}",
            run["by_stage"][stage].get("sent", 0),
            run["by_stage"][stage].get("cached", 0),
            _rate(run["by_stage"][stage].get("hit_rate")),
            run["by_stage"][stage].get("rejected_replies", 0),
            run["by_stage"][stage].get("failed", 0),
        ]
        for stage in STAGES
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
</body></html>
"""
    write_bytes_atomic(path, page.encode())
