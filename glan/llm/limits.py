"""How fast a job may send: its share of the global cap, optional per-minute budgets, and AIMD on 429.

The cap is the job's `llm_slots`. On a 429 the job cuts its own limit by a quarter and pauses for
the endpoint's Retry-After; each run of successes as long as the limit wins one slot back, up to
the cap. Server errors (5xx) are only retried (glan.llm.retry), never taken as a sign of load.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Protocol

from glan.llm.settings import SendSettings


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

    def _try(self, amount: float) -> float:
        """Take `amount` if it fits: 0; else the seconds until it will."""
        self._refill()
        if self.level >= amount:
            self.level -= amount
            return 0.0
        return (amount - self.level) / self.rate

    async def take(self, amount: float) -> None:
        amount = min(amount, self.capacity)
        while wait := self._try(amount):
            await asyncio.sleep(wait)


class Slots(Protocol):
    """What a send takes a slot of and gives it back to: a Limiter, or one process's end of a cap shared
    by several (glan.llm.shared)."""

    async def acquire(self, tokens: int) -> None: ...

    def release(self, rate_limited: bool = False, retry_after: float | None = None) -> None: ...


class Limiter:
    """Requests wait in a queue and each release hands its slot to the next in line: waking one
    waiter per free slot, not all of them, keeps a release cheap with thousands queued."""

    bucket = TokenBucket  # how a per-minute budget is kept

    def __init__(self, cap: int, requests_per_minute: float | None = None, tokens_per_minute: float | None = None):
        self.cap = max(1, cap)
        self.limit = float(self.cap)
        self.in_flight = 0
        self.successes = 0
        self.paused_until = 0.0
        self.cuts = 0
        self.requests = self.bucket(requests_per_minute) if requests_per_minute else None
        self.tokens = self.bucket(tokens_per_minute) if tokens_per_minute else None
        self._waiting: collections.deque[asyncio.Future] = collections.deque()
        self._resume: asyncio.TimerHandle | None = None

    async def acquire(self, tokens: int) -> None:
        await self._slot()
        if self.requests:
            await self.requests.take(1)
        if self.tokens:
            await self.tokens.take(tokens)

    async def _slot(self) -> None:
        if not self._waiting and not self._paused() and self.in_flight < int(self.limit):
            self.in_flight += 1
        else:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            self._hand_over()
            try:
                await waiter  # the slot is handed over with the wake-up: in_flight already counts it
            except asyncio.CancelledError:
                if waiter.cancelled():
                    self._waiting.remove(waiter)
                else:
                    self.in_flight -= 1
                    self._hand_over()
                raise

    def release(self, rate_limited: bool = False, retry_after: float | None = None) -> None:
        self._settle(rate_limited, retry_after)
        self._hand_over()

    def _settle(self, rate_limited: bool, retry_after: float | None) -> None:
        """AIMD on a request's return: a 429 cuts the limit by a quarter and pauses; a run of successes as
        long as the limit wins one slot back."""
        self.in_flight -= 1
        if rate_limited:
            self.limit = max(1.0, self.limit * 0.75)
            self.paused_until = max(self.paused_until, time.monotonic() + (1.0 if retry_after is None else retry_after))
            self.successes = 0
            self.cuts += 1
        else:
            self.successes += 1
            if self.successes >= self.limit and self.limit < self.cap:
                self.limit += 1
                self.successes = 0

    def _paused(self) -> bool:
        return time.monotonic() < self.paused_until

    def _hand_over(self) -> None:
        if self._paused():
            if self._resume is None:
                delay = self.paused_until - time.monotonic()
                self._resume = asyncio.get_running_loop().call_later(delay, self._resume_after_pause)
            return
        while self._waiting and self.in_flight < int(self.limit):
            self.in_flight += 1
            self._waiting.popleft().set_result(None)

    def _resume_after_pause(self) -> None:
        self._resume = None
        self._hand_over()


def job_share(settings: SendSettings) -> Limiter:
    """The limiter of a job sending on its own (on a cluster): its granted `llm_slots` of the cap, and
    that share of the per-minute budgets."""
    cap = settings.concurrency
    # the job's llm_slots (0 for a job the unreachable stage server would have run: it sends alone,
    # one at a time); a send outside a stage job takes the whole cap
    slots = max(1, cap if settings.slots is None else settings.slots)
    budgets = {k: v * slots / cap for k, v in settings.rate_limits.items() if v}
    return Limiter(slots, **budgets)
