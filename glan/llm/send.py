"""Send requests through the cache: hits cost nothing, misses go out concurrently under a cap.

One request's path, all of it here: walk its attempts through the cache (glan.llm.lookup); for
the first attempt not cached, take a slot of the limiter, ask the backend, give the slot back,
and on a transient failure wait as the retry policy says and ask again; validate the reply and
store it the moment it arrives, valid or not. A rejected reply is stored with its reason, so a
re-run (or a resume after a crash) moves straight on to the next attempt instead of paying again.
Where a miss goes is its transport: `Online` (limiter, backend, retry, store), `Batched` (a batch of
batch mode, glan.llm.batch) or, online where an interrupted batch build left batches open,
`LeftOpenFirst`; each answers a request (`answer`) and says the price it is metered at (`via`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from pathlib import Path
from typing import Protocol

from glan.llm.backends import Backend, make_backend
from glan.llm.batch import Batcher
from glan.llm.cache import Entry, ReplyCache, StoreFailed, open_cache, say_resent
from glan.llm.limits import Slots, job_share
from glan.llm.lookup import Outcome, lookup
from glan.llm.meter import JobCounts, Meter, OverBudget, Tally
from glan.llm.request import Reply, Request, canonical_json
from glan.llm.retry import EndpointError, RetryPolicy, TransientError
from glan.llm.settings import SendSettings
from glan.llm.validate import reply_error

LOG = logging.getLogger("glan")
LOOKUP_BATCH = 64


class Online:
    """A miss asked at once: a slot of the limiter, the backend, retried on a transient failure as the policy
    says; the reply validated and stored the moment it arrives, valid or not."""

    def __init__(self, backend: Backend, cache: ReplyCache, limiter: Slots, retry: RetryPolicy, job: JobCounts, log):
        self.backend, self.cache, self.limiter = backend, cache, limiter
        self.retry, self.job, self.log = retry, job, log

    def via(self, key: str) -> str:
        return "online"

    async def answer(self, request: Request, key: str) -> Entry:
        reply = await self._ask(request)
        entry = Entry(reply=reply, error=reply_error(request, reply))
        try:
            return self.cache.put(key, entry)  # what the cache holds: another job may have stored this key first
        except StoreFailed:
            return entry  # spilled if it could be; no further request goes out (`_ask`)

    async def _ask(self, request: Request) -> Reply:
        started = time.monotonic()
        tokens = request.most_tokens
        attempt = 0
        while True:
            await self.limiter.acquire(tokens)
            if self.cache.stopped is not None:  # a reply could not be stored: send nothing more
                self.limiter.release()
                raise self.cache.stopped
            try:
                reply = await self.backend.complete(request)
            except TransientError as error:
                self.limiter.release(error.rate_limited, error.retry_after)
                wait = self.retry.wait(attempt, error, time.monotonic() - started)
                self.job.add(request.model, retries=1)
                self.log.info("retrying after %s", error)
                await asyncio.sleep(wait)
                attempt += 1
            except BaseException:
                self.limiter.release()
                raise
            else:
                self.limiter.release()
                return reply


class Batched:
    """A miss waits for a batch (batch mode's Batcher), which asks it again until answered or out of attempts."""

    def __init__(self, batcher: Batcher, log):
        self.batcher, self.log = batcher, log

    def via(self, key: str) -> str:
        return "batch"

    async def answer(self, request: Request, key: str) -> Entry:
        return await self.batcher.answer(request, key, self.log)


class LeftOpenFirst:
    """Online, where an interrupted batch build left batches open: a miss in one waits for that batch, and
    is asked online only if the batch did not answer it. Nothing is paid twice when the mode changes."""

    def __init__(self, batcher: Batcher, online: Online, log):
        self.batcher, self.online, self.log = batcher, online, log

    def via(self, key: str) -> str:
        return "batch" if self.batcher.holds(key) else "online"

    async def answer(self, request: Request, key: str) -> Entry:
        entry = await self.batcher.answer_if_open(request, key, self.log)
        return await self.online.answer(request, key) if entry is None else entry


class Transport(Protocol):
    """Where a miss goes, and the price it is metered at (`via`)."""

    def via(self, key: str) -> str: ...

    async def answer(self, request: Request, key: str) -> Entry: ...


async def send_all(
    requests: list[Request],
    backend: Backend,
    cache: ReplyCache,
    limiter: Slots,
    max_attempts: int,
    retry: RetryPolicy,
    log: logging.Logger = LOG,
    batcher: Batcher | None = None,
    meter: Meter | None = None,
    stage: str = "",
    open_batches: Batcher | None = None,
) -> tuple[list[Outcome], Tally]:
    """Online (`Online`), each miss is asked at once under the limiter; in batch mode (`batcher`: `Batched`) it
    waits for a batch. Either way what comes back is the entry the cache now holds for the attempt. Online, a
    miss in a batch still open (`open_batches`: one an interrupted batch build left) waits for that batch,
    and is sent only if the batch did not answer it: nothing is paid twice when the mode changes.

    Every step is counted once, for the job (the tally returned) and on the process's `meter` under
    `stage` alike (glan.llm.meter.JobCounts); a request the budget refuses is not sent, the job's other
    requests go on (those in flight are paid for), and then OverBudget is raised. Once a reply could not
    be stored (`cache.stopped`: a full disk, a read-only cache), requests are refused likewise and
    StoreFailed is raised; the replies in flight are kept in the cache's spill file."""
    meter = meter or Meter()
    job = meter.job_started(stage, requests)
    online = Online(backend, cache, limiter, retry, job, log)
    transport: Transport = online
    if batcher is not None:
        transport = Batched(batcher, log)
    elif open_batches is not None:
        transport = LeftOpenFirst(open_batches, online, log)
    refusals: list[OverBudget | StoreFailed] = []
    resent: list[str] = []  # keys whose stored entry could not be read

    async def one(request: Request) -> Outcome:
        start = rejected = 0
        while True:
            found = lookup(request, backend.identity, cache, max_attempts, start)
            rejected += found.rejected  # rejected replies the cache held: counted as on the build that paid for them
            if found.outcome is not None:
                return job.resolved(found.outcome, cached=start == 0, rejected=rejected)
            pending, key = found.pending, found.key
            try:
                entry = await meter.metered(job, pending, transport.via(key), partial(transport.answer, pending, key))
            except (OverBudget, StoreFailed) as refusal:
                refusals.append(refusal)
                job.add(request.model, rejected=rejected)
                return Outcome(pending, key, None, str(refusal))
            if key in cache.damaged:
                resent.append(key)
            if entry.valid:
                return job.resolved(Outcome(pending, key, entry.reply), cached=False, rejected=rejected)
            rejected += 1
            start = pending.attempt + 1
            if start == max_attempts:
                return job.resolved(Outcome(pending, key, None, entry.error), cached=False, rejected=rejected)

    # A request's first step (key and cache lookup) runs without a pause: started all at once, a
    # job's thousands of lookups would keep replies to other jobs waiting. Start them in batches.
    # If the job fails or is cancelled, none of its requests may go on without it.
    started = []
    try:
        for index, request in enumerate(requests):
            if index and index % LOOKUP_BATCH == 0:
                await asyncio.sleep(0)
            started.append(asyncio.ensure_future(one(request)))
        outcomes = await asyncio.gather(*started)
    except BaseException:
        for task in started:
            task.cancel()
        await asyncio.gather(*started, return_exceptions=True)
        raise
    if resent:
        say_resent(log, stage, cache.directory, resent)
    if refusals:
        raise refusals[0]
    return list(outcomes), job.tally


class Sender:
    """What every send in one process shares: a backend (with its connection pool) per endpoint
    setting, an open cache per directory, the limiter that holds this process's cap, and its meter."""

    def __init__(self, limiter: Slots, meter: Meter | None = None):
        self.limiter = limiter
        self.meter = meter or Meter()
        self._backends: dict[bytes, Backend] = {}
        self._caches: dict[str, ReplyCache] = {}
        self._batchers: dict[tuple[str, str], Batcher] = {}

    def backend(self, settings: SendSettings) -> Backend:
        key = canonical_json(settings.connection)
        if key not in self._backends:
            self._backends[key] = make_backend(settings.connection)
        return self._backends[key]

    def cache(self, directory: str) -> ReplyCache:
        if directory not in self._caches:
            self._caches[directory] = open_cache(directory)
        return self._caches[directory]

    def batcher(self, backend: Backend, settings: SendSettings, cache_dir: str) -> Batcher:
        """One per endpoint and cache: every job of the process gathers into the same batches."""
        client = backend.batch_api
        if client is None:
            raise EndpointError(
                f"llm.mode batch needs an OpenAI-compatible endpoint (llm.backend openai), not {settings.backend}"
            )
        key = (backend.identity, cache_dir)
        if key not in self._batchers:
            self._batchers[key] = Batcher(client, self.cache(cache_dir), cache_dir, settings, backend.identity)
        return self._batchers[key]

    async def send(
        self,
        requests: list[Request],
        settings: SendSettings,
        cache_dir: str,
        log: logging.Logger = LOG,
        stage: str = "",
    ) -> tuple[list[Outcome], Tally]:
        backend = self.backend(settings)
        batch = settings.mode == "batch"
        batches = Path(cache_dir) / "batches"  # online: a batch left open there is waited for
        waits = batch or (batches.is_dir() and backend.batch_api is not None)
        batcher = self.batcher(backend, settings, cache_dir) if waits else None
        return await send_all(
            requests,
            backend,
            self.cache(cache_dir),
            self.limiter,
            max_attempts=settings.max_attempts,
            retry=settings.retry,
            log=log,
            batcher=batcher if batch else None,
            meter=self.meter,
            stage=stage,
            open_batches=None if batch else batcher,
        )

    async def aclose(self) -> None:
        for batcher in self._batchers.values():
            await batcher.aclose()
        self._batchers.clear()
        for backend in self._backends.values():
            await backend.aclose()
        for cache in self._caches.values():
            cache.close()
        self._backends.clear()
        self._caches.clear()


def send(requests: list[Request], llm: dict, cache_dir: str, log: logging.Logger = LOG) -> tuple[list[Outcome], Tally]:
    """Resolve every request to a reply through the cache, in this process and within its own limits."""
    settings = SendSettings.of(llm)

    async def run():
        sender = Sender(job_share(settings))
        try:
            return await sender.send(requests, settings, cache_dir, log)
        finally:
            await sender.aclose()

    return asyncio.run(run())
