"""What the send path reads of a stage's `llm` settings (glan.config.stage_llm's mapping), typed once per job.

The mapping travels as data (the config, a StageJob handed to the stage server); the job reads it
into this value once, and the send path, its limiter and the batches it gathers read that, so each
setting has one name and one place."""

from __future__ import annotations

from dataclasses import dataclass

from glan.llm.backends import connection
from glan.llm.retry import RetryPolicy


@dataclass(frozen=True)
class SendSettings:
    backend: str
    mode: str  # online or batch
    max_attempts: int  # asks per request before a reply is rejected
    max_reject_share: float  # a job fails when more of its requests than this end rejected
    retry: RetryPolicy  # of a transient failure: a request's, or a Batch API call's
    concurrency: int  # the run's cap on requests in flight
    slots: int | None  # the job's share of that cap (its llm_slots); None outside a stage job: all of it
    rate_limits: dict  # llm.rate_limits: per-minute budgets of the whole run
    batch: dict  # llm.batch: max_requests, max_bytes, max_enqueued_tokens, gather_seconds, poll_seconds
    connection: dict  # what a backend is made from: stages that agree on it share one

    @classmethod
    def of(cls, llm: dict) -> SendSettings:
        return cls(
            backend=llm["backend"],
            mode=llm["mode"],
            max_attempts=llm["max_attempts"],
            max_reject_share=llm["max_reject_share"],
            retry=RetryPolicy.from_settings(llm),
            concurrency=llm["concurrency"],
            slots=llm.get("slots"),
            rate_limits=llm["rate_limits"],
            batch=llm["batch"],
            connection=connection(llm),
        )
