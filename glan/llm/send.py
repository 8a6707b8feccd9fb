"""Send requests through the cache: hits cost nothing, misses go out concurrently under a cap.

Every reply is stored as soon as it arrives, valid or not: a rejected reply is stored with its
reason, so a re-run (or a resume after a crash) moves straight on to what is still unanswered
instead of paying again for replies it already has.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

import orjson

from glan.llm.backends import Backend, make_backend
from glan.llm.cache import Entry, open_cache
from glan.llm.limits import Limiter
from glan.llm.request import Reply, Request
from glan.llm.retry import RetryPolicy, TransientError, call_with_retries
from glan.llm.slots import ENVIRONMENT, SlotClient
from glan.llm.validate import reply_error

log = logging.getLogger("glan")


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
    pool: SlotClient | None = None,
) -> tuple[list[Outcome], SendStats]:
    stats = SendStats(planned=len(requests))
    retry = retry or RetryPolicy()

    def count_retry(error: Exception) -> None:
        stats.retried += 1
        log.info("retrying after %s", error)

    async def ask(request: Request) -> Reply:
        async def once() -> Reply:
            tokens = estimated_tokens(request)
            await limiter.acquire(tokens)
            rate_limited, retry_after = False, None
            try:
                if pool:
                    await pool.acquire(tokens)
                try:
                    return await backend.complete(request)
                finally:
                    if pool:
                        pool.release()
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

    outcomes = await asyncio.gather(*(one(r) for r in requests))
    return list(outcomes), stats


def job_limiter(settings: dict, pooled: bool = False) -> Limiter:
    """This job's own limits. With the run's slot pool, the pool holds the cap and the budgets;
    without it (on a cluster), the job keeps to its granted `llm_slots` and that share of the budgets."""
    cap = settings.get("concurrency", 8)
    if pooled:
        return Limiter(cap)
    slots = settings.get("slots", cap)
    budgets = {k: v * slots / cap for k, v in settings.get("rate_limits", {}).items() if v}
    return Limiter(slots, **budgets)


async def connect_pool() -> SlotClient | None:
    address = os.environ.get(ENVIRONMENT)
    if not address:
        return None
    try:
        return await SlotClient.connect(address)
    except OSError as error:
        log.warning("slot pool at %s unreachable (%s): keeping to this job's llm_slots", address, error)
        return None


def send(requests: list[Request], settings: dict, cache_dir: str) -> tuple[list[Outcome], SendStats]:
    """The one effect of a stage: resolve every request to a reply, through the cache."""

    async def run():
        backend = make_backend(settings)
        pool = await connect_pool()
        try:
            with open_cache(cache_dir) as cache:
                return await send_all(
                    requests,
                    backend,
                    cache,
                    job_limiter(settings, pooled=pool is not None),
                    max_attempts=settings.get("max_attempts", 3),
                    retry=RetryPolicy.from_settings(settings),
                    pool=pool,
                )
        finally:
            if pool:
                await pool.close()
            await backend.aclose()

    return asyncio.run(run())
