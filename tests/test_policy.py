"""The run's policy (glan.runtime.policy): what a run refuses, and widening Snakemake's local executor, checked
against the Snakemake installed here, so that a release that changes the executor's shape fails this test."""

from __future__ import annotations

import subprocess
import sys

import pytest
import snakemake
from helpers import DEFAULTS

from glan.config import deep_merge
from glan.runtime.policy import Refused, let_every_job_wait, refuse, served_run

BATCH = {"llm": {"backend": "openai", "mode": "batch"}}
BUDGET = {"llm": {"backend": "openai", "model": "gpt-x", "budget": 1.0}}


def test_batch_mode_is_refused_on_a_cluster_only():
    refuse(deep_merge(DEFAULTS, BATCH), cluster=False)
    with pytest.raises(Refused, match="llm.mode batch needs no compute nodes: run this build on the submit host"):
        refuse(deep_merge(DEFAULTS, BATCH), cluster=True)


def test_a_budget_is_refused_on_a_cluster_and_without_prices():
    with pytest.raises(Refused, match="llm.budget is held by the stage server of a local run"):
        refuse(deep_merge(DEFAULTS, BUDGET), cluster=True)
    with pytest.raises(Refused, match=r"llm.budget is set, but .*gpt-x.*Add the model's prices"):
        refuse(deep_merge(DEFAULTS, BUDGET), cluster=False)
    priced = {"prices": {"gpt-x": {"input_per_mtok": 1, "output_per_mtok": 2}}}
    refuse(deep_merge(DEFAULTS, {**BUDGET, **priced}), cluster=False)


def test_the_stage_server_runs_a_local_run_unless_every_stage_runs_the_embedded_model():
    assert not served_run(DEFAULTS, cluster=False)  # the default: the embedded model, in its jobs' processes
    assert served_run(deep_merge(DEFAULTS, BATCH), cluster=False)
    assert not served_run(deep_merge(DEFAULTS, BATCH), cluster=True)


def test_another_snakemake_than_the_one_it_was_written_for_is_left_alone_and_named():
    assert let_every_job_wait(object(), 50, "10.0.0") == (
        "written for Snakemake 9.x's local executor, this is Snakemake 10.0.0"
    )


WIDENED = """
from glan.runtime.policy import let_every_job_wait
import snakemake

onstart:
    before = workflow.scheduler._executor.workers
    why_not = let_every_job_wait(workflow.scheduler, 50, snakemake.__version__)
    print(f"widened {before} -> {workflow.scheduler._executor.workers}" if why_not is None else why_not)

rule all:
    output: "done"
    shell: "touch {output}"
"""


def test_the_local_executor_of_the_snakemake_installed_here_is_widened_for_every_job(tmp_path):
    (tmp_path / "Snakefile").write_text(WIDENED)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "widened 7 -> 57" in result.stdout + result.stderr, (
        f"Snakemake {snakemake.__version__}'s local executor changed shape: glan.runtime.policy.let_every_job_wait "
        f"no longer applies:\n{result.stdout}{result.stderr}"
    )
