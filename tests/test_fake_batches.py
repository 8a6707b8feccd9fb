"""The loopback server's Files and Batches endpoints, through the real `openai` client.

A batch goes validating -> in_progress -> finalizing -> completed within `batch_seconds`, answers each
line as the online endpoint would (`reply_to`), in no promised order, and bills each completed line
once. Its faults (failing lines, expiry, a failed validation, the enqueued token limit, a held create)
and a cancel behave as the OpenAI Batch API documents them.
"""

from __future__ import annotations

import threading
import time

import openai
import orjson
import pytest
from fake_llm import FakeLLM

ENDPOINT = "/v1/chat/completions"
TERMINAL = {"completed", "expired", "cancelled", "failed"}
ORDER = ["validating", "in_progress", "finalizing", "completed"]


@pytest.fixture
def server():
    with FakeLLM(batch_seconds=0.3) as fake:
        yield fake


@pytest.fixture
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def body(i: int) -> dict:
    return {"model": "fake-model", "messages": [{"role": "user", "content": f"question {i} é"}], "seed": i}


def input_file(count: int, first: int = 0) -> bytes:
    lines = ({"custom_id": f"req-{i}", "method": "POST", "url": ENDPOINT, "body": body(i)} for i in range(first, count))
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def submit(client: openai.OpenAI, content: bytes, **metadata: str):
    uploaded = client.files.create(file=("input.jsonl", content), purpose="batch")
    return client.batches.create(
        input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h", metadata=metadata or None
    )


def polled(client: openai.OpenAI, batch_id: str, until=lambda batch: batch.status in TERMINAL) -> list:
    """Every state the batch was seen in, polled every 10 ms, up to the first for which `until` holds."""
    seen = [client.batches.retrieve(batch_id)]
    deadline = time.monotonic() + 5
    while not until(seen[-1]):
        assert time.monotonic() < deadline, f"batch {batch_id} stuck in {seen[-1].status}"
        time.sleep(0.01)
        seen.append(client.batches.retrieve(batch_id))
    return seen


def finished(client: openai.OpenAI, batch_id: str):
    return polled(client, batch_id)[-1]


def lines_of(client: openai.OpenAI, file_id: str | None) -> list[dict]:
    if file_id is None:
        return []
    return [orjson.loads(line) for line in client.files.content(file_id).content.splitlines()]


def test_an_uploaded_file_comes_back_byte_for_byte(server, client):
    content = input_file(3)
    uploaded = client.files.create(file=("input.jsonl", content), purpose="batch")
    assert (uploaded.filename, uploaded.purpose, uploaded.bytes) == ("input.jsonl", "batch", len(content))
    assert client.files.retrieve(uploaded.id).id == uploaded.id
    assert client.files.content(uploaded.id).content == content
    assert server.files_uploaded == 1


def test_a_batch_goes_through_its_states_to_completed_and_keeps_its_metadata(server, client):
    created = submit(client, input_file(5), run="spec")
    assert created.status == "validating" and created.metadata == {"run": "spec"}
    seen = polled(client, created.id)
    statuses = [created.status, *(batch.status for batch in seen)]  # a loaded machine's first poll may be late
    assert statuses == sorted(statuses, key=ORDER.index), "a state came back after a later one"
    assert {"validating", "in_progress", "completed"} <= set(statuses)
    done = [batch.request_counts.completed for batch in seen]
    assert done == sorted(done) and any(0 < batch.request_counts.completed < 5 for batch in seen)
    final = seen[-1]
    assert final.request_counts.model_dump() == {"total": 5, "completed": 5, "failed": 0}
    assert final.created_at <= final.in_progress_at <= final.finalizing_at <= final.completed_at
    assert final.metadata == {"run": "spec"} and final.error_file_id is None and final.errors is None


def test_list_pages_newest_first_and_finds_a_batch_by_its_metadata(server, client):
    ids = [submit(client, input_file(1), tag=f"t{i}").id for i in range(3)]
    listed = list(client.batches.list(limit=1))  # one a page: the client follows `after` while `has_more`
    assert [batch.id for batch in listed] == ids[::-1] == server.batches_created[::-1]
    assert [batch.id for batch in listed if batch.metadata == {"tag": "t1"}] == [ids[1]]
    page = client.batches.list(limit=2)
    assert page.has_more and [batch.id for batch in page.data] == ids[:0:-1]


