"""The workflow through `--profile profiles/slurm` on a real single-node Slurm (tests/slurm_cluster.py).

Jobs go through sbatch to slurmd on this host, which stands in for a compute node: the temp copy
of the workflow (and its cache) is the "shared filesystem", the loopback FakeLLM the endpoint.
Slurm is a hard requirement: without its binaries this test fails (install them with
.ci/install-slurm); it never skips.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import pytest
from fake_llm import FakeLLM
from helpers import DISCIPLINES, FIRST_BUILD_TOTAL, Workflow
from slurm_cluster import SlurmCluster, missing_binaries

from glan.llm.cache import cache_layout, open_cache

CAP = 4  # llm.concurrency: requests in flight across all jobs


@pytest.fixture
def slurm():
    missing = missing_binaries()
    if missing:
        pytest.fail(f"Slurm is not installed (missing {', '.join(missing)}): run .ci/install-slurm as root")
    with SlurmCluster() as cluster:
        daemons = dict(cluster.processes)
        yield cluster
    running = [name for name, process in daemons.items() if process.poll() is None]
    assert not running, f"still running after the cluster stopped: {running}"


def run_on_slurm(workflow: Workflow, cluster: SlurmCluster, *args: str):
    # The plugin waits 40 s before its first status check by default: fine on a real cluster, slow here.
    command, env = workflow.command(
        "--profile", "profiles/slurm", "--slurm-init-seconds-before-status-checks", "1", *args
    )
    env.update(cluster.env)
    result = subprocess.run(command, cwd=workflow.dir, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise AssertionError(
            f"snakemake --profile profiles/slurm failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}\n{cluster.logs()}"
        )
    return result


def test_a_build_through_slurm_submits_grouped_jobs_and_matches_a_local_build(tmp_path, slurm, first_build):
    reference = first_build.dataset()  # the same workflow built locally

    with FakeLLM(latency=1.0) as server:
        (tmp_path / "cluster").mkdir()
        workflow = Workflow(tmp_path / "cluster", server)
        workflow.overlay["llm"]["concurrency"] = CAP
        started = time.monotonic()
        result = run_on_slurm(workflow, slurm)
        elapsed = time.monotonic() - started
        log = result.stdout + result.stderr

        # Every request went out once, from jobs on the "compute node", and the dataset is the local one.
        assert server.count == FIRST_BUILD_TOTAL
        assert workflow.dataset() == reference
        # The global cap held across Slurm jobs (a group job claims llm_slots for all its stages),
        # and was reached: a job on a compute node sends its whole share at once.
        assert server.max_in_flight == CAP

        # The jobs really went through sbatch: each id Snakemake reports is in Slurm's own records.
        submitted = re.findall(r"has been submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/([^/]+)/", log)
        records = {job["JobId"]: job for job in slurm.completed_jobs()}
        assert submitted and all(records[job_id]["JobState"] == "COMPLETED" for job_id, _ in submitted)
        assert records.keys() == {job_id for job_id, _ in submitted}
        for job_id, _ in submitted:
            shown = slurm.client("scontrol", "show", "job", job_id).stdout
            assert f"JobId={job_id}" in shown and "JobState=COMPLETED" in shown and f"NodeList={slurm.node}" in shown
        # Grouping: one job per discipline for its four stages, one for the whole-dataset rules, and the
        # joined results/dataset.jsonl, which no whole-dataset rule reads, on its own.
        kinds = [kind for _, kind in submitted]
        per_discipline = [k for k in kinds if k.startswith("group_discipline_")]
        whole_dataset = [k for k in kinds if k.startswith("group_finish_")]
        assert (len(per_discipline), len(whole_dataset), len(kinds)) == (DISCIPLINES, 1, DISCIPLINES + 2), kinds
        assert [k for k in kinds if not k.startswith("group_")] == [k for k in kinds if "dataset" in k], kinds
        print(f"\nSlurm: {len(submitted)} jobs {kinds} in {elapsed:.0f} s, at most {server.max_in_flight} in flight")

        # Nothing left to do through Slurm either, and nothing is sent again.
        server.reset()
        again = run_on_slurm(workflow, slurm)
        assert "Nothing to be done" in again.stdout + again.stderr
        assert server.count == 0

        # The cache the compute nodes wrote is the one a local run reads: a local rebuild sends nothing.
        # It is in the file layout, safe across hosts (no SQLite on the shared filesystem).
        assert cache_layout(workflow.path("cache")) == "files"
        assert not list(workflow.path("cache").glob("*.db"))
        with open_cache(workflow.path("cache")) as cache:
            assert len(cache) == FIRST_BUILD_TOTAL
        shutil.rmtree(workflow.path("results"))
        workflow.run()
        assert server.count == 0
        assert workflow.dataset() == reference
