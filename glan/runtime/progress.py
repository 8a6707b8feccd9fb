"""Progress of a run, live: one line in the run's output, and the figures in logs/progress.json.

Each sending process (the stage server, or a job that sends in its own process: the embedded model, a
cluster job) keeps its Meter's tallies in its own file under logs/progress/. The stage server then
writes the merge of every file there as logs/progress.json, atomically, so a reader sees a whole
document; `glan status` merges the parts itself, so it is live in a run without a server too. The run's
start (rules/common.smk, onstart) clears the folder and records how many jobs of each stage the run will
start, from which the line projects the requests, cost and time still to go; its end publishes the
merge once more and marks it finished.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from glan.io import write_bytes_atomic
from glan.llm.meter import Meter, Tally

PROGRESS_DIR = Path("logs/progress")  # the parts; their merge is its sibling progress.json
RUN_FILE = "run.json"
SERVER_PART = "server.json"


def sender_part(index: int) -> str:
    """The part of the stage server's sender process `index`, when it has several (llm.senders)."""
    return f"server.{index}.json"


def start_run(expected_jobs: dict[str, int], interval: float, directory: Path = PROGRESS_DIR) -> None:
    """A new run: forget the last run's parts, and record what this one will start."""
    if directory.is_dir():
        for part in directory.rglob("*.json"):
            part.unlink()
    document = {"started": time.time(), "expected_jobs": expected_jobs, "interval": interval, "finished": False}
    write_bytes_atomic(directory / RUN_FILE, orjson.dumps(document))
    publish(directory)


def finish_run(success: bool, directory: Path = PROGRESS_DIR) -> None:
    run = _read(directory / RUN_FILE) or {}
    write_bytes_atomic(directory / RUN_FILE, orjson.dumps({**run, "finished": True, "success": success}))
    publish(directory)


def part_of(meter: Meter) -> dict:
    """A process's part; `cpu_seconds`, its CPU time so far, tells what a request costs (bench/senders.py)."""
    return {
        "updated": time.time(),
        "cpu_seconds": round(time.process_time(), 3),
        "first_sent": meter.first_sent,
        "last_sent": meter.last_sent,
        "tallies": [{"stage": s, "model": m, **t.as_dict()} for (s, m), t in sorted(meter.tallies.items())],
        "budget": {"limits": meter.budget.limits, "stopped": meter.stopped},
    }


def _read(path: Path) -> dict | None:
    try:
        return orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None


def merged(directory: Path = PROGRESS_DIR) -> dict:
    """Every process's part of the run, added up, with the projection."""
    run = _read(directory / RUN_FILE) or {}
    parts = [p for p in (_read(path) for path in sorted(directory.rglob("*.json")) if path.name != RUN_FILE) if p]
    tallies: dict[tuple[str, str], Tally] = {}
    stopped: dict[str, str] = {}
    limits: dict[str, float] = {}
    for part in parts:
        for row in part["tallies"]:
            tallies.setdefault((row["stage"], row["model"]), Tally()).add(Tally.of(row))
        stopped.update(part["budget"]["stopped"])
        limits.update(part["budget"]["limits"])
    firsts = [p["first_sent"] for p in parts if p.get("first_sent")]
    lasts = [p["last_sent"] for p in parts if p.get("last_sent")]
    by_stage: dict[str, Tally] = {}
    by_model: dict[str, Tally] = {}
    totals = Tally()
    for (stage, model), tally in tallies.items():
        by_stage.setdefault(stage, Tally()).add(tally)
        by_model.setdefault(model, Tally()).add(tally)
        totals.add(tally)
    sending = max(lasts) - min(firsts) if firsts else 0.0
    projection = project(by_stage, run.get("expected_jobs") or {}, sending)
    document = {
        "started": run.get("started"),
        "updated": max([p["updated"] for p in parts], default=run.get("started")),
        "finished": run.get("finished", False),
        "success": run.get("success"),
        "interval": run.get("interval"),
        "totals": totals.as_dict(),
        "by_stage": {stage: t.as_dict() for stage, t in sorted(by_stage.items())},
        "by_model": {model: t.as_dict() for model, t in sorted(by_model.items())},
        "projected": projection,
        "budget": {"limits": limits, "stopped": stopped},
    }
    document["line"] = line(document)
    return document


