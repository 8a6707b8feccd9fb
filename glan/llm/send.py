"""Send requests through the cache: hits cost nothing, misses go out concurrently under a cap.

Every reply is stored as soon as it arrives, valid or not: a rejected reply is stored with its
reason, so a re-run (or a resume after a crash) moves straight on to what is still unanswered
instead of paying again for replies it already has.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import orjson

from glan.llm.backends import Backend, make_backend
from glan.llm.cache import Entry, open_cache
from glan.llm.limits import Limiter
from glan.llm.request import Reply, Request, canonical_json
from glan.llm.retry import RetryPolicy, TransientError, call_with_retries
from glan.llm.validate import reply_error

LOG = logging.getLogger("glan")
LOOKUP_BATCH = 64


@dataclass
class Outcome:
    """The last attempt made for a planned request: its reply if valid, or why it was rejected."""

    request: Request
    key: str
    reply: Reply | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def json(self):
        return orjson.loads(self.reply.text)


@dataclass
class SendStats:
    planned: int = 0
    cached: int = 0
    sent: int = 0
    retried: int = 0
    rejected_replies: int = 0
    failed: int = 0

    def summary(self) -> str:
        return (
            f"planned={self.planned} cached={self.cached} sent={self.sent} retried={self.retried} "
            f"rejected_replies={self.rejected_replies} failed={self.failed}"
        )


def estimated_tokens(request: Request) -> int:
    """For per-minute token budgets: about four characters a token, plus the whole reply allowance."""
    return sum(len(m["content"]) for m in request.messages) // 4 + request.params.get("max_tokens", 0)


async def send_all(
    requests: list[Request],
    backend: Backend,
    cache,
    limiter: Limiter,
    max_attempts: int,
    retry: RetryPolicy | None = None,
    log: logging.Logger = LOG,
) -> tuple[list[Outcome], SendStats]:
    stats = SendStats(planned=len(requests))
    retry = retry or RetryPolicy()

    def count_retry(error: Exception) -> None:
        stats.retried += 1
        log.info("retrying after %s", error)

    async def ask(request: Request) -> Reply:
        async def once() -> Reply:
            await limiter.acquire(estimated_tokens(request))
            rate_limited, retry_after = False, None
            try:
                return await backend.complete(request)
            except TransientError as error:
                rate_limited, retry_after = error.rate_limited, error.retry_after
                raise
            finally:
                await limiter.release(rate_limited, retry_after)

        return await call_with_retries(once, retry, count_retry)

    async def one(request: Request) -> Outcome:
        for attempt in range(max_attempts):
            current = request.at_attempt(attempt)
            key = current.key(backend.identity)
            entry = cache.get(key)
            if entry is None:
                reply = await ask(current)
                entry = Entry(reply=reply, error=reply_error(current, reply))
                entry = cache.put(key, entry)  # what the cache holds: another job may have stored this key first
                stats.sent += 1
            else:
                stats.cached += 1
            if entry.valid:
                return Outcome(request=current, key=key, reply=entry.reply)
            stats.rejected_replies += 1
        stats.failed += 1
        return Outcome(request=current, key=key, reply=None, error=entry.error)

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
    return list(outcomes), stats


def job_limiter(settings: dict) -> Limiter:
    """A job sending on its own (on a cluster) keeps to its granted `llm_slots` and that share of the budgets."""
    cap = settings.get("concurrency", 8)
    slots = settings.get("slots", cap)
    budgets = {k: v * slots / cap for k, v in settings.get("rate_limits", {}).items() if v}
    return Limiter(slots, **budgets)


class Sender:
    """What every send in one process shares: a backend (with its connection pool) per endpoint
    setting, an open cache per directory, and the limiter that holds this process's cap."""

    def __init__(self, limiter: Limiter):
        self.limiter = limiter
        self._backends: dict[bytes, Backend] = {}
        self._caches: dict[str, object] = {}

    def backend(self, settings: dict) -> Backend:
        key = canonical_json({k: v for k, v in settings.items() if k != "slots"})
        if key not in self._backends:
            self._backends[key] = make_backend(settings)
        return self._backends[key]

    def cache(self, directory: str):
        if directory not in self._caches:
            self._caches[directory] = open_cache(directory)
        return self._caches[directory]

    async def send(
        self, requests: list[Request], settings: dict, cache_dir: str, log: logging.Logger = LOG
    ) -> tuple[list[Outcome], SendStats]:
        return await send_all(
            requests,
            self.backend(settings),
            self.cache(cache_dir),
            self.limiter,
            max_attempts=settings.get("max_attempts", 3),
            retry=RetryPolicy.from_settings(settings),
            log=log,
        )

    async def aclose(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()
        for cache in self._caches.values():
            cache.close()
        self._backends.clear()
        self._caches.clear()


def send(
    requests: list[Request], settings: dict, cache_dir: str, log: logging.Logger = LOG
) -> tuple[list[Outcome], SendStats]:
    """Resolve every request to a reply through the cache, in this process and within its own limits."""

    async def run():
        sender = Sender(job_limiter(settings))
        try:
            return await sender.send(requests, settings, cache_dir, log)
        finally:
            await sender.aclose()

    return asyncio.run(run())
