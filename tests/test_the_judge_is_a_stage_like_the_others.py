"""One registry: `STAGES` answers membership, iteration and lookup alike, the optional judge among them, and
what a build runs is `active(config)`. So the judge's jobs are in the preflight and the progress projection."""

from __future__ import annotations

import orjson
from fake_llm import FakeLLM
from helpers import DEFAULTS, DISCIPLINES, Workflow

from glan.config import deep_merge
from glan.stages import GLAN_STAGES, STAGES, active

JUDGE_ON = {"stages": {"judge": {"enabled": True}}}


def test_membership_iteration_and_lookup_agree():
    assert list(STAGES) == [*GLAN_STAGES, "judge"]
    assert all(name in STAGES and STAGES[name].name == name for name in STAGES)
    assert list(STAGES).index("judge") == len(GLAN_STAGES)
    assert list(active(DEFAULTS)) == list(GLAN_STAGES)
    assert list(active(deep_merge(DEFAULTS, JUDGE_ON))) == list(STAGES)


def test_the_preflight_checks_the_judges_model_and_the_projection_counts_its_jobs(tmp_path):
    judge_model = {"stages": {"judge": {"llm": {"model": "judge-model"}}}}
    with FakeLLM(answered_models=["fake-model"]) as server:
        workflow = Workflow(tmp_path, server)
        workflow.overlay = deep_merge(workflow.overlay, deep_merge(JUDGE_ON, judge_model))
        workflow.overlay["llm"]["preflight"] = True
        result = workflow.run(check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "'judge-model'" in output and "stages.judge.llm.model" in output, output
    assert "(skip it with --config 'llm={preflight: false}')" in output  # a command that works (test_the_preflight_...)
    assert not workflow.path("results/nodes/natural-sciences/physics/optics/subjects.json").exists()

    with FakeLLM() as server:
        workflow.server = server
        workflow.overlay["llm"]["preflight"] = False
        workflow.run()
    run = orjson.loads(workflow.path("logs/progress/run.json").read_bytes())
    assert run["expected_jobs"] == {stage: DISCIPLINES for stage in STAGES}
