"""Batch mode's partial outcomes, through the sender and the real openai client against the loopback server.

An expired batch keeps what it completed and re-submits only the rest; failed lines are asked again
in a later batch, up to llm.max_attempts; a batch that fails validation stops with the provider's
reason; `token_limit_exceeded` holds the file and tries it again.
"""

from __future__ import annotations

import asyncio
import re
from itertools import pairwise

import orjson
import pytest
from fake_llm import FakeLLM
from helpers import DEFAULTS

from glan.llm.backends.openai_compat import chat_body
from glan.llm.batch import BYTES_PER_TOKEN, input_line
from glan.llm.limits import job_share
from glan.llm.meter import Tally
from glan.llm.request import Request
from glan.llm.retry import EndpointError
from glan.llm.send import Sender
from glan.llm.settings import SendSettings

REQUESTS = [Request(model="fake-model", messages=[{"role": "user", "content": f"question {i}"}]) for i in range(10)]


def batch_settings(**batch) -> dict:
    llm = DEFAULTS["llm"]
    return {**llm, "backend": "openai", "model": "fake-model", "endpoint": "fake", "mode": "batch"} | {
        "batch": {**llm["batch"], "gather_seconds": 0.1, "poll_seconds": 0.05, **batch}
    }


def send_in_batch(server: FakeLLM, tmp_path, monkeypatch, during=None, **batch) -> Tally:
    """Send REQUESTS in batch mode; `during(server)` runs beside it, to change the server's knobs mid-way."""
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    settings = SendSettings.of(batch_settings(**batch))

    async def scenario():
        sender = Sender(job_share(settings))
        try:
            sending = asyncio.ensure_future(sender.send(REQUESTS, settings, str(tmp_path / "cache")))
            if during:
                await during(server)
            outcomes, stats = await sending
        finally:
            await sender.aclose()
        assert all(o.valid for o in outcomes)
        return stats

    return asyncio.run(scenario())


async def after_first_batch(server: FakeLLM, change) -> None:
    while not server.batches_created:
        await asyncio.sleep(0.01)
    change(server)


def stop_expiring(server: FakeLLM) -> None:
    server.batch_expire = 0


def test_an_expired_batch_keeps_its_completed_lines_and_resubmits_only_the_rest(tmp_path, monkeypatch):
    with FakeLLM(batch_seconds=0.2, batch_expire=0.5) as server:
        stats = send_in_batch(
            server,
            tmp_path,
            monkeypatch,
            during=lambda s: after_first_batch(s, lambda s: setattr(s, "batch_expire", 0)),
        )
        assert len(server.batches_created) == 2
        assert len(server.batch_custom_ids(server.batches_created[1])) == len(REQUESTS) // 2
        assert server.lines_billed == len(REQUESTS) and max(server.billed_per_key.values()) == 1
        assert stats.sent == len(REQUESTS)


def test_failed_lines_are_asked_again_in_a_later_batch(tmp_path, monkeypatch):
    with FakeLLM(batch_seconds=0.2, batch_line_faults=0.3) as server:
        send_in_batch(server, tmp_path, monkeypatch)
        assert len(server.batches_created) >= 2
        assert set(server.billed_per_key) == set(server.batch_custom_ids(server.batches_created[0]))


def test_a_line_refused_for_good_fails_at_once_instead_of_going_into_a_later_batch(tmp_path, monkeypatch):
    with FakeLLM(batch_seconds=0.2, batch_line_rejects=1.0) as server:
        with pytest.raises(EndpointError, match="was refused: status 400: context_length_exceeded"):
            send_in_batch(server, tmp_path, monkeypatch)
        assert len(server.batches_created) == 1, "a refused line was sent again"
        assert server.lines_billed == 0


def test_a_batch_the_provider_does_not_know_closes_its_journal_and_its_requests_are_asked_again(tmp_path, monkeypatch):
    with FakeLLM(batch_seconds=0.2, batch_api_faults={"retrieve": ["404"]}) as server:
        send_in_batch(server, tmp_path, monkeypatch)
        assert len(server.batches_created) == 2
        [first, second] = server.batches_created
        assert server.batch_custom_ids(second) == server.batch_custom_ids(first)
    reasons = [orjson.loads(p.read_bytes())["reason"] for p in (tmp_path / "cache" / "batches").glob("*.json")]
    why = f"the provider knows no batch {first} (batches.retrieve: HTTP 404: injected 404 (batch_api_faults))"
    assert sorted(reasons) == ["", why], "the lost batch's journal was overwritten by the one that asked again"


