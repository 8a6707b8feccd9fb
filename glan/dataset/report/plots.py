"""The report's plots: one PNG per question a reader of the dataset asks, drawn from the summary alone.

Each `plot_*` writes its PNG and returns the figure it drew, so what a plot shows can be read back from its
artists. Figures are made without pyplot: no backend to pick, no global list of open figures to close.
"""

from __future__ import annotations

import io
import statistics
from collections.abc import Iterable
from pathlib import Path

from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from glan.dataset.report.numbers import DIFFICULTIES, discipline_sizes, median
from glan.io import write_bytes_atomic
from glan.stages import STAGES
from glan.stages.judge import SCALE

COLOURS = {"train": "#4C72B0", "test": "#DD8452", "prompt": "#8172B3", "completion": "#55A868"}
MANY_DISCIPLINES = 40  # above this, disciplines are shown as a distribution rather than one bar each


_report_style = rc_context(
    {
        "figure.dpi": 100,
        "font.size": 10,
        "axes.titlesize": 12,
        "axes.titleweight": "bold",
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)  # the report's look, while a plot is drawn and saved; matplotlib's defaults stay as they are elsewhere


def _save(fig: Figure, path: str | Path) -> None:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    write_bytes_atomic(path, buffer.getvalue())


def _label_bars(ax, bars, labels: Iterable[str | None], horizontal: bool = False) -> None:
    """Each label just past the end of its bar (the top bar of a stack ends where the stack does); None, no label."""
    for bar, label in zip(bars, labels, strict=True):
        if label is None:
            continue
        x, y, width, height = bar.get_x(), bar.get_y(), bar.get_width(), bar.get_height()
        if horizontal:
            ax.annotate(
                label, (x + width, y + height / 2), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8
            )
        else:
            ax.annotate(
                label, (x + width / 2, y + height), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=8
            )


def _integer_ticks(axis) -> None:
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
    _label_bars(ax, bars, [f"{t + h:,}" for t, h in zip(train, test, strict=True)], horizontal=True)
    ax.set_yticks(list(positions), labels)
    ax.invert_yaxis()
    ax.set_xlabel("records")
    ax.set_xlim(0, max([1, *(t + h for t, h in zip(train, test, strict=True))]) * 1.1)
    _integer_ticks(ax.xaxis)
    ax.legend(loc="lower left", bbox_to_anchor=(1.0, 0.0), frameon=False)


@_report_style
def plot_records(summary: dict, fields_png: str | Path, disciplines_png: str | Path) -> tuple[Figure, Figure]:
    """Records per field, and per discipline: one bar each, or their distribution when there are many."""
    fields = summary["fields"]
    fields_figure = Figure(figsize=(9, 1.2 + 0.45 * max(len(fields), 1)))
    ax = fields_figure.subplots()
    _split_barh(
        ax, list(fields), [c.get("train", 0) for c in fields.values()], [c.get("test", 0) for c in fields.values()]
    )
    ax.set_title(f"Records per field ({len(fields)} fields)")
    _save(fields_figure, fields_png)

    disciplines = summary["disciplines"]
    if len(disciplines) <= MANY_DISCIPLINES:
        fig = Figure(figsize=(9, 1.2 + 0.35 * max(len(disciplines), 1)))
        ax = fig.subplots()
        labels = [f"{d['path'][-1]}  ({d['path'][0]})" for d in disciplines.values()]
        _split_barh(ax, labels, [d["train"] for d in disciplines.values()], [d["test"] for d in disciplines.values()])
        ax.set_title(f"Records per discipline ({len(disciplines)} disciplines)")
    else:
        fig = Figure(figsize=(9, 4.5))
        ax = fig.subplots()
        sizes = discipline_sizes(disciplines)
        counts = [records for _, records in sizes]
        ax.hist(counts, bins=30, color=COLOURS["train"])
        ax.set_xlabel("records in a discipline")
        ax.set_ylabel("disciplines")
        ax.set_title(f"Records per discipline ({len(disciplines)} disciplines)")
        note = "fewest: " + "; ".join(f"{name} {records}" for name, records in sizes[:5])
        ax.text(
            0.99,
            0.97,
            f"min {counts[0]}, median {statistics.median(counts):g}, max {counts[-1]}\n{note}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=8,
        )
    _save(fig, disciplines_png)
    return fields_figure, fig


@_report_style
def plot_mix(summary: dict, path: str | Path) -> Figure:
    """Records per difficulty and per sampling strategy, each with its share."""
    fig = Figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2)
    panels = (
        (axes[0], "difficulty", "Difficulty", ["#55A868", "#C4AD66", "#C44E52"]),
        (axes[1], "strategy", "Sampling strategy", ["#4C72B0", "#8172B3"]),
    )
    for ax, key, title, colours in panels:
        counts = summary[key]
        total = sum(counts.values()) or 1
        bars = ax.bar(list(counts), list(counts.values()), color=colours)
        _label_bars(ax, bars, [f"{value:,} ({value / total:.0%})" for value in counts.values()])
        ax.set_ylim(0, max([1, *counts.values()]) * 1.25)
        _integer_ticks(ax.yaxis)
        ax.set_title(title)
        ax.set_ylabel("records")
    fig.suptitle("Question mix: single-session questions are easy or medium, two-session questions hard", fontsize=10)
    _save(fig, path)
    return fig


