"""`glan batch export` and `glan batch import`: a build's requests through any Batch API engine, offline.

Export writes the requests the next build would send, as far as they can be known now: the misses of
each node's first stage not complete in the cache (glan.cli.plan.Planner.missing), one Batch API
input line each (glan.llm.batch.input_line: custom_id = the attempt's cache key, body = exactly the
online body), once each, but those in a batch still open under `<cache_dir>/batches/` (a build waits
for that batch: exported, they would be paid twice). Requests that depend on replies not in the
cache yet are not written; they are counted, and an export after the import writes them. Only stages
with an OpenAI-compatible backend (llm.backend openai) are exported. A provider takes one model per
file, within its limits (`llm.batch.max_requests`, `max_bytes`): when the requests do not fit one
file, OUT.jsonl becomes OUT-1.jsonl, OUT-2.jsonl, ...

Import reads Batch API output (and error) files, as OpenAI and `vllm run-batch -o` write them, matches
each line's custom_id against the requests the plan misses now (it plans again, as export does), and
stores each reply in the cache as the batch mode does (glan.llm.batch.store_line): a reply that fails
validation is stored as rejected, so the next export or build asks its next attempt. Every line that
cannot be used is named with its file, line number and why. Then `snakemake` builds from the cache.

Status and cancel are about batch mode's own batches, those open under `<cache_dir>/batches/` (an
interrupted build's, or a running one's): status asks the provider where each stands and what it
holds (up to: its prompt tokens and every line's max_tokens, at batch prices); cancel cancels one
(or `--all`), stores the replies it completed, and closes its journal, so the next build asks only
the rest, online or in a new batch. A batch a running build waits for is not cancelled under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from glan.config import load_config, stage_llm
from glan.io import write_bytes_atomic
from glan.llm.backends.openai_compat import OpenAIBackend, chat_body
from glan.llm.batch import Batcher, Busy, FileLimits, OpenBatch, input_line, store_line
from glan.llm.cache import Entry, open_cache, prepare_cache
from glan.llm.journals import Journal
from glan.llm.prices import price_of
from glan.llm.settings import SendSettings
from glan.stages import STAGES, active

from .plan import Missing, Walk, walk

REASON_CHARS = 200  # of an error body quoted in a line's reason
NO_ENDPOINT = (
    "No stage of this config sends to an OpenAI-compatible endpoint (llm.backend openai): it has no batches to "
    "show; pass the --configfile overlays of the batch build"
)


@dataclass
class Requests:
    """The misses a build sends as planned (Planner.missing), once each, by whether a Batch API can answer them."""

    walk: Walk
    exportable: dict[str, Missing] = field(default_factory=dict)  # key -> the miss, in plan order
    local: Counter[str] = field(default_factory=Counter)  # stage -> misses whose backend is not openai

    @property
    def later(self) -> int:
        """Requests a build would send that depend on replies not in the cache yet."""
        planned = sum(plan.send + plan.in_batch for node in self.walk.nodes for plan in node.stages.values())
        return planned - len(self.walk.missing)


def missing_requests(directory: str | Path, configfiles: list[str]) -> Requests:
    planned = walk(directory, configfiles)
    requests = Requests(planned)
    for miss in planned.missing:
        if stage_llm(planned.config, miss.stage)["backend"] != "openai":
            requests.local[miss.stage] += 1
        else:
            requests.exportable.setdefault(miss.key, miss)
    return requests


def files(misses: list[Missing], limits: dict) -> list[tuple[str, list[bytes]]]:
    """(model, input lines) per file: one model per file, each within `llm.batch`'s limits, as batch mode cuts them."""
    by_model: dict[str, list[tuple[str, bytes]]] = {}
    for miss in misses:
        by_model.setdefault(miss.request.model, []).append((miss.key, input_line(miss.key, chat_body(miss.request))))
    chunks = [
        (model, [line for _, line in chunk])
        for model, lines in by_model.items()
        for chunk in FileLimits.of(limits).files(lines)
    ]
    return chunks or [("", [])]  # nothing to ask: an empty file, so that what uploads OUT finds it