def test_a_deleted_local_input_file_still_stores_the_replies_of_the_requests_waiting(tmp_path, monkeypatch):
    def delete_inputs(server: FakeLLM) -> None:
        for path in (tmp_path / "cache" / "batches").glob("*.jsonl"):
            path.unlink()

    with FakeLLM(batch_seconds=0.3) as server:
        stats = send_in_batch(server, tmp_path, monkeypatch, during=lambda s: after_first_batch(s, delete_inputs))
        assert len(server.batches_created) == 1 and server.lines_billed == len(REQUESTS)
        assert stats.sent == len(REQUESTS)


def test_every_file_of_a_batch_is_deleted_once_read_or_else_left_with_an_expiry(tmp_path, monkeypatch):
    with FakeLLM(batch_seconds=0.2, batch_line_faults=0.3) as server:
        send_in_batch(server, tmp_path, monkeypatch)
        assert server.held_files == [] and len(server.files_deleted) > 2 * len(server.batches_created) - 1
    with FakeLLM(batch_seconds=0.2, batch_line_faults=0.3, batch_api_faults={"delete": ["400"] * 100}) as server:
        send_in_batch(server, tmp_path / "again", monkeypatch)
        held = server.held_files
        assert len(held) == server.api_calls["delete"] > 2 and server.files_deleted == []
        assert all(f["expires_at"] == f["created_at"] + 30 * 24 * 3600 for f in held), "a file was left with no expiry"
    assert not list((tmp_path / "cache" / "batches").glob("*.jsonl")), "a local input outlived its journal"


def test_a_batch_that_fails_validation_stops_with_the_providers_reason(tmp_path, monkeypatch):
    with FakeLLM(batch_seconds=0.2, batch_fail=True) as server:
        with pytest.raises(EndpointError, match=r"failed validation: invalid_request: .* \(input line 1\)"):
            send_in_batch(server, tmp_path, monkeypatch)
        assert server.lines_billed == 0


def test_the_enqueued_token_limit_holds_the_file_backing_off_and_names_the_setting(tmp_path, monkeypatch, capfd):
    with FakeLLM(batch_seconds=0.2, token_limit_failures=3) as server:
        send_in_batch(server, tmp_path, monkeypatch)
        assert len(server.batches_created) == 4  # three refused, then the same file accepted
        assert server.files_uploaded == 1
        assert server.lines_billed == len(REQUESTS)
    said = capfd.readouterr().err
    waits = [float(w) for w in re.findall(r"the file waits ([0-9.]+)s for room", said)]
    assert waits == [0.05, 0.1, 0.2], "the waits do not back off"
    assert "token_limit_exceeded: Enqueued token limit reached" in said
    assert "(set llm.batch.max_enqueued_tokens to it)" in said


def test_max_enqueued_tokens_cuts_files_to_fit_and_holds_each_until_the_model_has_room(tmp_path, monkeypatch):
    line = input_line(REQUESTS[0].key("fake"), chat_body(REQUESTS[0]))
    limit = 3 * len(line) // BYTES_PER_TOKEN + 1  # three lines' tokens, as batch mode estimates them
    with FakeLLM(batch_seconds=0.3) as server:
        send_in_batch(server, tmp_path, monkeypatch, max_enqueued_tokens=limit)
        batches = sorted((server._batches[id] for id in server.batches_created), key=lambda b: b.created)
        # Which held file goes out first when room is made is not fixed: their sizes and that none overlap are.
        assert sorted(len(b.custom_ids) for b in batches) == [1, 3, 3, 3]
        for earlier, later in pairwise(batches):
            assert later.created >= earlier.at(1.0), "a file went out while another filled the limit"
        assert server.lines_billed == len(REQUESTS)


def test_a_send_stopped_while_its_batch_runs_says_the_batch_is_still_open(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    settings = SendSettings.of(batch_settings())
    journals = tmp_path / "cache" / "batches"

    async def stopped(server: FakeLLM) -> None:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        sender = Sender(job_share(settings))
        sending = asyncio.ensure_future(sender.send(REQUESTS, settings, str(tmp_path / "cache")))
        while not any(b'"batch_id": "' in p.read_bytes() for p in journals.glob("*.json")):
            await asyncio.sleep(0.01)
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        await sender.aclose()

    with FakeLLM(batch_seconds=30) as server:
        asyncio.run(stopped(server))
        [batch_id] = server.batches_created
    assert f"1 batch(es) still open at the provider ({batch_id}): the next run waits" in capfd.readouterr().err


def test_stages_on_one_endpoint_share_one_client_whatever_their_mode_or_attempts():
    batch = batch_settings()
    sender = Sender(job_share(SendSettings.of(batch)))
    online = {**batch, "mode": "online", "max_attempts": 5, "slots": 3}
    assert sender.backend(SendSettings.of(online)) is sender.backend(SendSettings.of(batch))
    another = SendSettings.of({**batch, "endpoint": "another"})
    assert sender.backend(another) is not sender.backend(SendSettings.of(batch))
