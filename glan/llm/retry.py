"""Retrying what an endpoint may do right next time (429, 5xx, timeouts, dropped connections).

Exponential backoff with full jitter, at least as long as a `Retry-After` asks, bounded both in
attempts and in total time. Errors that will not go away (a bad key, a bad request) are not retried.
"""

from __future__ import annotations

import random
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
    """`llm.retry`; its defaults are the config schema's."""

    attempts: int
    base_delay: float
    max_delay: float
    max_total: float

    @classmethod
    def from_settings(cls, settings: dict) -> RetryPolicy:
        return cls(**settings["retry"])

    def wait(self, retry: int, error: TransientError, spent: float) -> float:
        """How long to wait before retry number `retry` + 1; EndpointError once the attempts or the time are spent."""
        backoff = random.uniform(0, min(self.max_delay, self.base_delay * 2**retry))
        wait = max(backoff, error.retry_after or 0.0)
        if retry + 1 >= self.attempts or spent + wait > self.max_total:
            raise EndpointError(
                f"gave up after {retry + 1} attempts in {spent:.0f}s: {error} "
                "(raise llm.retry.attempts / max_total, or check the endpoint)"
            ) from error
        return wait
