"""Sending a job's requests: when one fails for good, the job's other requests stop with it."""

from __future__ import annotations

import asyncio

import pytest

from glan.llm.cache import open_cache
from glan.llm.limits import Limiter
from glan.llm.request import Request
from glan.llm.retry import EndpointError, RetryPolicy
from glan.llm.send import send_all

NO_RETRIES = RetryPolicy(attempts=1, base_delay=0, max_delay=0, max_total=1)


class RefusingBackend:
    """Refuses the first request outright; the others wait for a reply that never comes."""

    identity = "refusing"

    def __init__(self):
        self.waiting = 0
        self.cancelled = 0

    async def complete(self, request: Request):
        if request.sample == 0:
            await asyncio.sleep(0.05)  # the others are in flight by now
            raise EndpointError("refused (HTTP 401)")
        self.waiting += 1
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


def test_a_request_that_fails_for_good_cancels_the_jobs_other_requests(tmp_path):
    backend = RefusingBackend()
    requests = [Request(model="m", messages=[{"role": "user", "content": "q"}], sample=i) for i in range(150)]

    async def scenario():
        with open_cache(tmp_path) as cache:
            with pytest.raises(EndpointError, match="401"):
                await send_all(requests, backend, cache, Limiter(cap=200), max_attempts=1, retry=NO_RETRIES)
        return [t for t in asyncio.all_tasks() if not t.done() and t is not asyncio.current_task()]

    left = asyncio.run(scenario())
    assert backend.waiting == 149 and backend.cancelled == 149
    assert left == []
