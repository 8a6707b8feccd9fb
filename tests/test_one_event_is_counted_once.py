"""Each send event is counted once, in one place: the job's counts (its counts file, which the report's hit
rates read) and the process's meter (behind `glan status`) are the same numbers."""

from __future__ import annotations

import asyncio
from dataclasses import fields

from fake_llm import FakeLLM
from helpers import DEFAULTS

from glan.llm.backends.openai_compat import OpenAIBackend
from glan.llm.cache import Entry, open_cache
from glan.llm.limits import Limiter
from glan.llm.meter import Meter, Tally
from glan.llm.request import Reply, Request
from glan.llm.retry import RetryPolicy
from glan.llm.send import send_all

SETTINGS = {**DEFAULTS["llm"], "backend": "openai", "endpoint": "counted"}


def test_a_cached_reject_then_a_cached_reply_is_one_cached_request_and_one_rejected_reply(tmp_path, monkeypatch):
    with FakeLLM() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        backend = OpenAIBackend(SETTINGS)
        both_cached, then_sent = (
            Request(model="m", messages=[{"role": "user", "content": f"question {i}"}], sample=i) for i in range(2)
        )
        with open_cache(tmp_path) as cache:
            for request in (both_cached, then_sent):
                cache.put(request.key(backend.identity), Entry(Reply(text=""), error="empty reply"))
            cache.put(both_cached.at_attempt(1).key(backend.identity), Entry(Reply(text="a valid reply")))
            meter = Meter()

            async def send():
                try:
                    return await send_all(
                        [both_cached, then_sent],
                        backend,
                        cache,
                        Limiter(cap=4),
                        max_attempts=3,
                        retry=RetryPolicy.from_settings(SETTINGS),
                        meter=meter,
                        stage="answers",
                    )
                finally:
                    await backend.aclose()

            outcomes, job = asyncio.run(send())
        assert server.count == 1 and all(o.valid for o in outcomes)

    assert (job.planned, job.done, job.cached, job.sent, job.rejected, job.failed) == (2, 2, 1, 1, 2, 0)
    (metered,) = meter.tallies.values()
    assert metered == job
    assert job.summary() == "planned=2 cached=1 sent=1 retries=0 rejected=2 failed=0 refused=0"
    assert {f.name for f in fields(Tally)} >= set(job.as_dict())