def numbered(out: Path) -> list[Path]:
    """OUT-1.jsonl, OUT-2.jsonl, ... as an earlier export left them."""
    pattern = re.compile(re.escape(out.stem) + r"-\d+" + re.escape(out.suffix))
    return sorted(p for p in out.parent.glob(f"{out.stem}-*{out.suffix}") if pattern.fullmatch(p.name))


def export(directory: str | Path, configfiles: list[str], out: str | Path) -> list[str]:
    """Write the batch input file (or files); the lines to print."""
    requests = missing_requests(directory, configfiles)
    misses = [miss for key, miss in requests.exportable.items() if key not in requests.walk.in_batch]
    chunks = files(misses, requests.walk.config["llm"]["batch"])
    out = Path(out)
    paths = [out.with_name(f"{out.stem}-{n}{out.suffix}") for n in range(1, len(chunks) + 1)] if chunks[1:] else [out]
    stale = [p for p in [out, *numbered(out)] if p.exists() and p not in paths]
    for path, (_, content) in zip(paths, chunks, strict=True):
        write_bytes_atomic(path, b"".join(content))
    for path in stale:  # an earlier export's files: uploaded again, they would ask what is cached or not asked now
        path.unlink()
    counts = Counter(miss.stage for miss in misses)
    lines = [f"{stage}: {counts[stage]} request(s)" for stage in active(requests.walk.config)]
    if len(misses) < len(requests.exportable):
        lines.append(
            f"{len(requests.exportable) - len(misses)} request(s) in a batch still open under "
            f"{requests.walk.config['cache_dir']}/batches/ are not "
            "exported: a build waits for that batch instead of paying for them again."
        )
    lines += [
        f"{stage}: {count} request(s) not exportable: the stage's backend is "
        f"{stage_llm(requests.walk.config, stage)['backend']}, a Batch API file needs llm.backend openai"
        for stage, count in requests.local.items()
    ]
    if len(paths) == 1:
        lines.append(f"Wrote {len(misses)} request(s) to {out}.")
    else:
        lines.append(
            f"Wrote {len(misses)} request(s) in {len(paths)} files (one model per file, "
            "within llm.batch max_requests and max_bytes):"
        )
        lines += [f"  {path}: {len(c)} request(s) of {model}" for path, (model, c) in zip(paths, chunks, strict=True)]
    if stale:
        lines.append(f"Removed the earlier export's {', '.join(map(str, stale))}.")
    if requests.later:
        lines.append(
            f"{requests.later} more request(s) depend on replies not in the cache yet: "
            "import the results, then export again."
        )
    return lines


@dataclass
class Imported:
    stored: Counter[str] = field(default_factory=Counter)  # stage -> valid replies stored
    rejected: Counter[str] = field(default_factory=Counter)  # stage -> replies stored as rejected
    already: int = 0  # lines whose key the cache already held before this import
    unusable: int = 0  # lines that could not be used
    messages: list[str] = field(default_factory=list)  # per unusable line or rejected reply: FILE:LINE: what

    @property
    def understood(self) -> bool:
        return not self.unusable

    def cannot_use(self, where: str, why: str) -> None:
        self.unusable += 1
        self.messages.append(f"{where}: {why}")

    def store(self, where: str, stage: str, result: tuple[str, Entry | str]) -> bool:
        """Count what store_line did with the line at `where`; whether the cache now holds a reply for its key."""
        key, stored = result
        if isinstance(stored, str):
            self.cannot_use(where, f"{key}: {stored[:REASON_CHARS]}" + ("…" if len(stored) > REASON_CHARS else ""))
            return False
        if stored.valid:
            self.stored[stage] += 1
        else:
            self.rejected[stage] += 1
            self.messages.append(f"{where}: {key}: stored as rejected ({stored.error}): asked again next time")
        return True


