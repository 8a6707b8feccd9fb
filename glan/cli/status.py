"""`glan status`: the run's progress (logs/progress.json, glan.runtime.progress) as a live panel.

It reads the parts every sending process keeps under logs/progress/ and merges them itself, so it shows
the latest figures from another terminal while `snakemake` runs, and the last state after the run. On a
terminal it redraws a panel (rich) until the run is finished; elsewhere (a pipe, a log, CI) it prints
plain lines: once, or with --follow a line whenever the figures change.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from glan.runtime.progress import PROGRESS_DIR, merged

COLUMNS = ("planned", "done", "cached", "in_flight", "sent", "retries", "rejected", "failed")


def plain(document: dict) -> list[str]:
    if document.get("started") is None:
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
    return lines


def panel(document: dict):
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
    head, *_ = plain(document)
    notes = [f"budget: {why}" for why in document["budget"]["stopped"].values()]
    return Panel(Group(head, table, *notes), title="glan status")


def status(directory: Path, follow: bool, once: bool) -> int:
    progress = directory / PROGRESS_DIR
    document = merged(progress)
    if once or (not sys.stdout.isatty() and not follow):
        print("\n".join(plain(document)))
        return 0
    if not sys.stdout.isatty():
        shown = None
        while True:
            text = "\n".join(plain(document))
            if text.split("\n", 1)[-1] != shown:
                print(text, flush=True)
                shown = text.split("\n", 1)[-1]
            if document["finished"] or document.get("started") is None:
                return 0
            time.sleep(1)
            document = merged(progress)
    from rich.live import Live

    with Live(panel(document), refresh_per_second=2) as live:
        while not document["finished"] and document.get("started") is not None:
            time.sleep(1)
            document = merged(progress)
            live.update(panel(document))
    return 0