def test_output_lines_match_by_custom_id_and_answer_as_the_online_endpoint_would(server, client):
    content = input_file(12)
    batch = finished(client, submit(client, content).id)
    assert batch.status == "completed"
    output = lines_of(client, batch.output_file_id)
    bodies = {f"req-{i}": body(i) for i in range(12)}
    assert sorted(line["custom_id"] for line in output) == sorted(bodies)
    assert [line["custom_id"] for line in output] != list(bodies), "the output keeps the input's order"
    for line in output:
        assert line["response"]["status_code"] == 200 and line["error"] is None
        assert line["response"]["body"] == server.reply_to(bodies[line["custom_id"]])
    assert server.count == 0, "batch lines were counted as online requests"
    assert sorted(map(orjson.dumps, server.batch_requests)) == sorted(map(orjson.dumps, bodies.values()))
    assert server.batch_custom_ids(batch.id) == list(bodies)


def test_failing_lines_go_to_the_error_file_and_a_line_sent_again_can_succeed(server, client):
    server.batch_line_faults = 0.5
    batch = finished(client, submit(client, input_file(20)).id)
    output, errors = lines_of(client, batch.output_file_id), lines_of(client, batch.error_file_id)
    assert batch.status == "completed" and output and errors
    assert (batch.request_counts.completed, batch.request_counts.failed) == (len(output), len(errors))
    assert {line["custom_id"] for line in output} | {line["custom_id"] for line in errors} == {
        f"req-{i}" for i in range(20)
    }
    assert all(line["response"]["status_code"] == 500 and "error" in line["response"]["body"] for line in errors)
    assert server.lines_billed == len(output), "a failed line was billed"

    failed = {line["custom_id"] for line in errors}
    again = b"".join(
        line for line in input_file(20).splitlines(keepends=True) if orjson.loads(line)["custom_id"] in failed
    )
    retried = finished(client, submit(client, again).id)
    assert retried.request_counts.completed > 0, "the same lines failed again: faults ignore the attempt"
    assert max(server.billed_per_key.values()) == 1


def test_an_expired_batch_returns_the_lines_it_did_and_leaves_the_rest_out(server, client):
    server.batch_expire = 0.5
    batch = finished(client, submit(client, input_file(10)).id)
    assert batch.status == "expired" and batch.expired_at is not None
    output = lines_of(client, batch.output_file_id)
    assert len(output) == batch.request_counts.completed == 5
    assert batch.error_file_id is None
    assert server.lines_billed == 5


def test_batch_fail_makes_the_next_batch_fail_validation_and_is_then_spent(server, client):
    server.batch_fail = True
    failed = finished(client, submit(client, input_file(3)).id)
    assert failed.status == "failed" and failed.output_file_id is None and failed.error_file_id is None
    [error] = failed.errors.data
    assert error.code == "invalid_request" and error.message.startswith("line 1") and error.line == 1
    assert server.batch_fail is False
    assert finished(client, submit(client, input_file(3)).id).status == "completed"
    assert server.lines_billed == 3, "the failed batch was billed"


def test_token_limit_failures_fail_the_next_batches_with_token_limit_exceeded(server, client):
    server.token_limit_failures = 2
    batches = [finished(client, submit(client, input_file(2)).id) for _ in range(3)]
    assert [batch.status for batch in batches] == ["failed", "failed", "completed"]
    for batch in batches[:2]:
        [error] = batch.errors.data
        assert error.code == "token_limit_exceeded" and "Enqueued token limit reached" in error.message


def test_a_malformed_input_file_fails_validation_naming_its_lines(server, client):
    good = input_file(1)
    content = good + good + b"not json\n" + good.replace(ENDPOINT.encode(), b"/v1/embeddings")
    batch = finished(client, submit(client, content).id)
    assert batch.status == "failed"
    assert [(e.code, e.line) for e in batch.errors.data] == [
        ("duplicate_custom_id", 2),
        ("invalid_json_line", 3),
        ("url_mismatch", 4),
    ]


