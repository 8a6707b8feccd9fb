"""Retrying what an endpoint may do right next time (429, 5xx, timeouts, dropped connections).

Exponential backoff with full jitter, at least as long as a `Retry-After` asks, bounded both in
attempts and in total time. Errors that will not go away (a bad key, a bad request) are not retried.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


class TransientError(Exception):
    """The endpoint may succeed if asked again; `retry_after` is its own hint, in seconds.

    `rate_limited` marks a 429: the endpoint asks for less load, not just another try.
    """

    def __init__(self, message: str, retry_after: float | None = None, rate_limited: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.rate_limited = rate_limited


class EndpointError(Exception):
    """A failure no retry will fix; the message says what to change."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_total: float = 600.0

    @classmethod
    def from_settings(cls, settings: dict) -> RetryPolicy:
        return cls(**settings.get("retry", {}))

    def delay(self, retry: int, retry_after: float | None) -> float:
        backoff = random.uniform(0, min(self.max_delay, self.base_delay * 2**retry))
        return max(backoff, retry_after or 0.0)


async def call_with_retries(call: Callable[[], Awaitable], policy: RetryPolicy, on_retry=None):
    started = time.monotonic()
    for retry in range(policy.attempts):
        try:
            return await call()
        except TransientError as error:
            wait = policy.delay(retry, error.retry_after)
            spent = time.monotonic() - started
            if retry + 1 == policy.attempts or spent + wait > policy.max_total:
                raise EndpointError(
                    f"gave up after {retry + 1} attempts in {spent:.0f}s: {error} "
                    "(raise llm.retry.attempts / max_total, or check the endpoint)"
                ) from error
            if on_retry:
                on_retry(error)
            await asyncio.sleep(wait)
