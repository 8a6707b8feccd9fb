"""Batch mode: cache misses gathered into Batch API files (half the price, within 24 hours), crash-safe.

One `Batcher` per endpoint and cache serves every job of a process (on the stage server: every job
of the run), so the misses of all running jobs go out together, one file per model (a provider
refuses a file that mixes models). A file goes out when it holds
`llm.batch.max_requests` lines or `max_bytes`, or when no new miss has come for `gather_seconds`.
Each line is `custom_id` = the request's cache key and `body` = exactly the body the online path
sends (glan.llm.backends.openai_compat.chat_body), so a reply is stored under the same key however
it came, and switching mode re-sends nothing that is cached. Online, a key in a batch still open (an
interrupted batch build's) is waited for (`holds`, `answer_if_open`): its reply is stored from
the batch, and only a line the batch did not answer goes back to be sent online.

Nothing is paid twice. A journal under the cache directory (`<cache_dir>/batches/<sha256>.json`,
beside the input file `<sha256>.jsonl`) is written before each step: the file's keys before the
upload, the file id after it, `creating` before `batches.create` and the batch id right after. A
later run (after a crash, or `kill -9`) finds its misses in an unfinished entry and waits for that
batch; an entry that never got its batch id is looked up with `batches.list` by the file's sha256 in
the batch's metadata and its input file id before a new batch is created. The same lines asked again
get a journal of their own (`<sha256>-2.json`), so the first stays the record. Replies are validated
as online ones and stored the moment the output file is read; an invalid one is re-asked as the next
attempt (by the sender), a line that failed (a 5xx, a 429) is asked again in a later batch, up to
`llm.max_attempts`; a line refused for good (a 4xx: a context too long, a content filter) fails its
job at once, as online, instead of costing a batch round trip per attempt.

A 20-hour wait is thousands of calls: each call of the Files and Batches API (upload, create, list,
poll, download) is retried as an online request is, under `llm.retry`, on a 429, a 5xx, a timeout or
a dropped connection, and the run's output says what it retried; a permanent error (a 4xx) is not.
A batch that can never be read closes its journal with the reason (`reason`), so no later run
tries it again: a malformed output line is skipped and named (the lines after it are stored, its
request asked again); an output file gone (404: expired or deleted) is reported and the requests
it answered are asked again, once; so are those of a batch the provider does not know (404) and of
an input file deleted before its upload. An input file deleted later still stores the replies of
the requests waiting now.

A file refused with `token_limit_exceeded` waits `poll_seconds`, doubling up to 64 times it, before
it is created again, and the run's output says to set `llm.batch.max_enqueued_tokens`.

Closing with batches still open at the provider, a Batcher says which (their replies are paid for):
the next run waits for them. `glan batch status` lists the open batches, `glan batch cancel` cancels
one, keeping (storing) the replies it completed.

Every process that sends into the cache (the stage server's llm.senders, a cluster's jobs, a second
build) sees the others' journals (glan.llm.journals): a key another process journalled is waited
for, never put into a second file; one process at a time sees a batch through, the one holding its
journal's lock; and max_enqueued_tokens counts the batches every process sees through.

Nothing piles up at the provider or on disk: every upload carries a 30-day expiry (`expires_after`),
and so do a batch's output and error files (`output_expires_after`); once a journal closes, its
input, output and error files are deleted at the provider (one that cannot be is left to expire) and
its local input `.jsonl` is removed. The journal stays: the record that its keys were paid for.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import orjson

from glan.io import write_bytes_atomic
from glan.llm.backends.openai_compat import (
    chat_body,
    reply_of,
    retry_after,
    schema_of,
    server_words,
    transient_status,
)
from glan.llm.cache import Entry, ReplyCache
from glan.llm.journals import BYTES_PER_TOKEN, Journal, Journals, held
from glan.llm.request import Request
from glan.llm.retry import EndpointError, TransientError
from glan.llm.settings import SendSettings
from glan.llm.validate import reply_error

ENDPOINT = "/v1/chat/completions"
METADATA_KEY = "glan_input_sha256"
TERMINAL = {"completed", "expired", "cancelled", "failed"}
# Every file uploaded or written for a batch expires: deleted once read, it still goes if a run dies first.
# 30 days, the longest OpenAI takes (Azure takes 14 to 30) and far past the 24-hour window.
FILE_EXPIRY = {"anchor": "created_at", "seconds": 30 * 24 * 3600}
TOKEN_LIMIT_BACKOFF = 64  # a file the enqueued-token limit refused waits poll_seconds, doubling up to 64 times it
OWNER_LOOK_SECONDS = 5  # a batch another process sees through: how often its lock is tried (at most)
YIELD_EVERY = 500  # output lines stored between turns of the event loop
CLEANUP_SECONDS = 30  # a closing process waits so long for its deletes in flight; what is left expires
T = TypeVar("T")


class Refused(EndpointError):
    """The provider answered a Files or Batches call with a permanent error (a 4xx): asking again will not help."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class FileLimits:
    """What one input file may hold (`llm.batch`): max_requests lines and max_bytes bytes, and, with
    max_enqueued_tokens set, no more tokens than the provider lets a model have enqueued."""

    max_requests: int
    max_bytes: int
    max_enqueued_tokens: int | None = None

    @classmethod
    def of(cls, batch: dict) -> FileLimits:
        tokens = batch.get("max_enqueued_tokens")
        max_bytes = batch["max_bytes"] if tokens is None else min(batch["max_bytes"], tokens * BYTES_PER_TOKEN)
        return cls(batch["max_requests"], max_bytes, tokens)

    def full(self, lines: int, size: int) -> bool:
        return lines >= self.max_requests or size >= self.max_bytes

    def files(self, lines: Iterable[tuple[str, bytes]]) -> Iterator[list[tuple[str, bytes]]]:
        """Consecutive files of (key, line), each within the limits (a line alone may exceed max_bytes)."""
        chunk: list[tuple[str, bytes]] = []
        size = 0
        for key, line in lines:
            if chunk and (len(chunk) >= self.max_requests or size + len(line) > self.max_bytes):
                yield chunk
                chunk, size = [], 0
            chunk.append((key, line))
            size += len(line)
        if chunk:
            yield chunk