def other_model(line: dict, asked: str) -> str | None:
    """The model a result line's reply names where it is not the one asked (a provider answers a name with a
    dated version of it, `gpt-4o-mini` with `gpt-4o-mini-2024-07-18`: a name it starts with is the same)."""
    made = ((line.get("response") or {}).get("body") or {}).get("model")
    return made if isinstance(made, str) and made and not made.startswith(asked) else None


def import_results(
    directory: str | Path, configfiles: list[str], results: list[str], accept_model: bool = False
) -> Imported:
    """Store each result line's reply under its request's key. A reply another model made is refused (the
    first write of a key wins for good) unless `accept_model`."""
    requests = missing_requests(directory, configfiles)
    bodies = {key: chat_body(miss.request) for key, miss in requests.exportable.items()}
    config = requests.walk.config
    cache_dir = Path(directory) / config["cache_dir"]
    prepare_cache(cache_dir, config["cache_layout"])  # as the Snakefile does: a new cache gets the config's layout
    imported = Imported()
    seen: dict[str, str] = {}  # key -> the line that stored its reply
    with open_cache(cache_dir) as cache:
        for name in results:
            with open(name, "rb") as handle:
                for number, raw in enumerate(handle, start=1):
                    if not raw.strip():
                        continue
                    where = f"{name}:{number}"
                    line = _read(imported, where, raw, seen)
                    if line is None:
                        continue
                    key = line["custom_id"]
                    if key in bodies and not accept_model and (made := other_model(line, bodies[key]["model"])):
                        imported.cannot_use(
                            where,
                            f"{key}: made by the model {made!r}, not {bodies[key]['model']!r} as asked; "
                            "its reply would stay under this request's key for good (run the file against the "
                            "asked model, or pass --accept-model to store it anyway)",
                        )
                    elif key in bodies:
                        if imported.store(where, requests.exportable[key].stage, store_line(cache, line, bodies)):
                            seen[key] = where
                    elif cache.get(key) is not None:
                        imported.already += 1
                    else:
                        imported.cannot_use(
                            where,
                            f"unknown custom_id {key}: no request the plan misses has this key "
                            "(another workflow, config or endpoint?)",
                        )
    return imported


def _read(imported: Imported, where: str, raw: bytes, seen: dict[str, str]) -> dict | None:
    """An output line with a custom_id not stored before; None (and why, in `imported`) for any other line."""
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        imported.cannot_use(where, f"not JSON ({error})")
        return None
    key = line.get("custom_id") if isinstance(line, dict) else None
    if not isinstance(key, str) or not key:
        imported.cannot_use(where, "not a Batch API output line (no custom_id)")
        return None
    if key in seen:
        imported.cannot_use(where, f"custom_id {key} again: {seen[key]} stored its reply")
        return None
    return line


def import_report(imported: Imported, results: list[str]) -> list[str]:
    lines = list(imported.messages)
    stages = [s for s in STAGES if imported.stored[s] or imported.rejected[s]]
    lines += [f"{s}: {imported.stored[s]} stored, {imported.rejected[s]} rejected as invalid" for s in stages]
    lines.append(
        f"{' '.join(results)}: {imported.stored.total()} stored, {imported.rejected.total()} rejected as invalid "
        f"(the next export or build asks them again), {imported.unusable} unusable"
        + (f", {imported.already} already in the cache" if imported.already else "")
        + "."
    )
    lines.append(
        "Then: `glan batch export` for the requests these replies make known, or `snakemake` to build from the cache."
    )
    return lines


@contextlib.asynccontextmanager
async def endpoint_batchers(directory: str | Path, configfiles: list[str]) -> AsyncIterator[list[Batcher]]:
    """A Batcher for each OpenAI-compatible endpoint the config's stages use, on the config's cache; a journal
    that names no endpoint (written before journals did) goes to the first."""
    config = load_config(directory, configfiles)
    cache_dir = Path(directory) / config["cache_dir"]
    backends: dict[str, tuple[OpenAIBackend, dict]] = {}
    for stage in active(config):
        llm = stage_llm(config, stage)
        if llm["backend"] == "openai":
            backend = OpenAIBackend(llm)
            if backends.setdefault(backend.identity, (backend, llm))[0] is not backend:
                await backend.aclose()
    prepare_cache(cache_dir, config["cache_layout"])
    with open_cache(cache_dir) as cache:
        batchers = [
            Batcher(backend.batch_api, cache, cache_dir, SendSettings.of(llm), identity)
            for identity, (backend, llm) in backends.items()
        ]
        try:
            yield batchers
        finally:
            for batcher in batchers:
                await batcher.aclose()
            for backend, _ in backends.values():
                await backend.aclose()


