"""Live progress and the budget, in real runs against the loopback server.

The progress line and logs/progress.json count what the server itself saw (requests received) and
what its replies said (usage); `glan status` prints the same figures. A budget stops sending once the
spend so far and what is in flight would pass it: the run fails, saying what was spent and how to go
on, and passes the budget by at most the requests in flight; raised, the next run sends only the rest.
"""

from __future__ import annotations

import subprocess
import time

import orjson
from fake_llm import FakeLLM
from helpers import DATASET, FIRST_BUILD_TOTAL, Workflow

from glan.llm.cache import open_cache
from glan.llm.meter import Meter
from glan.llm.prices import price_of
from glan.runtime.job import StageJob
from glan.runtime.progress import job_part, merged, publish
from glan.runtime.run import run_job

PRICES = {"fake-model": {"input_per_mtok": 100.0, "output_per_mtok": 400.0}}
CONCURRENCY = 4


def progress(workflow: Workflow) -> dict:
    return orjson.loads(workflow.path("logs/progress.json").read_bytes())


def stored_usage(workflow: Workflow) -> list[dict]:
    with open_cache(workflow.path("cache")) as cache:
        return [cache.get(key).reply.usage for key in cache.keys()]


def priced_workflow(tmp_path, server: FakeLLM, **llm) -> Workflow:
    workflow = Workflow(tmp_path, server)
    workflow.targets = DATASET
    workflow.overlay["progress"] = {"interval": 0.5}
    workflow.overlay["prices"] = PRICES
    workflow.overlay["llm"].update({"concurrency": CONCURRENCY, **llm})
    return workflow


def test_the_progress_line_and_file_count_what_the_server_saw_and_said(tmp_path):
    with FakeLLM(latency=0.05) as server:
        workflow = priced_workflow(tmp_path, server)
        result = workflow.run()
        lines = [line for line in result.stderr.splitlines() if line.startswith("glan: requests ")]
        document = progress(workflow)
        usage = stored_usage(workflow)
        received = server.count

    totals = document["totals"]
    assert lines and lines[-1] == f"glan: {document['line']}"  # the last line is the final state
    assert document["finished"] and document["success"]
    assert totals["planned"] == totals["done"] == totals["sent"] == received == FIRST_BUILD_TOTAL
    assert totals["in_flight"] == totals["cached"] == totals["failed"] == totals["refused"] == 0
    assert totals["prompt_tokens"] == sum(u["prompt_tokens"] for u in usage)
    assert totals["completion_tokens"] == sum(u["completion_tokens"] for u in usage)
    expected_cost = sum(price_of("fake-model", u, PRICES) for u in usage)
    assert abs(totals["cost"] - expected_cost) < 1e-5
    assert sum(stage["planned"] for stage in document["by_stage"].values()) == FIRST_BUILD_TOTAL
    assert document["by_model"]["fake-model"]["sent"] == FIRST_BUILD_TOTAL
    assert f"requests {FIRST_BUILD_TOTAL}/{FIRST_BUILD_TOTAL} (100%)" in document["line"]

    status = subprocess.run(["glan", "status", "-d", str(tmp_path)], capture_output=True, text=True, check=True)
    assert status.stdout.startswith(f"run finished: {document['line']}")
    assert f"fake-model: planned={FIRST_BUILD_TOTAL:,} done={FIRST_BUILD_TOTAL:,}" in status.stdout


def test_a_rebuild_from_the_cache_counts_every_request_cached_and_none_sent(tmp_path):
    with FakeLLM() as server:
        workflow = priced_workflow(tmp_path, server)
        workflow.run()
        subprocess.run(["rm", "-rf", "results"], cwd=tmp_path, check=True)
        server.reset()
        workflow.run()
        assert server.count == 0
    totals = progress(workflow)["totals"]
    assert totals["planned"] == totals["cached"] == totals["done"] == FIRST_BUILD_TOTAL
    assert totals["sent"] == 0 and totals["cost"] == 0


def test_a_job_sending_in_its_own_process_reports_into_the_same_layout(tmp_path, monkeypatch):
    with FakeLLM() as server:
        workflow = priced_workflow(tmp_path, server)
        workflow.run("--until", "subjects")
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        job = job_of(workflow)
        run_job(job)
        document = merged()
    assert (tmp_path / job_part(job.output)).exists()
    assert document["by_stage"]["subjects"]["cached"] >= 1  # the standalone job's part, merged with the server's