def input_line(key: str, body: dict) -> bytes:
    """One line of a Batch API input file: the request's key and exactly the body sent online."""
    return orjson.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body}) + b"\n"


def request_of(body: dict) -> Request:
    """What validating a reply needs of the request behind a batch line: its schema."""
    return Request(model=body["model"], messages=body["messages"], schema=schema_of(body))


def store_line(cache: ReplyCache, line: dict, bodies: dict[str, dict]) -> tuple[str, Entry | str]:
    """One line of a Batch API output (or error) file: its key and the entry stored, or why it failed."""
    key = line.get("custom_id", "")
    response = line.get("response") or {}
    if key not in bodies:
        return key, "unknown custom_id: not a request of this file"
    if line.get("error") or response.get("status_code") != 200:
        return key, f"status {response.get('status_code')}: {_line_error(line.get('error') or response.get('body'))}"
    reply = reply_of(response.get("body") or {})
    if reply is None:
        return key, "a completion without choices"
    entry = Entry(reply=reply, error=reply_error(request_of(bodies[key]), reply), via="batch")
    return key, cache.put(key, entry)


def refused(line: dict) -> bool:
    """A line the provider refused for good, as online (a 4xx but a timeout, conflict or 429; a 5xx saying the
    request is invalid): a context too long, a content filter. Asked again, it would be refused again."""
    status = (line.get("response") or {}).get("status_code")
    words = _line_error(line.get("error") or (line.get("response") or {}).get("body"))
    return isinstance(status, int) and status >= 400 and not transient_status(status, words)


