"""Endpoint faults, invalid replies, a killed run: the build survives and loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import orjson
import pytest
from fake_llm import FakeLLM
from helpers import CORES, DATASET, FIRST_BUILD_TOTAL, MAX_ATTEMPTS, PER_DISCIPLINE, Workflow

from glan.io import read_json, read_jsonl

pytestmark = pytest.mark.dataset_only  # `workflow` builds DATASET: the property ends at the dataset

FAST_RETRIES = {"timeout": 1.0, "retry": {"attempts": 10, "base_delay": 0.05, "max_delay": 0.5}}


@pytest.fixture
def reference(first_build) -> bytes:
    """The dataset of a fault-free run, for comparison."""
    return first_build.dataset()


def every_result_parses(workflow: Workflow) -> None:
    for path in workflow.path("results").rglob("*.json*"):
        (read_jsonl if path.suffix == ".jsonl" else read_json)(path)


def test_a_build_with_30_percent_faults_of_every_kind_completes_with_the_fault_free_dataset(tmp_path, reference):
    with FakeLLM(faults=0.3, slow_seconds=2.0, seed=7) as server:
        (tmp_path / "faulty").mkdir()
        workflow = Workflow(tmp_path / "faulty", server)
        workflow.targets = DATASET
        workflow.overlay["llm"].update(FAST_RETRIES)
        workflow.run()
        kinds = set(server.faults_injected)
        assert len(server.faults_injected) >= 0.2 * server.count, "fewer faults than asked for: the test proves little"
    assert kinds == set(FakeLLM.FAULTS)
    assert workflow.dataset() == reference


def test_invalid_replies_are_reasked_then_rejected_and_a_rerun_pays_for_none_of_them_again(tmp_path):
    with FakeLLM(bad_replies=0.4) as server:
        workflow = Workflow(tmp_path, server)
        workflow.targets = DATASET
        workflow.overlay["llm"]["max_reject_share"] = 0.5
        workflow.run()
        first = workflow.dataset()
        rejects = [r for path in workflow.path("results").rglob("*.rejects.jsonl") for r in read_jsonl(path)]
        assert rejects and all(r["attempts"] == MAX_ATTEMPTS for r in rejects)
        assert {r["reason"].split(":")[0] for r in rejects} <= {
            "not JSON",
            "schema violation at top level",
            "cut off by the token cap (finish_reason",
            "empty reply",
        }
        for record in map(orjson.loads, first.splitlines()):
            assert record["messages"][1]["content"].startswith("Reply ")

        server.reset()
        workflow.run("--forceall")
        assert server.count == 0, "a request was asked again: its rejected or valid replies were not kept"
        assert workflow.dataset() == first


def test_a_stage_fails_with_a_clear_message_when_rejects_pass_the_share(workflow):
    workflow.server.bad_replies = 1.0
    result = workflow.run(check=False)
    assert result.returncode != 0
    log = next(workflow.path("logs").rglob("subjects.log")).read_text()
    queries = PER_DISCIPLINE["subjects"]
    assert "llm.max_reject_share=0.2" in log and f"{queries} of {queries} requests" in log
    assert not list(workflow.path("results").rglob("subjects.json"))


def test_a_killed_run_resumes_without_resending_answered_requests(tmp_path, reference):
    concurrency = 2
    kill_after = FIRST_BUILD_TOTAL // 2  # requests received
    with FakeLLM(latency=0.15) as server:
        workflow = Workflow(tmp_path, server)
        workflow.targets = DATASET
        workflow.overlay["llm"]["concurrency"] = concurrency
        command, env = workflow.command()
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while server.count < kill_after and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        assert kill_after <= server.count < FIRST_BUILD_TOTAL, "the kill did not land mid-build"

        every_result_parses(workflow)
        workflow.run("--unlock")
        workflow.run()

        bodies = [orjson.dumps(body, option=orjson.OPT_SORT_KEYS) for body in server.requests]
        duplicates = len(bodies) - len(set(bodies))
        in_flight_at_kill = CORES * concurrency
        assert duplicates <= in_flight_at_kill, f"{duplicates} sent twice: more than were in flight"
        assert len(set(bodies)) == FIRST_BUILD_TOTAL
    every_result_parses(workflow)
    assert workflow.dataset() == reference


def test_a_config_that_breaks_the_schema_names_the_key(workflow):
    workflow.overlay["stages"] = {"questions": {"per_subject": 0}}
    result = workflow.run(check=False)
    assert result.returncode != 0
    assert "test.yaml: `stages.questions.per_subject: 0` must be at least 1" in result.stderr
    assert workflow.server.count == 0


def test_a_template_with_an_unknown_placeholder_fails_before_any_request(workflow):
    prompt = workflow.path("prompts/answers.yaml")
    prompt.write_text(prompt.read_text() + "\n  {{ mood }}\n")
    result = workflow.run(check=False)
    assert result.returncode != 0
    assert "prompts/answers.yaml" in result.stderr and "mood" in result.stderr
    assert workflow.server.count == 0
    assert not workflow.path("results/nodes/mathematics/number-theory/subjects.json").exists()
