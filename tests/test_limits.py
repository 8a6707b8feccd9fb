"""The job's limiter: cut by a quarter on 429, won back one slot per run of successes, never above the cap."""

from __future__ import annotations

import asyncio

from helpers import DEFAULTS

from glan.llm.limits import Limiter, job_share
from glan.llm.settings import SendSettings


def test_a_429_cuts_the_limit_and_successes_win_it_back():
    async def scenario():
        limiter = Limiter(cap=8)
        await limiter.acquire(0)
        limiter.release(rate_limited=True, retry_after=0.01)
        assert limiter.limit == 6.0 and limiter.cuts == 1
        for _ in range(6):
            await limiter.acquire(0)
            limiter.release()
        assert limiter.limit == 7.0
        for _ in range(50):
            await limiter.acquire(0)
            limiter.release()
        assert limiter.limit == 8.0
        for _ in range(20):
            await limiter.acquire(0)
            limiter.release(rate_limited=True, retry_after=0)
        assert limiter.limit == 1.0

    asyncio.run(scenario())


def test_no_more_than_the_limit_are_in_flight():
    async def scenario():
        limiter = Limiter(cap=3)
        peak = 0

        async def one():
            nonlocal peak
            await limiter.acquire(0)
            peak = max(peak, limiter.in_flight)
            await asyncio.sleep(0.001)
            limiter.release()

        await asyncio.gather(*(one() for _ in range(40)))
        return peak

    assert asyncio.run(scenario()) == 3


def test_a_job_gets_its_share_of_the_per_minute_budgets():
    budgets = {"requests_per_minute": 6000, "tokens_per_minute": 400000}
    limiter = job_share(SendSettings.of({**DEFAULTS["llm"], "concurrency": 64, "slots": 16, "rate_limits": budgets}))
    assert limiter.cap == 16
    assert limiter.requests.capacity == 1500
    assert limiter.tokens.capacity == 100000
