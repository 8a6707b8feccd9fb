"""`glan batch export` / `glan batch import` in real processes on a real cache, and `glan plan`'s batch cost.

Three disciplines at the tiny scale (tests/helpers.py). The batch engine is the test itself: it
answers each exported line with the loopback server's `reply_to`, as a Batch API output file.
"""

from __future__ import annotations

import re
import subprocess
import sys

import orjson
import pytest
from fake_llm import FakeLLM
from helpers import (
    FIRST_BUILD,
    FIRST_BUILD_TOTAL,
    SUBJECT_QUERIES,
    SUBJECTS_PER_DISCIPLINE,
    Workflow,
    stage_counts,
)

from glan.stages import GLAN_STAGES

pytestmark = pytest.mark.dataset_only  # `workflow` builds DATASET: the property ends at the dataset

RESULTS_SUMMARY = "{stored} stored, {rejected} rejected as invalid (the next export or build asks them again), "


@pytest.fixture(scope="module")
def online_build(first_build) -> tuple[bytes, list[dict]]:
    """The dataset of an online build and the bodies it sent."""
    return first_build.dataset(), first_build.requests


def glan(workflow: Workflow, *args: str, code: int = 0) -> str:
    """`glan ARGS` in the workflow copy with its overlays; its output, once it exits with `code`."""
    command = [sys.executable, "-m", "glan.cli", *args, "--configfile", "config/tiny.yaml", "test.yaml"]
    result = subprocess.run(
        command, cwd=workflow.dir, env=workflow.environment(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == code, result.stdout + result.stderr
    return result.stdout


def export(workflow: Workflow) -> tuple[list[dict], str]:
    output = glan(workflow, "batch", "export", "requests.jsonl")
    return read_lines(workflow, "requests.jsonl"), output


def read_lines(workflow: Workflow, name: str) -> list[dict]:
    return [orjson.loads(line) for line in workflow.path(name).read_bytes().splitlines()]


def output_line(number: int, custom_id: str, status: int, body: dict) -> dict:
    """A line of a Batch API output (status 200) or error file."""
    error = None if status == 200 else {"code": "server_error", "message": "The server had an error"}
    response = {"status_code": status, "request_id": f"req_{number}", "body": body}
    return {"id": f"batch_req_{number}", "custom_id": custom_id, "response": response, "error": error}


def answered(server: FakeLLM, lines: list[dict]) -> list[dict]:
    """What a batch engine returns for the lines: each body's completion, in reverse order (order is not promised)."""
    return [output_line(n, line["custom_id"], 200, server.reply_to(line["body"])) for n, line in enumerate(lines)][::-1]


def write_results(workflow: Workflow, results: list[dict | bytes], name: str = "results.jsonl") -> None:
    raw = (r if isinstance(r, bytes) else orjson.dumps(r) for r in results)
    workflow.path(name).write_bytes(b"".join(line + b"\n" for line in raw))


def test_export_answer_import_through_the_four_stages_then_the_build_sends_nothing(workflow, online_build):
    dataset, online_requests = online_build
    exported: list[dict] = []
    known = 0
    for stage in GLAN_STAGES:
        lines, output = export(workflow)
        bodies = [line["body"] for line in lines]
        # Each export holds exactly the stage whose upstream replies are all cached now.
        assert stage_counts(bodies) == {stage: FIRST_BUILD[stage]}, output
        assert len({line["custom_id"] for line in lines}) == len(lines)
        assert {(line["method"], line["url"]) for line in lines} == {("POST", "/v1/chat/completions")}
        assert f"{stage}: {FIRST_BUILD[stage]} request(s)" in output.splitlines()
        assert f"Wrote {FIRST_BUILD[stage]} request(s) to requests.jsonl." in output
        known += FIRST_BUILD[stage]
        later = FIRST_BUILD_TOTAL - known
        assert (f"{later} more request(s) depend on replies not in the cache yet" in output) == bool(later)
        exported += lines

        write_results(workflow, answered(workflow.server, lines))
        output = glan(workflow, "batch", "import", "results.jsonl")
        assert f"{stage}: {FIRST_BUILD[stage]} stored, 0 rejected as invalid" in output.splitlines()
        summary = RESULTS_SUMMARY.format(stored=FIRST_BUILD[stage], rejected=0) + "0 unusable."
        assert f"results.jsonl: {summary}" in output

    lines, output = export(workflow)
    assert lines == [] and "Wrote 0 request(s)" in output and "depend on replies" not in output
    # The files held exactly the bodies an online build sends, so every reply is under the key a build looks up.
    assert sorted(orjson.dumps(line["body"], option=orjson.OPT_SORT_KEYS) for line in exported) == sorted(
        orjson.dumps(body, option=orjson.OPT_SORT_KEYS) for body in online_requests
    )
    workflow.run()
    assert workflow.server.count == 0, "the build sent a request online"
    assert workflow.dataset() == dataset


def test_import_names_every_line_it_cannot_use_and_an_invalid_reply_is_asked_again(workflow):
    lines, _ = export(workflow)
    assert len(lines) == FIRST_BUILD["subjects"]
    good, failed, invalid, empty = lines[:4]
    reply = workflow.server.reply_to
    not_json = reply(invalid["body"])
    not_json["choices"][0]["message"]["content"] = '{"subjects": ['
    results = [
        output_line(1, good["custom_id"], 200, reply(good["body"])),
        output_line(2, "f" * 64, 200, reply(good["body"])),
        output_line(3, failed["custom_id"], 500, {"error": {"message": "The server had an error"}}),
        b"garbage{",
        output_line(5, invalid["custom_id"], 200, not_json),
        output_line(6, empty["custom_id"], 200, {"id": "chatcmpl-x", "choices": []}),
        output_line(7, good["custom_id"], 200, reply(good["body"])),
        {"id": "batch_req_8", "response": None, "error": {"code": "batch_expired", "message": "expired"}},
    ]
    write_results(workflow, results)
    output = glan(workflow, "batch", "import", "results.jsonl", code=1).splitlines()
    named = [line for line in output if re.match(r"results\.jsonl:\d+: ", line)]
    assert [line.split(": ")[0] for line in named] == [f"results.jsonl:{n}" for n in range(2, 9)]
    assert "unknown custom_id " + "f" * 64 in named[0]
    assert f"{failed['custom_id']}: status 500: server_error: The server had an error" in named[1]
    assert "not JSON" in named[2]
    assert f"{invalid['custom_id']}: stored as rejected (" in named[3]
    assert f"{empty['custom_id']}: a completion without choices" in named[4]
    assert f"custom_id {good['custom_id']} again: results.jsonl:1 stored its reply" in named[5]
    assert "not a Batch API output line (no custom_id)" in named[6]
    assert f"results.jsonl: {RESULTS_SUMMARY.format(stored=1, rejected=1)}6 unusable." in output

    # The next export asks what was not answered (same keys) and the rejected reply's next attempt (a new key).
    again, _ = export(workflow)
    keys = [line["custom_id"] for line in again]
    assert stage_counts([line["body"] for line in again]) == {"subjects": FIRST_BUILD["subjects"] - 1}
    assert good["custom_id"] not in keys and invalid["custom_id"] not in keys
    assert failed["custom_id"] in keys and empty["custom_id"] in keys
    first = {line["custom_id"] for line in lines}
    (retried,) = [line for line in again if line["custom_id"] not in first]
    assert retried["body"]["messages"] == invalid["body"]["messages"]
    assert retried["body"]["seed"] not in {line["body"]["seed"] for line in lines}

    # A reply the cache holds already is understood: importing it again changes nothing and succeeds.
    write_results(workflow, results[:1])
    output = glan(workflow, "batch", "import", "results.jsonl")
    assert f"results.jsonl: {RESULTS_SUMMARY.format(stored=0, rejected=0)}0 unusable, 1 already in the cache." in output


def test_import_refuses_a_reply_another_model_made_unless_told_to_accept_it(workflow):
    """A result's first write wins for good: one from another model would stay under this model's key. A dated
    version of the asked name (what providers answer) is the same model."""
    lines, _ = export(workflow)
    dated, other = lines[:2]
    reply = workflow.server.reply_to
    by_dated, by_other = reply(dated["body"]), reply(other["body"])
    by_dated["model"] = f"{dated['body']['model']}-2024-07-18"
    by_other["model"] = "gpt-9"
    write_results(
        workflow, [output_line(1, dated["custom_id"], 200, by_dated), output_line(2, other["custom_id"], 200, by_other)]
    )

    output = glan(workflow, "batch", "import", "results.jsonl", code=1)
    assert f"results.jsonl:2: {other['custom_id']}: made by the model 'gpt-9', not 'fake-model' as asked" in output
    assert "--accept-model" in output and f"{RESULTS_SUMMARY.format(stored=1, rejected=0)}1 unusable." in output
    assert other["custom_id"] in {line["custom_id"] for line in export(workflow)[0]}

    output = glan(workflow, "batch", "import", "results.jsonl", "--accept-model")
    assert f"{RESULTS_SUMMARY.format(stored=1, rejected=0)}0 unusable, 1 already in the cache." in output


def test_requests_in_a_batch_still_open_are_not_exported_and_the_plan_counts_them_in_flight(workflow):
    lines, _ = export(workflow)
    before = plan(workflow)
    held = [line["custom_id"] for line in lines[:2]]
    journal = {"sha256": "0" * 64, "keys": held, "model": "fake-model", "file_id": "file-1", "creating": True}
    workflow.path("cache/batches").mkdir(parents=True)
    journal_path = workflow.path("cache/batches/open.json")
    journal_path.write_bytes(orjson.dumps(journal | {"batch_id": "batch_1", "done": False, "state": "in_progress"}))
    again, output = export(workflow)
    assert [line["custom_id"] for line in again] == [line["custom_id"] for line in lines[2:]]
    assert "2 request(s) in a batch still open under" in output and f"Wrote {len(lines) - 2} request(s)" in output
    after = plan(workflow)
    assert after["in_batch"] == after["totals"]["subjects"]["in_batch"] == 2 and before["in_batch"] == 0
    assert after["totals"]["subjects"]["send"] == before["totals"]["subjects"]["send"] - 2
    assert after["send"] == before["send"] - 2
    assert after["totals"]["subjects"]["prompt_tokens"] < before["totals"]["subjects"]["prompt_tokens"], "priced again"
    assert "2 more request(s) are in a batch still open" in glan(workflow, "plan")
    journal_path.write_bytes(orjson.dumps(journal | {"batch_id": "batch_1", "done": True, "state": "completed"}))
    assert export(workflow)[0] == lines, "a closed batch's requests were held back"


def test_a_local_stage_is_not_exported(workflow):
    workflow.overlay["stages"] = {"subjects": {"llm": {"backend": "local"}}}
    workflow.overlay["llm"]["local"] = {"model_path": str(workflow.path("no-model.gguf"))}
    lines, output = export(workflow)
    assert lines == [] and "subjects: 0 request(s)" in output
    assert (
        f"subjects: {FIRST_BUILD['subjects']} request(s) not exportable: the stage's backend is local, "
        "a Batch API file needs llm.backend openai"
    ) in output


def test_a_file_holds_one_model_within_the_limits_and_import_takes_every_file(workflow):
    limit = SUBJECTS_PER_DISCIPLINE  # one discipline's syllabi fill a file; the subject queries take two
    assert FIRST_BUILD["subjects"] - SUBJECT_QUERIES <= limit < FIRST_BUILD["subjects"]
    export(workflow)  # one file, before the limit: the next export replaces it
    workflow.overlay["llm"]["batch"] = {"max_requests": limit}
    workflow.overlay["stages"] = {"syllabus": {"llm": {"model": "fake-syllabus"}}}
    output = glan(workflow, "batch", "export", "requests.jsonl")
    first = [read_lines(workflow, f"requests-{n}.jsonl") for n in (1, 2)]
    assert [len(file) for file in first] == [limit, FIRST_BUILD["subjects"] - limit]
    assert f"Wrote {FIRST_BUILD['subjects']} request(s) in 2 files" in output
    assert f"  requests-1.jsonl: {limit} request(s) of fake-model" in output
    assert not workflow.path("requests.jsonl").exists() and "Removed the earlier export's requests.jsonl." in output

    # The first discipline's subject queries answered: its syllabi are known, the others' subjects still missing.
    queries = [line for line in first[0] if line["body"]["messages"] == first[0][0]["body"]["messages"]]
    assert len(queries) == SUBJECT_QUERIES
    write_results(workflow, answered(workflow.server, queries))
    glan(workflow, "batch", "import", "results.jsonl")
    output = glan(workflow, "batch", "export", "requests.jsonl")
    files = [read_lines(workflow, f"requests-{n}.jsonl") for n in (1, 2)]
    # In plan order: the first discipline's syllabi, then the other disciplines' subjects.
    assert [stage_counts([line["body"] for line in file]) for file in files] == [
        {"syllabus": SUBJECTS_PER_DISCIPLINE},
        {"subjects": FIRST_BUILD["subjects"] - len(queries)},
    ]
    assert [{line["body"]["model"] for line in file} for file in files] == [{"fake-syllabus"}, {"fake-model"}]
    assert f"  requests-1.jsonl: {SUBJECTS_PER_DISCIPLINE} request(s) of fake-syllabus" in output

    for n, file in enumerate(files, start=1):
        write_results(workflow, answered(workflow.server, file), f"results-{n}.jsonl")
    output = glan(workflow, "batch", "import", "results-1.jsonl", "results-2.jsonl")
    stored = sum(map(len, files))
    assert f"results-1.jsonl results-2.jsonl: {RESULTS_SUMMARY.format(stored=stored, rejected=0)}0 unusable." in output


def plan(workflow: Workflow) -> dict:
    return orjson.loads(glan(workflow, "plan", "--json"))


def test_the_plan_prices_the_remaining_requests_online_and_in_batch(workflow):
    workflow.overlay["prices"] = {
        "fake-model": {"input_per_mtok": 2.0, "output_per_mtok": 8.0, "batch_input_per_mtok": 1.0},
        "fake-answers": {"input_per_mtok": 1.0, "output_per_mtok": 4.0},
    }
    workflow.overlay["stages"] = {"answers": {"llm": {"model": "fake-answers"}}}
    # fake-model has one batch price of two: unpriced in batch, as fake-answers is.
    document = plan(workflow)
    assert document["batch_unpriced"] == ["fake-answers", "fake-model"] and document["unpriced"] == []
    assert document["batch_cost"] == 0.0 and document["cost"] > 0
    assert all(p["batch_cost"] is None for n in document["nodes"].values() for p in n["stages"].values())

    workflow.overlay["prices"]["fake-model"]["batch_output_per_mtok"] = 4.0
    document = plan(workflow)
    totals = document["totals"]
    for stage in ("subjects", "syllabus", "questions"):
        total = totals[stage]
        assert total["batch_cost"] == pytest.approx((total["prompt_tokens"] * 1.0 + total["reply_tokens"] * 4.0) / 1e6)
        assert total["batch_cost"] == pytest.approx(total["cost"] / 2)
    assert totals["answers"]["batch_cost"] == 0.0 and totals["answers"]["cost"] > 0
    assert document["batch_unpriced"] == ["fake-answers"] and document["unpriced"] == []
    assert document["batch_cost"] == pytest.approx(sum(totals[s]["batch_cost"] for s in GLAN_STAGES))
    assert document["cost"] == pytest.approx(sum(totals[s]["cost"] for s in GLAN_STAGES))
    text = glan(workflow, "plan")
    assert (
        f"estimated cost {document['cost']:.4f} online, {document['batch_cost']:.4f} in batch; leaves out models "
        "without batch prices ['fake-answers'] (add batch_input_per_mtok and batch_output_per_mtok)." in text
    )

    del workflow.overlay["prices"]
    document = plan(workflow)
    assert document["unpriced"] == document["batch_unpriced"] == ["fake-answers", "fake-model"]
    assert "0.0000 in batch; leaves out unpriced models ['fake-answers', 'fake-model'] (add them to `prices`)." in (
        glan(workflow, "plan")
    )


def test_nothing_to_send_costs_nothing_in_batch(workflow):
    workflow.run()
    document = plan(workflow)
    assert document["send"] == 0 and document["batch_cost"] == 0.0 and document["batch_unpriced"] == []
    assert "estimated cost 0.0000 online, 0.0000 in batch." in glan(workflow, "plan")