@dataclass
class Waiter:
    future: asyncio.Future
    log: logging.Logger
    request: Request  # what to ask again when the journal's input file is gone
    resubmit: bool = True  # False online: a line the batch did not answer goes back to the caller, not into a batch


@dataclass
class OpenBatch:
    """An open journal's batch as the provider tells it (`glan batch status`)."""

    journal: Journal
    state: str
    completed: int = 0
    failed: int = 0
    total: int = 0
    created_at: int | None = None  # epoch seconds, at the provider
    seen_through: bool = False  # a running build holds the journal's lock


class Busy(EndpointError):
    """A running build sees this batch through: cancelled under it, its unanswered lines would go out again."""


class Batcher:
    def __init__(self, client, cache: ReplyCache, cache_dir: str | Path, settings: SendSettings, endpoint: str = ""):
        self.client = client
        self.endpoint = endpoint
        self.cache = cache
        self.folder = Path(cache_dir) / "batches"
        self.journals = Journals(self.folder)
        self.batch = settings.batch
        self.limits = FileLimits.of(self.batch)
        self.max_attempts = settings.max_attempts
        self.retry = settings.retry
        self.waiting: dict[str, list[Waiter]] = {}
        self.queue: dict[str, dict[str, bytes]] = {}  # model -> the next file's lines, by key
        self.failures: dict[str, int] = {}
        self.open: dict[str, Journal] = {}  # key -> the unfinished journal entry it is in
        self.runs: dict[str, asyncio.Task] = {}  # journal name -> the task that sees its batch through
        self.enqueued: dict[str, tuple[str, int]] = {}  # journal name -> (model, tokens) of batches created, not ended
        self.last_arrival = 0.0
        self.gatherer: asyncio.Task | None = None
        self.cleanups: set[asyncio.Task] = set()  # deletes of closed batches' files at the provider
        self.loaded = False

    def holds(self, key: str) -> bool:
        """Whether the key is in an open batch (of this run or an earlier one): online, it is waited for."""
        self._load()
        return key in self.open

    async def answer(self, request: Request, key: str, log: logging.Logger) -> Entry:
        """Batch mode: the stored entry for this attempt, once a batch has answered it. A line a batch did not
        answer goes into a later one, until answered or out of attempts (EndpointError)."""
        entry = await self._wait(request, key, log, resubmit=True)
        assert entry is not None  # resubmitted until answered
        return entry

    async def answer_if_open(self, request: Request, key: str, log: logging.Logger) -> Entry | None:
        """Online: the entry an open batch (an interrupted batch build's) stored for this attempt, once it has;
        None when no batch answered the key, which the caller then sends itself."""
        self._load()
        if key not in self.open:  # its batch closed meanwhile
            return self.cache.get(key)
        return await self._wait(request, key, log, resubmit=False)

    async def _wait(self, request: Request, key: str, log: logging.Logger, resubmit: bool) -> Entry | None:
        self._load()
        waiter = Waiter(asyncio.get_running_loop().create_future(), log, request, resubmit)
        self.waiting.setdefault(key, []).append(waiter)
        if key in self.open:
            self._run(self.open[key])
        elif not any(key in lines for lines in self.queue.values()):
            self._enqueue(key, chat_body(request))
        try:
            return await waiter.future
        finally:
            waiters = self.waiting.get(key, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self.waiting.pop(key, None)
                for lines in self.queue.values():
                    lines.pop(key, None)

    def open_journals(self) -> list[Journal]:
        """Every open journal of the cache of this endpoint (or of none recorded: journals older than the field)."""
        self._load()
        return [j for j in self.journals.open.values() if j.endpoint in ("", self.endpoint)]

    async def status(self, journal: Journal) -> OpenBatch:
        seen_through = held(journal.lock)
        if journal.batch_id is None:
            state = "uploaded, not created yet" if journal.file_id else "gathered, not uploaded yet"
            return OpenBatch(journal, state, total=len(journal.keys), seen_through=seen_through)
        try:
            batch = await self._call(journal, "batches.retrieve", self.client.batches.retrieve, journal.batch_id)
        except Refused as error:
            return OpenBatch(journal, f"unknown at the provider ({error})", seen_through=seen_through)
        counts = batch.request_counts
        completed, failed, total = (counts.completed, counts.failed, counts.total) if counts else (0, 0, 0)
        return OpenBatch(journal, batch.status, completed, failed, total, batch.created_at, seen_through)

    async def cancel(self, journal: Journal) -> None:
        """Cancel the journal's batch, store the replies it completed and close the journal: the next build asks
        the rest (online or in a new batch). Busy while a build sees it through."""
        if held(journal.lock):
            raise Busy(f"batch {journal.batch_id or journal.name}: a running build waits for it; stop the build first")
        lock = await self.journals.own(journal, self.batch["poll_seconds"], lambda: None)
        try:
            if journal.done:
                return
            if journal.creating and journal.batch_id is None:
                journal.batch_id = await self._call(journal, "batches.list", self._find, journal)
            if journal.batch_id is None:
                self._close(journal, "cancelled before its batch was created")
                self._discard(journal, journal.file_id)
                return
            batch = await self._call(journal, "batches.cancel", self.client.batches.cancel, journal.batch_id)
            if batch.status not in TERMINAL:
                batch = await self._poll(journal)
            await self._collect(journal, batch, "cancelled")
        finally:
            self.journals.let_go(journal, lock)

    async def aclose(self) -> None:
        running = sorted({j.batch_id for j in self.open.values() if j.batch_id and j.name in self.runs})
        if running:  # stopped (Ctrl-C, a failed job) while batches run on, paid for: say where they are
            print(
                f"{len(running)} batch(es) still open at the provider ({', '.join(running)}): the next run waits "
                "for them and stores their replies, nothing is sent again",
                file=sys.stderr,
                flush=True,
            )
        if self.cleanups:
            await asyncio.wait(self.cleanups, timeout=CLEANUP_SECONDS)
        tasks = [t for t in (self.gatherer, *self.runs.values(), *self.cleanups) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- gathering ---------------------------------------------------------------------------

    def _load(self) -> None:
        """Unfinished journal entries of earlier runs: their keys wait on their batches, never sent again."""
        if self.loaded:
            return
        self.loaded = True
        self._look()

    def _look(self) -> None:
        """What other processes journalled since the last look: their keys are waited for, never sent again."""
        for journal in self.journals.scan():
            if not journal.done:
                self.open.update(dict.fromkeys(journal.keys, journal))

    async def _gather(self) -> None:
        while any(self.queue.values()):
            idle = time.monotonic() - self.last_arrival
            for model, queued in list(self.queue.items()):
                full = self.limits.full(len(queued), sum(map(len, queued.values())))
                if queued and (full or idle >= self.batch["gather_seconds"]):
                    self._cut(model, queued)
                if not queued:
                    del self.queue[model]
            if any(self.queue.values()):
                await asyncio.sleep(max(0.0, self.batch["gather_seconds"] - (time.monotonic() - self.last_arrival)))

    def _cut(self, model: str, queue: dict[str, bytes]) -> None:
        """Take one file's worth of a model's queue, journal it, and start seeing its batch through. Under the
        folder's lock: a key another process journalled meanwhile waits on that process's batch instead."""
        with self.journals.cutting():
            self._look()
            for key in [key for key in queue if key in self.open]:
                del queue[key]
                self._run(self.open[key])
            if not queue:
                return
            lines = next(self.limits.files(list(queue.items())))
            for key, _ in lines:
                del queue[key]
            content = b"".join(line for _, line in lines)
            sha = hashlib.sha256(content).hexdigest()
            path, copies = self.folder / f"{sha}.json", 1
            while path.exists():  # the same lines asked again (a batch that was lost): the first journal stays
                copies += 1
                path = self.folder / f"{sha}-{copies}.json"
            keys = [key for key, _ in lines]
            tokens = len(content) // BYTES_PER_TOKEN
            journal = Journal(path=path, sha256=sha, keys=keys, model=model, endpoint=self.endpoint, tokens=tokens)
            write_bytes_atomic(journal.input, content)
            journal.save()  # the keys are journalled before anything goes out
            self.journals.add(journal)
        self.open.update(dict.fromkeys(journal.keys, journal))
        self._run(journal)

    # -- one batch, from upload to stored replies ----------------------------------------------

    def _run(self, journal: Journal) -> None:
        task = self.runs.get(journal.name)
        if task is None or task.done():
            self.runs[journal.name] = asyncio.create_task(self._see_through(journal))

    def _say(self, journal: Journal, text: str) -> None:
        """One line in the run's output, and in the log of every job that waits on this batch."""
        message = f"batch {journal.batch_id or journal.sha256[:12]} ({len(journal.keys)} requests): {text}"
        print(message, file=sys.stderr, flush=True)
        logs = {w.log for key in journal.keys for w in self.waiting.get(key, [])}
        for log in logs:
            log.info("%s", message)

    async def _see_through(self, journal: Journal) -> None:
        """Upload, create, poll and store, as the one process that holds the journal's lock; a journal another
        process closed meanwhile is settled from the cache it stored into."""
        waiting = partial(self._say, journal, "seen through by another process: waiting for it")
        lock = await self.journals.own(journal, min(self.batch["poll_seconds"], OWNER_LOOK_SECONDS), waiting)
        try:
            if journal.done:
                self._settle(journal)
            else:
                await self._see_through_owned(journal)
        finally:
            self.journals.let_go(journal, lock)

    async def _see_through_owned(self, journal: Journal) -> None:
        refused = 0  # times the provider's enqueued-token limit refused this file
        try:
            while True:
                if journal.batch_id is None:
                    if journal.file_id is None and not journal.input.exists():
                        self._abandon(journal, f"its input file {journal.input} is gone before the upload")
                        return
                    await self._room_for(journal)
                    await self._submit(journal)
                self.enqueued[journal.name] = (journal.model, self._tokens(journal))
                batch = await self._poll(journal)
                if batch.status == "failed":
                    if _token_limit(batch):
                        wait = self.batch["poll_seconds"] * min(2**refused, TOKEN_LIMIT_BACKOFF)
                        refused += 1
                        setting = " (set llm.batch.max_enqueued_tokens to it)"
                        setting = "" if self.limits.max_enqueued_tokens else setting
                        self._say(
                            journal,
                            f"{_errors(batch).rstrip('.')}: the provider's limit on {journal.model}'s enqueued "
                            f"tokens{setting}; the file waits {wait:g}s for room and is tried again",
                        )
                        journal.batch_id, journal.creating = None, False
                        journal.save()
                        self.enqueued.pop(journal.name, None)
                        await asyncio.sleep(wait)
                        continue
                    self._fail(journal, f"the batch failed validation: {_errors(batch)}")
                    self._close(journal, f"failed validation: {_errors(batch)}")
                    self._discard(journal, journal.file_id)
                    return
                await self._collect(journal, batch)
                return
        except Exception as error:
            if isinstance(error, Refused) and error.status == 404 and journal.batch_id is not None:
                self._abandon(journal, f"the provider knows no batch {journal.batch_id} ({error})")
                return
            # its waiters fail with the reason; the journal keeps it for a later run
            self._say(journal, f"stopped: {type(error).__name__}: {error}")
            self._fail(journal, f"{type(error).__name__}: {error}")
        finally:
            self.enqueued.pop(journal.name, None)

    def _tokens(self, journal: Journal) -> int:
        """About the input file's tokens; an input deleted since keeps what it claimed (none if it never did)."""
        return journal.input_tokens() or self.enqueued.get(journal.name, ("", 0))[1]

    async def _room_for(self, journal: Journal) -> None:
        """Hold the file while the model's batches in progress leave it no room under max_enqueued_tokens."""
        limit = self.limits.max_enqueued_tokens
        if limit is None:
            return
        tokens = self._tokens(journal)

        def enqueued() -> int:
            """This process's batches and every other open one of the cache, from any process or run."""
            self._look()
            others = self.journals.tokens(journal.model, but=self.enqueued.__contains__)
            return others + sum(n for model, n in self.enqueued.values() if model == journal.model)

        if enqueued() and enqueued() + tokens > limit:
            self._say(
                journal, f"held: about {tokens:,} tokens, {enqueued():,} enqueued of max_enqueued_tokens {limit:,}"
            )
            while enqueued() and enqueued() + tokens > limit:
                await asyncio.sleep(self.batch["poll_seconds"])
        self.enqueued[journal.name] = (journal.model, tokens)  # claimed before the next held file looks

    async def _call(self, journal: Journal, what: str, call: Callable[..., Awaitable[T]], *args, **kwargs) -> T:
        """One call of the Files or Batches API, retried as an online request is (llm.retry) on a 429, a 5xx, a
        timeout or a dropped connection; Refused on a permanent error, EndpointError once the retries are spent."""
        import openai

        started, attempt = time.monotonic(), 0
        while True:
            try:
                return await call(*args, **kwargs)
            except openai.APIConnectionError as error:  # timeouts included
                failure = TransientError(f"{what}: no answer ({type(error).__name__}: {error})")
            except openai.APIStatusError as error:
                words = server_words(error)
                said = f"{what}: HTTP {error.status_code}: {words}"
                if not transient_status(error.status_code, words):
                    raise Refused(said, error.status_code) from error
                failure = TransientError(said, retry_after(error.response), error.status_code == 429)
            wait = self.retry.wait(attempt, failure, time.monotonic() - started)
            self._say(journal, f"retrying in {wait:.1f}s: {failure}")
            await asyncio.sleep(wait)
            attempt += 1

    async def _submit(self, journal: Journal) -> None:
        if self.cache.stopped is not None:  # its replies could not be stored: nothing more goes out
            raise self.cache.stopped
        if journal.creating:  # a run before this one may have created it and died before hearing its id
            journal.batch_id = await self._call(journal, "batches.list", self._find, journal)
            if journal.batch_id:
                self._say(journal, "found by its metadata: waiting for it instead of sending again")
                journal.save()
                return
        if journal.file_id is None:
            upload = (journal.input.name, journal.input.read_bytes())
            create = self.client.files.create
            uploaded = await self._call(
                journal, "files.create", create, file=upload, purpose="batch", expires_after=FILE_EXPIRY
            )
            journal.file_id = uploaded.id
            journal.save()
        journal.creating = True
        journal.save()
        created = await self._call(
            journal,
            "batches.create",
            self.client.batches.create,
            input_file_id=journal.file_id,
            endpoint=ENDPOINT,
            completion_window="24h",
            metadata={METADATA_KEY: journal.sha256},
            output_expires_after=FILE_EXPIRY,
        )
        journal.batch_id = created.id
        journal.save()
        self._say(journal, "created")

    async def _find(self, journal: Journal) -> str | None:
        """The batch created from this journal's upload (its metadata names the content, its input the file id)."""
        async for batch in self.client.batches.list(limit=100):
            mine = (batch.metadata or {}).get(METADATA_KEY) == journal.sha256 and batch.input_file_id == journal.file_id
            if mine and batch.status != "failed":
                return batch.id
        return None

    async def _poll(self, journal: Journal):
        wait = self.batch["poll_seconds"]
        while True:
            batch = await self._call(journal, "batches.retrieve", self.client.batches.retrieve, journal.batch_id)
            counts = batch.request_counts
            state = batch.status + (f" {counts.completed}/{counts.total}" if counts and counts.total else "")
            if state != journal.state:
                journal.state = state
                self._say(journal, state)
            if batch.status in TERMINAL:
                return batch
            await asyncio.sleep(wait)
            wait = min(wait * 1.5, 10 * self.batch["poll_seconds"])

    async def _collect(self, journal: Journal, batch, why: str = "") -> None:
        bodies = self._bodies(journal)
        answered: set[str] = set()
        lost: list[str] = []
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            try:
                content = await self._call(journal, "files.content", self.client.files.content, file_id)
            except Refused as error:  # expired or deleted: its lines are asked again, once, as the journal closes
                lost.append(f"file {file_id} cannot be read ({error})")
                self._say(journal, f"{lost[-1]}: the requests it answered are asked again")
                continue
            for number, raw in enumerate(content.content.splitlines(), 1):
                if number % YIELD_EVERY == 0:  # 50,000 lines take seconds: the other jobs' requests go on meanwhile
                    await asyncio.sleep(0)
                if not raw.strip():
                    continue
                try:
                    line = orjson.loads(raw)
                    key, stored = store_line(self.cache, line, bodies)
                except (orjson.JSONDecodeError, AttributeError, TypeError, KeyError, IndexError):
                    self._say(
                        journal,
                        f"line {number} of file {file_id} is not a Batch API output line, skipped "
                        f"(its request, if any, is asked again): {raw[:80]!r}",
                    )
                    continue
                answered.add(key)
                if isinstance(stored, Entry):
                    self._resolve(key, stored)
                elif refused(line):
                    journal.refused[key] = stored
                    self._reject(key, stored)
                else:
                    self._retry(key, bodies, stored)
        for key in journal.keys:
            if key not in answered:  # expired or cancelled before it was done: into a later batch, as an attempt
                self._retry(key, bodies, f"not done when the batch ended ({batch.status})")
        # closed before the files go: a crash between leaves them to their expiry
        self._close(journal, "; ".join(filter(None, [why, *lost])))
        self._discard(journal, batch.output_file_id, batch.error_file_id, journal.file_id)

    def _bodies(self, journal: Journal) -> dict[str, dict]:
        """The bodies of the journal's lines; with its input file gone, those of the requests waiting now."""
        try:
            return journal.bodies()
        except FileNotFoundError:
            self._say(journal, f"its input file {journal.input} is gone: only the requests waiting now are stored")
            return self._waiting_bodies(journal)

    def _waiting_bodies(self, journal: Journal) -> dict[str, dict]:
        return {key: chat_body(self.waiting[key][0].request) for key in journal.keys if self.waiting.get(key)}

    def _abandon(self, journal: Journal, reason: str) -> None:
        """Close a journal whose batch can never be read, and ask its waiting requests again, in a later batch."""
        self._say(journal, f"{reason}: closed, its requests are asked again")
        self._close(journal, reason)
        bodies = self._waiting_bodies(journal)
        for key in bodies:
            self._retry(key, bodies, reason)
        self._discard(journal, journal.file_id)

    def _discard(self, journal: Journal, *file_ids: str | None) -> None:
        """Delete a closed batch's files at the provider, beside its waiters going on (aclose waits for it)."""
        task = asyncio.create_task(self._delete(journal, [file_id for file_id in file_ids if file_id]))
        self.cleanups.add(task)
        task.add_done_callback(self.cleanups.discard)

    async def _delete(self, journal: Journal, file_ids: list[str]) -> None:
        """One that cannot be deleted is left to its expiry."""
        for file_id in file_ids:
            try:
                await self._call(journal, "files.delete", self.client.files.delete, file_id)
            except EndpointError as error:
                if not (isinstance(error, Refused) and error.status == 404):  # gone already
                    self._say(journal, f"{error}: left to expire")

    def _close(self, journal: Journal, reason: str = "") -> None:
        """The journal stays, the record that its keys were paid for; its input file goes."""
        journal.done, journal.reason = True, reason
        journal.save()
        journal.input.unlink(missing_ok=True)
        self._forget(journal)

    def _forget(self, journal: Journal) -> None:
        journal.lock.unlink(missing_ok=True)  # a process that takes it after finds the journal closed
        self.journals.closed(journal)
        for key in journal.keys:
            if self.open.get(key) is journal:
                del self.open[key]

    def _settle(self, journal: Journal) -> None:
        """A journal another process saw through: its replies are in the cache; a line refused for good fails,
        as it did there, and one its batch did not answer is asked again."""
        self._forget(journal)
        bodies = self._waiting_bodies(journal)
        for key in bodies:
            entry = self.cache.get(key)
            if entry is not None:
                self._resolve(key, entry)
            elif key in journal.refused:
                self._reject(key, journal.refused[key])
            else:
                self._retry(key, bodies, journal.reason or f"not answered by batch {journal.batch_id}")

    def _resolve(self, key: str, entry: Entry) -> None:
        for waiter in self.waiting.get(key, []):
            if not waiter.future.done():
                waiter.future.set_result(entry)

    def _retry(self, key: str, bodies: dict[str, dict], reason: str) -> None:
        for waiter in self.waiting.get(key, []):
            if not waiter.resubmit and not waiter.future.done():  # online: its caller sends it
                waiter.future.set_result(None)
        if not any(waiter.resubmit for waiter in self.waiting.get(key, [])):
            return
        self.failures[key] = self.failures.get(key, 0) + 1
        if self.failures[key] >= self.max_attempts:
            for waiter in self.waiting[key]:
                if not waiter.future.done():
                    waiter.future.set_exception(
                        EndpointError(f"batch line {key} failed {self.failures[key]} times: {reason}")
                    )
            return
        self._enqueue(key, bodies[key])

    def _reject(self, key: str, reason: str) -> None:
        """Fail the line's requests at once, as online: no later batch would answer it."""
        for waiter in self.waiting.get(key, []):
            if not waiter.future.done():
                waiter.future.set_exception(EndpointError(f"batch line {key} was refused: {reason}"))

    def _enqueue(self, key: str, body: dict) -> None:
        self.queue.setdefault(body["model"], {})[key] = input_line(key, body)
        self.last_arrival = time.monotonic()
        if self.gatherer is None or self.gatherer.done():
            self.gatherer = asyncio.create_task(self._gather())

    def _fail(self, journal: Journal, reason: str) -> None:
        for key in journal.keys:
            for waiter in self.waiting.get(key, []):
                if not waiter.future.done():
                    waiter.future.set_exception(EndpointError(reason))


def _line_error(error) -> str:
    """The provider's words for a failed line: `{"code", "message"}`, or an error body `{"error": {...}}`."""
    if isinstance(error, dict):
        inner = error.get("error", error)
        if isinstance(inner, dict) and inner.get("message"):
            return ": ".join(str(part) for part in (inner.get("code"), inner["message"]) if part)
        return orjson.dumps(error).decode()
    return str(error)


def _errors(batch) -> str:
    """The provider's reasons for failing a batch, each with the input line it names (if any)."""
    errors = getattr(batch, "errors", None)
    data = getattr(errors, "data", None) or []
    said = (f"{e.code}: {e.message}" + (f" (input line {e.line})" if getattr(e, "line", None) else "") for e in data)
    return "; ".join(said) or "no reason given"


def _token_limit(batch) -> bool:
    errors = getattr(batch, "errors", None)
    return any(e.code == "token_limit_exceeded" for e in (getattr(errors, "data", None) or []))