@_report_style
def plot_lengths(summary: dict, path: str | Path) -> Figure:
    """How many words questions and answers have, with the median of each."""
    fig = Figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2)
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
    return fig


@_report_style
def plot_cost(summary: dict, path: str | Path) -> Figure:
    """Prompt and completion tokens per stage, and what they cost by the price table."""
    stages = summary["accounting"]["by_stage"]
    fig = Figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2)
    names = [s for s in STAGES if s in stages]
    prompt = [stages[s]["prompt_tokens"] for s in names]
    completion = [stages[s]["completion_tokens"] for s in names]
    axes[0].bar(names, prompt, color=COLOURS["prompt"], label="prompt")
    bars = axes[0].bar(names, completion, bottom=prompt, color=COLOURS["completion"], label="completion")
    _label_bars(axes[0], bars, [_human(p + c) for p, c in zip(prompt, completion, strict=True)])
    axes[0].yaxis.set_major_formatter(FuncFormatter(_human))
    axes[0].set_title("Tokens per stage")
    axes[0].set_ylabel("tokens")
    axes[0].legend(frameon=False)
    costs = [stages[s]["cost"] for s in names]
    bars = axes[1].bar(names, costs, color="#937860")
    _label_bars(axes[1], bars, [_money(cost) if cost else None for cost in costs])
    unpriced = summary["accounting"]["unpriced_models"]
    total = summary["accounting"]["totals"]["cost"]
    saved = summary["accounting"]["totals"].get("saved_by_cache", 0.0)
    cache = f"; the prefix cache saved {_money(saved)}" if saved else ""
    axes[1].set_title(f"Estimated cost per stage (total {_money(total)}{cache})")
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
    return fig


