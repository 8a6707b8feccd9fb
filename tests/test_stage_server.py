"""The run's stage server: runs jobs handed over by other processes, cancels a killed job's work,
reports a failure to the job that asked, and exits with the process that started it."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fake_llm import FakeLLM
from helpers import ROOT, THREE_DISCIPLINES

from glan.config import load_config, stage_llm, stage_settings
from glan.runtime import children
from glan.runtime import server as stage_server
from glan.runtime.job import SERVER_ENVIRONMENT, StageFailed, StageJob, submit
from glan.taxonomy import load_taxonomy, write_node_files

SUBMIT = "import sys; from glan.runtime.job import StageJob, submit; submit(StageJob.from_json(sys.argv[1].encode()))"


@contextlib.contextmanager
def stage_server_for(llm: FakeLLM, monkeypatch, progress: Path):
    """A stage server with a cap of one request in flight, a real process started as a run starts it.
    Like a run's, its endpoint comes from the environment it starts with."""
    monkeypatch.delenv(SERVER_ENVIRONMENT, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", llm.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    stage_server.start_for_run(
        {
            "concurrency": 1,
            "senders": 1,
            "rate_limits": {},
            "prices": {},
            "budget": {},
            "interval": 10,
            "progress_dir": str(progress),
        }
    )
    process = children._RUNNING.pop()
    try:
        yield process
    finally:
        process.stdin.close()
        process.wait(timeout=10)


def subjects_job(tmp_path) -> StageJob:
    """The subjects job of one discipline at the default scale: one request per subject query."""
    (tmp_path / "taxonomy.yaml").write_text(yaml.safe_dump(THREE_DISCIPLINES))
    node = write_node_files(load_taxonomy(tmp_path / "taxonomy.yaml"), tmp_path / "nodes")[0]
    config = load_config(ROOT)
    config["llm"].update(backend="openai", model="fake-model", endpoint="fake")
    return StageJob(
        stage="subjects",
        upstream=str(tmp_path / "nodes" / node / "node.json"),
        template=str(ROOT / "prompts/subjects.yaml"),
        output=str(tmp_path / "subjects.json"),
        rejects=str(tmp_path / "subjects.rejects.jsonl"),
        settings=stage_settings(config, "subjects"),
        llm=stage_llm(config, "subjects"),
        cache_dir=str(tmp_path / "cache"),
        log=str(tmp_path / "subjects.log"),
    )


def test_a_job_handed_over_is_run_and_its_outputs_written(tmp_path, monkeypatch):
    with FakeLLM() as server, stage_server_for(server, monkeypatch, tmp_path / "progress"):
        job = subjects_job(tmp_path)
        subprocess.run([sys.executable, "-c", SUBMIT, job.to_json()], check=True, timeout=60)
        queries = job.settings["queries"]
        assert server.count == queries
    log = (tmp_path / "subjects.log").read_text()
    assert f"subjects: planned={queries} cached=0 sent={queries}" in log
    rss = int(re.search(r"subjects: process peak RSS (\d+) MiB", log).group(1))
    assert 20 < rss < 1024  # the server's own peak (VmHWM), not what it inherited from its parent
    assert (tmp_path / "subjects.json").read_bytes()


def test_a_killed_job_has_its_remaining_requests_cancelled(tmp_path, monkeypatch):
    with FakeLLM(latency=1.0) as server, stage_server_for(server, monkeypatch, tmp_path / "progress"):
        job = subjects_job(tmp_path)
        assert job.settings["queries"] > 1, "a job of one request leaves none to cancel"
        process = subprocess.Popen([sys.executable, "-c", SUBMIT, job.to_json()])
        deadline = time.monotonic() + 30
        while server.count < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.kill()
        process.wait()
        time.sleep(2.5)  # the first reply arrives after 1 s; the second request would have gone out then
        assert server.count == 1
    assert not (tmp_path / "subjects.json").exists()


def test_a_failed_job_reports_why_to_its_process_and_log(tmp_path, monkeypatch):
    job = subjects_job(tmp_path)
    (tmp_path / "nodes").rename(tmp_path / "moved")
    with FakeLLM() as server, stage_server_for(server, monkeypatch, tmp_path / "progress"):
        with pytest.raises(StageFailed, match="FileNotFoundError.*node.json"):
            submit(job)
    assert "FileNotFoundError" in (tmp_path / "subjects.log").read_text()


def test_the_server_exits_when_the_process_that_started_it_goes_away(tmp_path, monkeypatch):
    with FakeLLM() as server, stage_server_for(server, monkeypatch, tmp_path / "progress") as process:
        process.stdin.close()
        assert process.wait(timeout=10) == 0