def owned_journals(batchers: list[Batcher]) -> list[tuple[Batcher, Journal]]:
    seen: set[str] = set()
    owned = []
    for batcher in batchers:
        for journal in batcher.open_journals():
            if journal.name not in seen:
                seen.add(journal.name)
                owned.append((batcher, journal))
    return owned


def held_money(journal: Journal, prices: dict) -> float | None:
    """What the batch can cost at most, at batch prices: its prompt tokens and each line's max_tokens."""
    try:
        bodies = journal.bodies().values()
    except FileNotFoundError:
        return None
    replies = sum(body.get("max_completion_tokens") or body.get("max_tokens") or 0 for body in bodies)
    usage = {"prompt_tokens": journal.input_tokens(), "completion_tokens": replies}
    return price_of(journal.model, usage, prices, "batch")


def describe(batch: OpenBatch, prices: dict) -> str:
    journal = batch.journal
    counts = f"{batch.completed}/{batch.total} done, {batch.failed} failed" if batch.total else ""
    age = f"{_duration(time.time() - batch.created_at)} old" if batch.created_at else ""
    money = held_money(journal, prices)
    held = "" if money is None else f"up to ${money:,.4f} at batch prices"
    waits = "a running build waits for it" if batch.seen_through else ""
    parts = ", ".join(filter(None, [batch.state, counts, age, held, waits]))
    return f"{journal.batch_id or journal.name} ({journal.model}, {len(journal.keys)} requests): {parts}"


def status(directory: str | Path, configfiles: list[str]) -> list[str]:
    async def ask() -> list[str]:
        async with endpoint_batchers(directory, configfiles) as batchers:
            if not batchers:
                return [NO_ENDPOINT]
            journals = owned_journals(batchers)
            found = [await batcher.status(journal) for batcher, journal in journals]
        prices = load_config(directory, configfiles)["prices"]
        if not found:
            return ["No batch is open: every batch of this cache has ended and its replies are stored."]
        return [describe(batch, prices) for batch in found] + [
            f"{len(found)} open batch(es). A build waits for them and stores their replies; "
            "`glan batch cancel BATCH` (or --all) cancels, keeping the replies completed so far."
        ]

    return asyncio.run(ask())


def cancel(directory: str | Path, configfiles: list[str], names: list[str], every: bool) -> tuple[list[str], int]:
    """Cancel the named open batches (batch id, or journal name for one not created yet), or every one."""

    async def run() -> tuple[list[str], int]:
        lines, status = [], 0
        async with endpoint_batchers(directory, configfiles) as batchers:
            if not batchers:
                return [NO_ENDPOINT], 1
            journals = owned_journals(batchers)
            known = {name for _, j in journals for name in (j.batch_id, j.name) if name}
            for name in sorted(set(names) - known):
                lines.append(f"{name}: no open batch of this cache has this id (`glan batch status` lists them)")
                status = 1
            for batcher, journal in journals:
                if not every and not {journal.batch_id, journal.name} & set(names):
                    continue
                stored_before = sum(batcher.cache.get(key) is not None for key in journal.keys)
                try:
                    await batcher.cancel(journal)
                except Busy as error:
                    lines.append(str(error))
                    status = 1
                    continue
                stored = sum(batcher.cache.get(key) is not None for key in journal.keys) - stored_before
                lines.append(
                    f"{journal.batch_id or journal.name}: cancelled; {stored} completed repl(ies) stored, "
                    f"{len(journal.keys) - stored - stored_before} request(s) left for the next build"
                )
        return lines, status

    return asyncio.run(run())


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{int(seconds % 60):02d}s"
