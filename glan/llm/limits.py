"""How fast a job may send: its share of the global cap, optional per-minute budgets, and AIMD on 429.

The cap is the job's `llm_slots`. On a 429 the job cuts its own limit by a quarter and pauses for
the endpoint's Retry-After; each run of successes as long as the limit wins one slot back, up to
the cap. Server errors (5xx) are only retried (glan.llm.retry), never taken as a sign of load.
"""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """A per-minute budget refilled continuously; `take` waits until the amount fits."""

    def __init__(self, per_minute: float):
        self.rate = per_minute / 60.0
        self.capacity = per_minute
        self.level = per_minute
        self.stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    async def take(self, amount: float) -> None:
        amount = min(amount, self.capacity)
        while True:
            self._refill()
            if self.level >= amount:
                self.level -= amount
                return
            await asyncio.sleep((amount - self.level) / self.rate)


class Limiter:
    def __init__(self, cap: int, requests_per_minute: float | None = None, tokens_per_minute: float | None = None):
        self.cap = max(1, cap)
        self.limit = float(self.cap)
        self.in_flight = 0
        self.successes = 0
        self.paused_until = 0.0
        self.cuts = 0
        self.requests = TokenBucket(requests_per_minute) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute) if tokens_per_minute else None
        self._changed = asyncio.Condition()

    async def acquire(self, tokens: int) -> None:
        async with self._changed:
            while True:
                pause = self.paused_until - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                    continue
                if self.in_flight < int(self.limit):
                    break
                await self._changed.wait()
            self.in_flight += 1
        if self.requests:
            await self.requests.take(1)
        if self.tokens:
            await self.tokens.take(tokens)

    async def release(self, rate_limited: bool = False, retry_after: float | None = None) -> None:
        async with self._changed:
            self.in_flight -= 1
            if rate_limited:
                self.limit = max(1.0, self.limit * 0.75)
                self.paused_until = max(self.paused_until, time.monotonic() + (retry_after or 1.0))
                self.successes = 0
                self.cuts += 1
            else:
                self.successes += 1
                if self.successes >= self.limit and self.limit < self.cap:
                    self.limit += 1
                    self.successes = 0
            self._changed.notify_all()
