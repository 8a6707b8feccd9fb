"""Endpoint faults, invalid replies, a killed run: the build survives and loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import orjson
import pytest
from helpers import Workflow

from glan.fake_server import FakeLLM
from glan.io import read_json, read_jsonl

FAST_RETRIES = {"timeout": 1.0, "retry": {"attempts": 10, "base_delay": 0.05, "max_delay": 0.5}}


@pytest.fixture
def reference(tmp_path):
    """The dataset of a fault-free run, for comparison."""
    with FakeLLM() as server:
        directory = tmp_path / "reference"
        directory.mkdir()
        workflow = Workflow(directory, server)
        workflow.run()
        return workflow.dataset()


def every_result_parses(workflow: Workflow) -> None:
    for path in workflow.path("results").rglob("*.json*"):
        (read_jsonl if path.suffix == ".jsonl" else read_json)(path)


def test_a_build_with_30_percent_faults_completes_with_the_same_dataset(tmp_path, reference):
    with FakeLLM(faults=0.3, slow_seconds=2.0, seed=7) as server:
        (tmp_path / "faulty").mkdir()
        workflow = Workflow(tmp_path / "faulty", server)
        workflow.overlay["llm"].update(FAST_RETRIES)
        workflow.run()
        kinds = set(server.faults_injected)
        assert len(server.faults_injected) >= 0.2 * server.count
    assert kinds == set(FakeLLM.FAULTS)
    assert workflow.dataset() == reference


def test_invalid_replies_are_reasked_rejected_and_never_paid_twice(tmp_path):
    with FakeLLM(bad_replies=0.4) as server:
        workflow = Workflow(tmp_path, server)
        workflow.overlay["llm"]["max_reject_share"] = 0.5
        workflow.run()
        first = workflow.dataset()
        rejects = [r for path in workflow.path("results").rglob("*.rejects.jsonl") for r in read_jsonl(path)]
        assert rejects and all(r["attempts"] == 3 for r in rejects)
        assert {r["reason"].split(":")[0] for r in rejects} <= {
            "not JSON",
            "schema violation at top level",
            "cut off by the token cap (finish_reason",
            "empty reply",
        }
        for record in map(orjson.loads, first.splitlines()):
            assert record["messages"][1]["content"].startswith("Reply ")

        workflow.run("--forceall")
        assert workflow.dataset() == first
        sent = server.count
        server.reset()
        workflow.run("--forceall")
        assert server.count == 0, "a rejected reply was asked for again"
    assert sent > 0


def test_a_stage_fails_with_a_clear_message_when_rejects_pass_the_share(workflow):
    workflow.server.bad_replies = 1.0
    result = workflow.run(check=False)
    assert result.returncode != 0
    log = next(workflow.path("logs").rglob("subjects.log")).read_text()
    assert "llm.max_reject_share=0.2" in log and "2 of 2 requests" in log
    assert not list(workflow.path("results").rglob("subjects.json"))


def test_a_killed_run_resumes_without_resending_answered_requests(tmp_path, reference):
    with FakeLLM(latency=0.15) as server:
        workflow = Workflow(tmp_path, server)
        workflow.overlay["llm"]["concurrency"] = 2
        command, env = workflow.command()
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while server.count < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        answered_before_kill = server.count
        assert 30 <= answered_before_kill < 66, "the kill did not land mid-build"

        every_result_parses(workflow)
        workflow.run("--unlock")
        workflow.run()

        bodies = [orjson.dumps(body, option=orjson.OPT_SORT_KEYS) for body in server.requests]
        duplicates = len(bodies) - len(set(bodies))
        assert duplicates <= 4, f"{duplicates} requests sent twice (at most 2 jobs x 2 in flight may be)"
        assert len(set(bodies)) == 66
    every_result_parses(workflow)
    assert workflow.dataset() == reference


def test_a_config_that_breaks_the_schema_names_the_key(workflow):
    workflow.overlay["stages"] = {"questions": {"per_subject": 0}}
    result = workflow.run(check=False)
    assert result.returncode != 0
    assert "per_subject" in result.stderr and "minimum" in result.stderr
    assert workflow.server.count == 0


def test_a_template_with_an_unknown_placeholder_fails_before_any_request(workflow):
    prompt = workflow.path("prompts/answers.yaml")
    prompt.write_text(prompt.read_text() + "\n  {{ mood }}\n")
    result = workflow.run(check=False)
    assert result.returncode != 0
    assert "prompts/answers.yaml" in result.stderr and "mood" in result.stderr
    assert workflow.server.count == 0
    assert not workflow.path("results/nodes/mathematics/number-theory/subjects.json").exists()