def job_of(workflow: Workflow) -> StageJob:
    from glan.config import load_config, stage_llm, stage_settings

    config = load_config(workflow.dir, ["config/tiny.yaml", "test.yaml"])
    node = next(workflow.path("results/nodes").rglob("node.json"))
    return StageJob(
        stage="subjects",
        upstream=str(node.relative_to(workflow.dir)),
        template="prompts/subjects.yaml",
        output=str((node.parent / "again-subjects.json").relative_to(workflow.dir)),
        rejects=str((node.parent / "again-rejects.jsonl").relative_to(workflow.dir)),
        settings=stage_settings(config, "subjects"),
        llm={**stage_llm(config, "subjects"), "slots": 1},
        cache_dir="cache",
        log=str(workflow.path("logs/again.log")),
        prices=PRICES,
        progress_interval=0.2,
    )


def test_a_budget_stops_sending_passes_by_at_most_the_requests_in_flight_and_a_raised_one_goes_on(tmp_path):
    with FakeLLM(latency=0.2) as server:
        workflow = priced_workflow(tmp_path, server)
        workflow.run()
        full = progress(workflow)["totals"]["cost"]
        costliest = max(price_of("fake-model", u, PRICES) for u in stored_usage(workflow))
        subprocess.run(["rm", "-rf", "results", "cache", "logs"], cwd=tmp_path, check=True)
        server.reset()

        budget = round(full / 2, 4)
        workflow.overlay["llm"]["budget"] = budget
        started = time.monotonic()
        stopped = workflow.run(check=False)
        took = time.monotonic() - started
        first = progress(workflow)["totals"]
        sent_first = server.count
        peak_in_flight = server.max_in_flight

        server.reset()
        workflow.overlay["llm"]["budget"] = full * 2
        workflow.run()
        sent_second = server.count

    assert stopped.returncode != 0
    assert f"llm.budget {budget:,.2f} reached: this run spent" in stopped.stderr
    assert "raise llm.budget and run again" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert first["refused"] >= 1 and first["in_flight"] == 0
    overshoot = first["cost"] - budget
    assert overshoot <= peak_in_flight * costliest, (overshoot, peak_in_flight, costliest)
    assert peak_in_flight <= CONCURRENCY
    assert sent_first + sent_second == FIRST_BUILD_TOTAL  # nothing paid is sent again
    print(
        f"budget {budget:.4f}: spent {first['cost']:.4f}, overshoot {overshoot:.4f} "
        f"(<= {peak_in_flight} in flight x {costliest:.4f}); stopped in {took:.1f} s"
    )


def test_a_budget_over_a_model_without_a_price_stops_at_parse_time_naming_it(tmp_path):
    with FakeLLM() as server:
        workflow = priced_workflow(tmp_path, server, budget=1.0)
        workflow.overlay["prices"] = {}
        started = time.monotonic()
        result = workflow.run(check=False)
        took = time.monotonic() - started
        assert server.count == 0
    assert result.returncode != 0 and took < 30
    assert "llm.budget is set, but stage subjects sends to 'fake-model'" in result.stderr
    assert "Add the model's prices" in result.stderr


def test_the_meter_is_published_even_with_no_run_started(tmp_path):
    document = publish(tmp_path / "progress")
    assert document["started"] is None and (tmp_path / "progress.json").exists()
    assert Meter().budget.limits == {}


def test_a_budget_on_a_cluster_run_is_refused_naming_the_submit_host(tmp_path):
    with FakeLLM() as server:
        workflow = priced_workflow(tmp_path, server, budget=1.0)
        result = workflow.run("--profile", "profiles/slurm", "-n", check=False)
    assert result.returncode != 0
    assert "llm.budget is held by the stage server of a local run" in result.stdout + result.stderr


def test_the_status_panel_draws_every_stage_and_model(tmp_path):
    from rich.console import Console

    from glan.cli.status import panel
    from glan.runtime.progress import part_of, start_run

    meter = Meter()
    meter.tally("answers", "fake-model").planned = 3
    directory = tmp_path / "progress"
    start_run({"answers": 1}, 10, directory)
    (directory / "server.json").write_bytes(orjson.dumps(part_of(meter)))
    console = Console(record=True, width=160)
    console.print(panel(merged(directory)))
    text = console.export_text()
    assert "glan status" in text and "answers" in text and "fake-model" in text and "requests 0/~3" in text
