"""Batch mode in real Snakemake runs against the loopback server's Files and Batches endpoints.

Three disciplines at the tiny scale: one batch per stage wave, the same dataset as an online build,
nothing sent again when the mode changes, and nothing billed twice whatever point a `kill -9` hits.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from math import ceil

import orjson
import pytest
from fake_llm import FakeLLM
from helpers import DATASET, FIRST_BUILD, FIRST_BUILD_TOTAL, PER_DISCIPLINE, Workflow, optics

STAGE_WAVES = len(FIRST_BUILD)  # subjects, syllabus, questions, answers: each wave's misses in one batch
BATCH = {"gather_seconds": 2, "poll_seconds": 0.1}


@pytest.fixture(scope="module")
def online_dataset(first_build) -> bytes:
    return first_build.dataset()


def batch_workflow(directory, server: FakeLLM) -> Workflow:
    workflow = Workflow(directory, server)
    workflow.targets = DATASET
    workflow.overlay["llm"] |= {"mode": "batch", "batch": BATCH}
    return workflow


def billed_once(server: FakeLLM) -> None:
    assert server.lines_billed == FIRST_BUILD_TOTAL
    assert max(server.billed_per_key.values()) == 1, "a request was billed twice"


def test_a_batch_build_sends_one_batch_per_stage_wave_and_makes_the_online_dataset(tmp_path, online_dataset):
    with FakeLLM(batch_seconds=0.3) as server:
        workflow = batch_workflow(tmp_path, server)
        workflow.run()
        assert server.count == 0, "a request went out online"
        assert len(server.batches_created) == STAGE_WAVES
        billed_once(server)
        assert workflow.dataset() == online_dataset
        logs = "".join(p.read_text() for p in workflow.path("logs").rglob("subjects.log"))
        assert "completed" in logs and "batch " in logs, "a job's log names the batch it waited on"
        assert server.held_files == [], "a file was left at the provider"
        assert len(server.files_deleted) == 2 * STAGE_WAVES  # each input and its output (no line failed)
        assert not list(workflow.path("cache/batches").glob("*.jsonl")), "a local input outlived its journal"
        assert len(closed_journals(workflow)) == STAGE_WAVES


def test_with_two_sender_processes_a_batch_build_bills_each_request_once(tmp_path, online_dataset):
    with FakeLLM(batch_seconds=0.3) as server:
        workflow = batch_workflow(tmp_path, server)
        workflow.overlay["llm"]["senders"] = 2
        workflow.run()
        assert server.count == 0
        billed_once(server)  # each process gathers its own jobs' misses: a wave may take a batch a process
        assert STAGE_WAVES <= len(server.batches_created) <= 2 * STAGE_WAVES
        assert server.held_files == [] and len(closed_journals(workflow)) == len(server.batches_created)
    assert workflow.dataset() == online_dataset


def test_switching_mode_sends_nothing_that_is_cached(tmp_path, online_dataset):
    with FakeLLM(batch_seconds=0.3) as server:
        workflow = batch_workflow(tmp_path, server)
        workflow.run()
        workflow.overlay["llm"]["mode"] = "online"
        workflow.run("--forceall")
        assert server.count == 0 and len(server.batches_created) == STAGE_WAVES
        assert workflow.dataset() == online_dataset


def test_transient_faults_of_the_batch_api_are_retried_and_the_build_completes_in_one_run(tmp_path, online_dataset):
    """Three 500s while polling, a 503 on upload, a 429 on create and a dropped download: each call is
    retried under llm.retry as an online request is, and no job fails."""
    faults = {"retrieve": ["500", "500", "500"], "upload": ["503"], "create": ["429"], "content": ["drop"]}
    with FakeLLM(batch_seconds=0.3, batch_api_faults=faults) as server:
        workflow = batch_workflow(tmp_path, server)
        workflow.overlay["llm"]["retry"] = {"base_delay": 0.05}
        result = workflow.run()
        assert server.batch_api_faults == {name: [] for name in faults}, "a fault was not met"
        assert server.count == 0 and len(server.batches_created) == STAGE_WAVES
        billed_once(server)
        assert "batches.retrieve: HTTP 500" in result.stderr, "the run does not say what it retried"
    assert workflow.dataset() == online_dataset


def test_a_permanent_error_of_the_batch_api_is_not_retried_and_a_rerun_builds(tmp_path, online_dataset):
    with FakeLLM(batch_seconds=0.3, batch_api_faults={"create": ["400"]}) as server:
        workflow = batch_workflow(tmp_path, server)
        result = workflow.run(check=False)
        assert result.returncode != 0
        assert server.api_calls["create"] == 1, "a 400 was asked again"
        logs = "".join(p.read_text() for p in workflow.path("logs").rglob("subjects.log"))
        assert "batches.create: HTTP 400: injected 400" in logs
        workflow.run()
        billed_once(server)
    assert workflow.dataset() == online_dataset


def test_a_line_refused_for_good_fails_its_job_at_once_as_online(tmp_path):
    """A 400 (context length) is not asked again in a later batch up to llm.max_attempts."""
    with FakeLLM(batch_seconds=0.3, batch_line_rejects=1.0) as server:
        workflow = batch_workflow(tmp_path, server)
        result = workflow.run(check=False)
        assert result.returncode != 0
        assert len(server.batches_created) == 1 and len(server.batch_requests) == FIRST_BUILD["subjects"]
        logs = "".join(p.read_text() for p in workflow.path("logs").rglob("subjects.log"))
        assert "was refused: status 400: context_length_exceeded" in logs


def closed_journals(workflow: Workflow) -> list[dict]:
    found = [orjson.loads(text) for text in journals(workflow)]
    assert all(journal["done"] for journal in found), "a journal stayed open"
    return found


def test_a_malformed_output_line_is_skipped_and_named_and_the_build_completes_in_one_run(tmp_path, online_dataset):
    with FakeLLM(batch_seconds=0.3, malformed_output_lines=1) as server:
        workflow = batch_workflow(tmp_path, server)
        result = workflow.run()
        assert server.malformed_output_lines == 0, "no output file had the malformed line"
        assert "is not a Batch API output line, skipped" in result.stderr
        assert server.count == 0 and len(server.batches_created) == STAGE_WAVES
        billed_once(server)  # every line after the malformed one was read and stored
        closed_journals(workflow)
    assert workflow.dataset() == online_dataset


def test_a_deleted_output_file_is_reported_and_its_lines_asked_again_once(tmp_path, online_dataset):
    with FakeLLM(batch_seconds=0.3, lost_output_files=1) as server:
        workflow = batch_workflow(tmp_path, server)
        result = workflow.run()
        assert "cannot be read" in result.stderr and "HTTP 404" in result.stderr
        assert server.count == 0 and len(server.batches_created) == STAGE_WAVES + 1
        lost = set(server.batch_custom_ids(server.batches_created[0]))
        billed = server.billed_per_key
        # the provider lost what it billed: those lines are paid again, once; every other request once
        assert {key for key, times in billed.items() if times == 2} == lost
        assert billed.total() == FIRST_BUILD_TOTAL + len(lost) and max(billed.values()) == 2
        assert sum("cannot be read" in journal["reason"] for journal in closed_journals(workflow)) == 1
        workflow.run("--forceall")
        assert len(server.batches_created) == STAGE_WAVES + 1, "a later run asked again"
    assert workflow.dataset() == online_dataset


def killed_when(workflow: Workflow, condition: Callable[[], bool], timeout: float = 120) -> None:
    """Start the build and kill -9 its whole process group (Snakemake, jobs, stage server) once `condition` holds."""
    command, env = workflow.command()
    process = subprocess.Popen(
        command, cwd=workflow.dir, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert condition(), "the kill did not land where the test meant it to"


def journals(workflow: Workflow) -> list[str]:
    return [p.read_text() for p in workflow.path("cache/batches").glob("*.json")]


# Each point: the server knob that holds the client there, and when to kill.
CRASH_POINTS = {
    "while gathering": ({}, lambda w, s: bool(list(w.path("logs").rglob("subjects.log"))) and not s.files_uploaded),
    "after the upload": ({"hold_upload_seconds": 30}, lambda w, s: s.files_uploaded >= 1),
    "right after create": ({"hold_create_seconds": 30}, lambda w, s: len(s.batches_created) >= 1),
    "while polling": ({}, lambda w, s: any('"batch_id": "' in j and '"done": false' in j for j in journals(w))),
    "while downloading": ({"hold_content_seconds": 30}, lambda w, s: s.downloads >= 1),
}


@pytest.mark.parametrize("point", list(CRASH_POINTS))
def test_a_killed_batch_build_resumes_and_bills_nothing_twice(point, tmp_path, online_dataset):
    hold, condition = CRASH_POINTS[point]
    with FakeLLM(batch_seconds=3, **hold) as server:
        workflow = batch_workflow(tmp_path, server)
        killed_when(workflow, lambda: condition(workflow, server))
        for knob in hold:
            setattr(server, knob, 0)
        workflow.run("--unlock")
        workflow.run()
        assert server.count == 0
        billed_once(server)
        assert len(server.batches_created) == STAGE_WAVES, "a batch was created again for requests already in one"
    assert workflow.dataset() == online_dataset


def test_an_online_rerun_waits_for_the_batch_left_open_instead_of_sending_its_requests(tmp_path, online_dataset):
    with FakeLLM(batch_seconds=3) as server:
        workflow = batch_workflow(tmp_path, server)
        polling = CRASH_POINTS["while polling"][1]
        killed_when(workflow, lambda: polling(workflow, server))
        workflow.run("--unlock")
        workflow.overlay["llm"]["mode"] = "online"
        workflow.run()
        assert len(server.batches_created) == 1
        batched = {orjson.dumps(body, option=orjson.OPT_SORT_KEYS) for body in server.batch_requests}
        online = {orjson.dumps(body, option=orjson.OPT_SORT_KEYS) for body in server.requests}
        assert len(batched) == FIRST_BUILD["subjects"] and not batched & online, "a request of the batch went online"
        assert server.count == FIRST_BUILD_TOTAL - FIRST_BUILD["subjects"]
        assert max(server.billed_per_key.values()) == 1
        closed_journals(workflow)
    assert workflow.dataset() == online_dataset


def test_status_shows_the_open_batch_and_cancel_keeps_its_completed_replies_for_an_online_rerun(
    tmp_path, online_dataset
):
    # Its lines are answered one by one over most of 40 s: a loaded machine still cancels it mid-way.
    with FakeLLM(batch_seconds=40) as server:
        workflow = batch_workflow(tmp_path, server)
        workflow.overlay["prices"] = {
            "fake-model": {
                "input_per_mtok": 2,
                "output_per_mtok": 4,
                "batch_input_per_mtok": 1,
                "batch_output_per_mtok": 2,
            }
        }
        killed_when(workflow, lambda: CRASH_POINTS["while polling"][1](workflow, server))
        [batch_id] = server.batches_created
        said = workflow.glan("batch", "status")
        assert said.returncode == 0, said.stderr
        assert re.search(rf"^{batch_id} \(fake-model, {FIRST_BUILD['subjects']} requests\): \w+", said.stdout, re.M)
        assert "up to $" in said.stdout and "1 open batch(es)" in said.stdout
        wait_until(lambda: server.lines_billed >= 1)
        cancelled = workflow.glan("batch", "cancel", batch_id)
        assert cancelled.returncode == 0, cancelled.stderr
        completed = server.lines_billed
        assert 1 <= completed < FIRST_BUILD["subjects"], "the batch was not cancelled mid-way"
        assert f"{batch_id}: cancelled; {completed} completed repl(ies) stored" in cancelled.stdout
        assert "No batch is open" in workflow.glan("batch", "status").stdout
        workflow.run("--unlock")
        workflow.overlay["llm"]["mode"] = "online"
        workflow.run()
        assert server.count == FIRST_BUILD_TOTAL - completed, "a reply the cancelled batch completed was paid again"
        assert max(server.billed_per_key.values()) == 1
        assert server.held_files == [], "a file of the cancelled batch was left at the provider"
    assert workflow.dataset() == online_dataset


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition()


def test_each_model_gets_its_own_files_within_the_limits(tmp_path):
    """A provider refuses a file that mixes models; `max_requests` splits a wave into several files."""
    with FakeLLM(batch_seconds=0.3) as server:
        workflow = batch_workflow(tmp_path, server)
        workflow.edit_taxonomy(lambda taxonomy: optics(taxonomy).update(stages={"answers": {"llm": {"model": "big"}}}))
        limit = FIRST_BUILD["syllabus"] - 1
        workflow.overlay["llm"]["batch"] = {**BATCH, "max_requests": limit}
        workflow.run()
        assert server.count == 0
        billed_once(server)
        # A mixed file would fail validation at the server (model_mismatch), and the build with it. How the
        # misses of a wave fall into gatherings depends on when its jobs arrive (a loaded machine spreads a
        # wave over two, or brings two waves into one), so the files are counted by what holds either way:
        # each within the limit, so at least the lines over the limit.
        sizes = [len(server.batch_custom_ids(batch)) for batch in server.batches_created]
        assert max(sizes) <= limit and sum(sizes) == FIRST_BUILD_TOTAL
        assert len(sizes) >= ceil(FIRST_BUILD_TOTAL / limit)


def many_disciplines(count: int) -> dict:
    return {"taxonomy": [{"name": "Field", "children": [{"name": f"Discipline {i}"} for i in range(count)]}]}


WAITING = 50  # disciplines whose jobs all wait on the stage server at once, at --cores 2


def test_at_two_cores_the_subjects_of_fifty_disciplines_go_out_in_one_batch(tmp_path):
    """Waiting jobs take no core and no slot of Snakemake's executor: not 25 waves of 2, nor 7 of 7."""
    with FakeLLM(batch_seconds=0.3) as server:
        workflow = batch_workflow(tmp_path, server)
        workflow.overlay["llm"]["batch"] = {**BATCH, "gather_seconds": 5}  # longer than 50 job processes take to start
        workflow.write_taxonomy(many_disciplines(WAITING))
        workflow.run("--until", "subjects")
        assert len(server.batches_created) == 1
        assert server.lines_billed == WAITING * PER_DISCIPLINE["subjects"]


def test_at_two_cores_online_requests_of_fifty_waiting_jobs_fill_the_cap(tmp_path):
    cap = WAITING * PER_DISCIPLINE["subjects"] // 2  # more than 7 jobs' requests
    with FakeLLM(latency=4) as server:  # replies outlast the start of 50 job processes
        workflow = Workflow(tmp_path, server)
        workflow.overlay["llm"]["concurrency"] = cap
        workflow.write_taxonomy(many_disciplines(WAITING))
        workflow.run("--until", "subjects")
        assert server.count == WAITING * PER_DISCIPLINE["subjects"]
        assert server.max_in_flight == cap


def test_batch_mode_refuses_the_cluster_profile_and_says_to_run_on_the_submit_host(workflow):
    workflow.overlay["llm"]["mode"] = "batch"
    result = workflow.run("--profile", "profiles/slurm", "-n", check=False)
    assert result.returncode != 0
    assert "llm.mode batch needs no compute nodes" in result.stdout + result.stderr
