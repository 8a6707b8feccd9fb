"""What the send path reads of a stage's `llm` settings (glan.config.stage_llm's mapping), typed once per send.

The mapping travels as data (the config, a StageJob handed to the stage server); the send path and the
batches it gathers read this value, so each setting has one name and one place."""

from __future__ import annotations

from dataclasses import dataclass

from glan.llm.backends import connection
from glan.llm.retry import RetryPolicy


@dataclass(frozen=True)
class SendSettings:
    backend: str
    mode: str  # online or batch
    max_attempts: int  # asks per request before a reply is rejected
    retry: RetryPolicy  # of a transient failure: a request's, or a Batch API call's
    batch: dict  # llm.batch: max_requests, max_bytes, max_enqueued_tokens, gather_seconds, poll_seconds
    connection: dict  # what a backend is made from: stages that agree on it share one

    @classmethod
    def of(cls, llm: dict) -> SendSettings:
        return cls(
            backend=llm["backend"],
            mode=llm["mode"],
            max_attempts=llm["max_attempts"],
            retry=RetryPolicy.from_settings(llm),
            batch=llm["batch"],
            connection=connection(llm),
        )