@_report_style
def plot_removed(summary: dict, path: str | Path) -> Figure:
    """What cleaning kept and removed, and the replies that failed validation, per stage."""
    fig = Figure(figsize=(13, 4))
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.2, 1.2, 1]})
    funnel = summary["funnel"]
    steps = {
        "generated": "generated",
        "after_judge": "after\njudge",
        "after_dedup": "after dedup",
        "after_decontamination": "after\ndecontamination",
    }
    steps = {step: label for step, label in steps.items() if step in funnel}
    kept = [funnel[s] for s in steps]
    bars = axes[0].bar(list(steps.values()), kept, color=COLOURS["train"])
    _label_bars(axes[0], bars, [f"{n:,}" if n else None for n in kept])
    axes[0].set_title(f"Records kept (train {funnel['train']:,}, test {funnel['test']:,})")
    axes[0].tick_params(axis="x", labelsize=8)

    removed = summary["removed"]
    bars = axes[1].barh(list(removed), list(removed.values()), color="#C44E52")
    _label_bars(axes[1], bars, [f"{n:,}" if n else None for n in removed.values()], horizontal=True)
    axes[1].invert_yaxis()
    axes[1].set_title("Records removed, by reason")
    axes[1].set_xlabel("records")
    axes[1].set_xlim(0, max([1, *removed.values()]) * 1.2)
    _integer_ticks(axes[1].xaxis)
    if not any(removed.values()):
        _note(axes[1], "no duplicates or benchmark texts found")

    run = summary["run"]["by_stage"]
    names = [s for s in STAGES if s in run]
    rejected = [run[s].get("rejected", 0) for s in names]
    failed = [run[s].get("failed", 0) for s in names]
    axes[2].bar(names, rejected, color="#C4AD66", label="rejected replies (re-asked)")
    axes[2].bar(names, failed, bottom=rejected, color="#C44E52", label="requests given up")
    axes[2].set_title("Rejected replies per stage")
    axes[2].set_ylim(0, max([1, *(r + f for r, f in zip(rejected, failed, strict=True))]) * 1.3)
    _integer_ticks(axes[2].yaxis)
    axes[2].legend(frameon=False, fontsize=8)
    if not any(rejected) and not any(failed):
        _note(axes[2], "every reply passed validation")
    axes[2].tick_params(axis="x", labelsize=8)
    _save(fig, path)
    return fig


@_report_style
def plot_judge(summary: dict, path: str | Path) -> Figure:
    """The judge's overall scores per field and per difficulty, and each criterion's scores: where the
    weak pairs are, and which threshold would remove how many (the dashed line is `min_score`)."""
    judge = summary["judge"]
    scores = list(range(SCALE[0], SCALE[1] + 1))
    fig = Figure(figsize=(14, 4.2))
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.3, 1, 1]})
    for ax, by, title in ((axes[0], "field", "per field"), (axes[1], "difficulty", "per difficulty")):
        groups = judge["overall"][by]
        if by == "difficulty":  # easy to hard, as the mix plot has them
            order = [d for d in DIFFICULTIES if d in groups] + sorted(set(groups) - set(DIFFICULTIES))
            groups = {d: groups[d] for d in order}
        grid = [[groups[g].get(str(score), 0) for score in scores] for g in groups]
        if not grid:
            _note(ax, "no record was graded")
            continue
        ax.imshow(grid, aspect="auto", cmap="Blues", extent=(SCALE[0] - 0.5, SCALE[1] + 0.5, len(grid) - 0.5, -0.5))
        dark = max(map(max, grid)) / 2
        for row, counts in enumerate(grid):
            for score, count in zip(scores, counts, strict=True):
                if count:
                    colour = "white" if count > dark else "black"
                    ax.annotate(f"{count:,}", (score, row), ha="center", va="center", fontsize=7, color=colour)
        ax.set_yticks(range(len(groups)), list(groups), fontsize=8)
        ax.set_xticks(scores)
        ax.axvline(judge["min_score"] - 0.5, color="#C44E52", linestyle="--")
        ax.set_xlabel("overall score")
        ax.set_title(f"Overall scores {title}")
    for offset, (criterion, counts) in enumerate(judge["criteria"].items()):
        width = 0.8 / max(1, len(judge["criteria"]))
        axes[2].bar(
            [score - 0.4 + (offset + 0.5) * width for score in scores],
            [counts.get(str(score), 0) for score in scores],
            width=width,
            label=criterion,
        )
    axes[2].set_xticks(scores)
    axes[2].set_xlabel("score")
    axes[2].set_ylabel("records")
    _integer_ticks(axes[2].yaxis)
    counts = judge["counts"]
    axes[2].set_title(f"Criteria ({counts['removed_low_score']:,} of {counts['records_in']:,} removed)")
    if judge["criteria"]:
        axes[2].legend(frameon=False, fontsize=8)
    else:
        _note(axes[2], "no record was graded")
    _save(fig, path)
    return fig