def test_a_cancelled_batch_keeps_the_lines_done_before_the_cancel(server, client):
    created = submit(client, input_file(10))
    polled(client, created.id, until=lambda batch: batch.request_counts.completed >= 2)
    cancelling = client.batches.cancel(created.id)
    assert cancelling.status == "cancelling"
    batch = finished(client, created.id)
    assert batch.status == "cancelled" and batch.cancelled_at is not None
    output = lines_of(client, batch.output_file_id)
    assert 2 <= len(output) == batch.request_counts.completed < 10
    assert server.lines_billed == len(output)
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(created.id)


def test_a_held_create_counts_the_batch_before_the_client_learns_its_id(server, client):
    server.hold_create_seconds = 0.2
    answer: list = []
    create = threading.Thread(target=lambda: answer.append(submit(client, input_file(1))))
    create.start()
    deadline = time.monotonic() + 2
    while not server.batches_created and time.monotonic() < deadline:
        time.sleep(0.005)
    assert server.batches_created and not answer, "the create was answered before the hold"
    create.join()
    assert [batch.id for batch in answer] == server.batches_created


def test_the_counters_count_what_was_sent_and_billed_and_reset_clears_them(server, client):
    online = client.chat.completions.create(model="fake-model", messages=body(99)["messages"])
    first, second = submit(client, input_file(4)), submit(client, input_file(6, first=4))
    finished(client, first.id), finished(client, second.id)
    assert server.count == 1 and online.choices[0].message.content.startswith("Reply ")
    assert server.batches_created == [first.id, second.id] and server.files_uploaded == 2
    assert server.lines_billed == 6 and set(server.billed_per_key) == {f"req-{i}" for i in range(6)}
    assert max(server.billed_per_key.values()) == 1
    server.reset()
    assert (server.count, server.batches_created, server.files_uploaded, server.lines_billed) == (0, [], 0, 0)
    assert server.batch_requests == [] and not server.billed_per_key
    assert client.batches.retrieve(first.id).status == "completed", "a reset forgot the provider's batches"


def test_batch_api_faults_answer_the_next_calls_of_an_operation_in_order_and_every_call_is_counted(server, client):
    created = submit(client, input_file(2))
    server.batch_api_faults = {"retrieve": ["500", "429", "404", "drop"]}
    for error in (openai.InternalServerError, openai.RateLimitError, openai.NotFoundError, openai.APIConnectionError):
        with pytest.raises(error):
            client.batches.retrieve(created.id)
    assert finished(client, created.id).status == "completed", "a fault outlived its call"
    assert server.batch_api_faults == {"retrieve": []}
    assert server.api_calls["upload"] == server.api_calls["create"] == 1 and server.api_calls["retrieve"] >= 5


def test_files_keep_their_expiry_can_be_listed_and_deleted(server, client):
    week = {"anchor": "created_at", "seconds": 7 * 24 * 3600}
    uploaded = client.files.create(file=("input.jsonl", input_file(3)), purpose="batch", expires_after=week)
    assert uploaded.expires_at == uploaded.created_at + week["seconds"]
    created = client.batches.create(
        input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h", output_expires_after=week
    )
    batch = finished(client, created.id)
    output = client.files.retrieve(batch.output_file_id)
    assert output.expires_at == output.created_at + week["seconds"]
    assert [f.id for f in client.files.list()] == [output.id, uploaded.id] == [f["id"] for f in server.held_files][::-1]
    assert [f.id for f in client.files.list(purpose="batch")] == [uploaded.id]
    assert client.files.delete(uploaded.id).deleted
    assert [f["id"] for f in server.held_files] == [output.id] and server.files_deleted == [uploaded.id]
    with pytest.raises(openai.NotFoundError):
        client.files.content(uploaded.id)
    with pytest.raises(openai.BadRequestError, match="expires_after.seconds"):
        client.files.create(file=("x.jsonl", input_file(1)), purpose="batch", expires_after={**week, "seconds": 60})
