"""`glan status`: the run's progress (logs/progress.json, glan.runtime.progress) as a live panel.

It reads the parts every sending process keeps under logs/progress/ and merges them itself, so it shows
the latest figures from another terminal while `snakemake` runs, and the last state after the run. On a
terminal it redraws a panel (rich) until the run is finished; elsewhere (a pipe, a log, CI) it prints
plain lines: once, or with --follow a line whenever the figures change.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from glan.runtime.progress import PROGRESS_DIR, merged

COLUMNS = ("planned", "done", "cached", "in_flight", "sent", "retries", "rejected", "failed")


def unreadable(progress: Path) -> list[str]:
    """The parts under logs/progress/ that are not a JSON document: the merge passes over them, so say so."""
    bad = []
    for path in sorted(progress.rglob("*.json")):
        try:
            if isinstance(orjson.loads(path.read_bytes()), dict):
                continue
        except (OSError, orjson.JSONDecodeError):
            pass
        bad.append(str(path))
    return bad


def plain(document: dict, bad: Sequence[str] = ()) -> list[str]:
    damaged = f"{', '.join(bad)}: not readable as JSON; the next snakemake run replaces them"
    if document.get("started") is None:
        if bad:
            return [f"no run can be read here: {damaged}"]
        return ["no run has started here (logs/progress/ is empty): start one with snakemake"]
    state = "finished" if document["finished"] else f"running, updated {time.time() - document['updated']:.0f} s ago"
    if document["finished"] and document.get("success") is False:
        state = "failed"
    lines = [f"run {state}: {document['line']}"]
    for group in ("by_stage", "by_model"):
        for name, tally in document[group].items():
            counts = " ".join(f"{column}={tally[column]:,}" for column in COLUMNS)
            lines.append(f"  {name}: {counts} cost={tally['cost']:.4f}")
    lines += [f"  budget: {why}" for why in document["budget"]["stopped"].values()]
    if bad:
        lines.append(f"  left out: {damaged}")
    return lines


def panel(document: dict, bad: Sequence[str] = ()):
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    table = Table(expand=True)
    for column in ("stage / model", *COLUMNS, "tokens in", "out", "cost"):
        table.add_column(column, justify="left" if column == "stage / model" else "right")
    for group in ("by_stage", "by_model"):
        for name, tally in document[group].items():
            table.add_row(
                name,
                *(f"{tally[column]:,}" for column in COLUMNS),
                f"{tally['prompt_tokens']:,}",
                f"{tally['completion_tokens']:,}",
                f"{tally['cost']:.4f}",
            )
        table.add_section()
    head, *rest = plain(document, bad)
    notes = [line.strip() for line in rest if line.startswith(("  budget: ", "  left out: "))]
    return Panel(Group(head, table, *notes), title="glan status")


def status(directory: Path, follow: bool, once: bool) -> int:
    progress = directory / PROGRESS_DIR
    document = merged(progress)
    if once or (not sys.stdout.isatty() and not follow):
        print("\n".join(plain(document, unreadable(progress))))
        return 0
    if not sys.stdout.isatty():
        shown = None
        while True:
            text = "\n".join(plain(document, unreadable(progress)))
            if text.split("\n", 1)[-1] != shown:
                print(text, flush=True)
                shown = text.split("\n", 1)[-1]
            if document["finished"] or document.get("started") is None:
                return 0
            time.sleep(1)
            document = merged(progress)
    from rich.live import Live

    with Live(panel(document, unreadable(progress)), refresh_per_second=2) as live:
        while not document["finished"] and document.get("started") is not None:
            time.sleep(1)
            document = merged(progress)
            live.update(panel(document, unreadable(progress)))
    return 0