def project(by_stage: dict[str, Tally], expected_jobs: dict[str, int], sending: float) -> dict:
    """What is still to come: requests of jobs not started yet (at the mean of the stage's started jobs),
    their cost at the mean cost of a request done so far, and the time at the rate of the `sending`
    seconds from the first reply to the last."""
    requests = to_go = to_send = 0.0
    for stage, tally in by_stage.items():
        coming = max(0, expected_jobs.get(stage, 0) - tally.jobs) * tally.planned / tally.jobs if tally.jobs else 0.0
        requests += tally.planned + coming
        left = tally.planned - tally.done + coming
        if tally.done:
            to_go += left * tally.cost / tally.done
            to_send += left * (1 - tally.cached / tally.done)
        else:
            to_send += left
    sent_answers = sum(t.done - t.cached for t in by_stage.values())
    rate = sent_answers / sending if sending > 0 else 0.0
    unknown = [stage for stage in expected_jobs if stage not in by_stage and expected_jobs[stage]]
    return {
        "requests": round(requests),
        "estimated": any(t.jobs < expected_jobs.get(s, 0) for s, t in by_stage.items()) or bool(unknown),
        "stages_not_started": unknown,
        "cost_to_go": round(to_go, 6),
        "rate": round(rate, 3),
        "eta_seconds": round(to_send / rate) if rate and to_send else None,
    }


def _count(value: float) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.1f}{suffix}"
    return f"{value:.0f}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def line(document: dict) -> str:
    """`requests 12,340/~80,000 (15%) · cached 2,300 · in flight 64 · ... · ETA 31 min`"""
    totals, projected = document["totals"], document["projected"]
    total = max(projected["requests"], totals["planned"])
    share = f" ({totals['done'] / total:.0%})" if total else ""
    approximate = "~" if projected["estimated"] else ""
    later = "+" if projected["stages_not_started"] else ""  # stages whose size no started job shows yet
    parts = [
        f"requests {totals['done']:,}/{approximate}{total:,}{later}{share}",
        f"cached {totals['cached']:,}",
        f"in flight {totals['in_flight']:,}",
        f"retries {totals['retries']:,}",
        f"rejected {totals['rejected']:,}",
        f"{_count(totals['prompt_tokens'])} in / {_count(totals['completion_tokens'])} out tokens"
        + (f" ({_count(totals['cached_tokens'])} cached)" if totals["cached_tokens"] else ""),
        f"${totals['cost']:,.2f} so far, ~${projected['cost_to_go']:,.2f} to go"
        + (f" ({totals['unpriced']:,} unpriced)" if totals["unpriced"] else ""),
        f"{projected['rate']:,.0f} req/s",
    ]
    if projected["eta_seconds"] is not None and not document.get("finished"):
        parts.append(f"ETA {_duration(projected['eta_seconds'])}")
    if document["budget"]["stopped"]:
        parts.append("budget reached: sending stopped")
    return " · ".join(parts)


def progress_file(directory: Path = PROGRESS_DIR) -> Path:
    return directory.parent / "progress.json"


def publish(directory: Path = PROGRESS_DIR) -> dict:
    document = merged(directory)
    write_bytes_atomic(progress_file(directory), orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return document


def job_part(output: str, directory: Path = PROGRESS_DIR) -> Path:
    """The part of a job that sends in its own process, named after its output."""
    return directory / "jobs" / (output.replace("/", "__") + ".json")


async def report(
    meter: Meter,
    part: Path,
    interval: float,
    until: asyncio.Future,
    say: Callable[[str], None] | None = None,
    directory: Path | None = PROGRESS_DIR,
) -> None:
    """Every `interval` seconds, when something changed: write this process's part, and the merge of
    `directory` (None: not, as for each of a cluster run's thousands of jobs; `glan status` merges), and
    `say` the line; once more when `until` is done."""
    seen = -1
    while True:
        finished = await _wait(until, interval)
        changed = meter.changes != seen
        if changed or finished:
            seen = meter.changes
            write_bytes_atomic(part, orjson.dumps(part_of(meter)))
            if directory is not None:
                document = await asyncio.to_thread(publish, directory)
                if say is not None and changed:
                    say(document["line"])
        if finished:
            return


async def publish_every(
    interval: float, until: asyncio.Future, say: Callable[[str], None], directory: Path = PROGRESS_DIR
) -> None:
    """Every `interval` seconds, and once more when `until` is done: publish the merge of the parts other
    processes write, and `say` its line when the totals changed (the stage server's dispatcher)."""
    said = None
    while True:
        finished = await _wait(until, interval)
        document = await asyncio.to_thread(publish, directory)
        if document["totals"] != said:
            said = document["totals"]
            say(document["line"])
        if finished:
            return


async def _wait(until: asyncio.Future, seconds: float) -> bool:
    try:
        await asyncio.wait_for(asyncio.shield(until), seconds)
    except asyncio.TimeoutError:
        return False
    return True


def to_stderr(text: str) -> None:
    print(f"glan: {text}", file=sys.stderr, flush=True)
