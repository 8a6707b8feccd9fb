"""The optional judge stage (issue 16), in real Snakemake runs against the loopback server, which grades
every pair with a schema-valid grade: one judge request per record, scores in provenance, a filter that
removes exactly the records under the minimums, and the incremental promises (a threshold is free, a
judge prompt edit re-sends the judge's requests only, the judge off gives GLAN's records back).

One build with the judge on is shared by the module (it takes most of the time); each test says what
state it leaves.
"""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest
import yaml
from fake_llm import FakeLLM
from helpers import DEFAULTS, DISCIPLINES, FIRST_BUILD, ROOT, Workflow, changed_files, stage_counts
from records import facts_of

from glan.config import deep_merge
from glan.dataset.clean import judge_filter
from glan.io import read_json, read_jsonl
from glan.llm.lookup import Outcome
from glan.llm.request import Request
from glan.stages.contract import Answered
from glan.stages.judge import CRITERIA, SCALE, grade

JUDGE_ON = {"stages": {"judge": {"enabled": True}}, "clean": {"judge": {"min_score": 6}}}
GRADES = FIRST_BUILD["answers"]  # one judge request per answer, so per record


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    with FakeLLM() as server:
        workflow = Workflow(tmp_path_factory.mktemp("judge"), server)
        workflow.overlay = deep_merge(workflow.overlay, JUDGE_ON)
        workflow.run()
        yield workflow, stage_counts(server.requests)


def records(workflow: Workflow, path: str = "results/dataset.jsonl") -> list[dict]:
    return read_jsonl(workflow.path(path))


def set_minimums(workflow: Workflow, **minimums) -> None:
    workflow.overlay = deep_merge(workflow.overlay, {"clean": {"judge": minimums}})


def below(record: dict, min_score: int, criteria: dict) -> bool:
    grade = record["provenance"]["judge"]
    return grade["overall"] < min_score or any(grade["scores"][c] < m for c, m in criteria.items())


def graded(workflow: Workflow) -> list[dict]:
    """The records the judge filter kept: the raw dataset less its removal file."""
    removed = {entry["id"] for entry in records(workflow, "results/clean/low_scores.jsonl")}
    return [r for r in records(workflow) if r["id"] not in removed]


def assert_filtered(workflow: Workflow, min_score: int, criteria: dict) -> None:
    """The filter removed exactly the records under the minimums, each with its grade; the rest went on, in order."""
    raw = records(workflow)
    low = [r for r in raw if below(r, min_score, criteria)]
    assert 0 < len(low) < len(raw), "the minimums should remove some records and keep some"
    removed = records(workflow, "results/clean/low_scores.jsonl")
    assert [(e["id"], e["grade"]) for e in removed] == [(r["id"], r["provenance"]["judge"]) for r in low]
    kept = graded(workflow)
    assert [r["id"] for r in kept] == [r["id"] for r in raw if not below(r, min_score, criteria)]
    report = read_json(workflow.path("results/clean/judge.json"))
    assert report["counts"]["removed_low_score"] == len(low) and report["counts"]["records_out"] == len(kept)


def without_grade(record: dict) -> dict:
    provenance = {k: v for k, v in record["provenance"].items() if k != "judge"}
    provenance["keys"] = {k: v for k, v in provenance["keys"].items() if k != "judge"}
    provenance["models"] = {k: v for k, v in provenance["models"].items() if k != "judge"}
    return {**record, "provenance": provenance}


def answer_records(workflow: Workflow) -> list[dict]:
    return sorted(
        (r for path in sorted(workflow.path("results/nodes").rglob("answers.jsonl")) for r in read_jsonl(path)),
        key=lambda r: r["id"],
    )


def test_the_judge_grades_every_pair_once_and_the_filter_removes_exactly_those_below(judged):
    workflow, sent = judged
    assert sent == {**FIRST_BUILD, "judge": GRADES}
    raw = records(workflow)
    assert len(raw) == GRADES
    for record in raw:
        provenance = record["provenance"]
        grade = provenance["judge"]
        assert grade["graded"] is True and grade["reason"]
        assert set(grade["scores"]) == set(CRITERIA)
        assert all(SCALE[0] <= s <= SCALE[1] for s in [grade["overall"], *grade["scores"].values()])
        assert provenance["models"]["judge"] == "fake-model" and len(provenance["keys"]["judge"]) == 64
    # The grade is all the judge adds: the records are GLAN's otherwise.
    assert sorted(map(without_grade, raw), key=lambda r: r["id"]) == answer_records(workflow)
    assert_filtered(workflow, 6, {})

    stats = read_json(workflow.path("results/report/stats.json"))
    assert stats["judge"]["cost"]["requests"] == GRADES
    assert stats["funnel"]["after_judge"] == len(graded(workflow))
    assert workflow.path("results/report/judge_scores.png").stat().st_size > 0
    card = workflow.path("results/export/hf/README.md").read_text()
    assert "## Judge" in card and f"Grading cost {GRADES} requests" in card


def test_changing_the_minimums_sends_nothing_and_rebuilds_no_node_file(judged):
    workflow, _ = judged
    nodes = workflow.snapshot()
    workflow.server.reset()
    set_minimums(workflow, min_score=8, min_criteria={"correctness": 5})
    workflow.run()
    assert workflow.server.count == 0
    assert workflow.snapshot() == nodes
    assert_filtered(workflow, 8, {"correctness": 5})


def plan(workflow: Workflow) -> dict:
    command = [sys.executable, "-m", "glan.cli", "plan", "--json", "--configfile", "config/tiny.yaml", "test.yaml"]
    result = subprocess.run(command, cwd=workflow.dir, env=workflow.environment(), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return orjson.loads(result.stdout)


def test_editing_the_judge_prompt_re_sends_only_the_judge_requests(judged):
    workflow, _ = judged
    before = workflow.snapshot()
    answers = {r["id"]: r["provenance"]["keys"] for r in records(workflow)}
    prompt = workflow.path("prompts/judge.yaml")
    prompt.write_text(prompt.read_text().replace("strict examiner", "strict but fair examiner"))

    planned = {stage: total["send"] for stage, total in plan(workflow)["totals"].items()}
    assert planned == {**dict.fromkeys(FIRST_BUILD, 0), "judge": GRADES}

    workflow.server.reset()
    workflow.run()
    assert stage_counts(workflow.server.requests) == {"judge": GRADES}
    changed = changed_files(before, workflow.snapshot())
    # the judge's files, and the facts and usage of the records it grades (rules/clean.smk)
    assert changed and all(path.rsplit("/", 1)[-1].startswith(("judge", "facts.", "usage.")) for path in changed)
    for record in records(workflow):
        keys = record["provenance"]["keys"]
        assert keys["judge"] != answers[record["id"]]["judge"]
        assert {k: v for k, v in keys.items() if k != "judge"} == {
            k: v for k, v in answers[record["id"]].items() if k != "judge"
        }


def test_with_the_judge_off_the_dataset_is_glans_again_and_turning_it_on_again_sends_nothing(judged):
    workflow, _ = judged
    workflow.overlay = deep_merge(workflow.overlay, {"stages": {"judge": {"enabled": False}}})
    workflow.server.reset()
    workflow.run()
    assert workflow.server.count == 0
    raw = records(workflow)
    assert all("judge" not in r["provenance"] and "judge" not in r["provenance"]["keys"] for r in raw)
    assert sorted(raw, key=lambda r: r["id"]) == answer_records(workflow)
    assert "## Judge" not in workflow.path("results/export/hf/README.md").read_text()
    assert "judge" not in read_json(workflow.path("results/report/stats.json"))

    workflow.overlay = deep_merge(workflow.overlay, {"stages": {"judge": {"enabled": True}}})
    workflow.run()
    assert workflow.server.count == 0, "the grades come from the cache"
    assert all(r["provenance"]["judge"]["graded"] for r in records(workflow))


def test_a_new_build_plans_one_judge_request_per_answer_to_come(workflow):
    workflow.overlay = deep_merge(workflow.overlay, JUDGE_ON)
    totals = plan(workflow)["totals"]
    assert totals["judge"]["send"] == totals["judge"]["estimated"] == GRADES
    assert workflow.server.count == 0


def rejected_grade() -> dict:
    record = {
        "id": "q1",
        "messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}],
        "provenance": {
            "node": "a/b/c",
            "path": ["A", "B", "C"],
            "difficulty": "hard",
            "strategy": "two-sessions",
            "models": {},
            "keys": {},
        },
    }
    request = Request(model="judge-model", messages=[])
    return grade(Answered(record, Outcome(request, "k", None, "schema violation at overall")), "judge-model")


def test_a_pair_without_a_valid_grade_says_so_and_is_kept_or_removed_as_configured(tmp_path):
    record = rejected_grade()
    assert record["provenance"]["judge"] == {"graded": False, "reason": "no valid grade: schema violation at overall"}
    assert "judge" not in record["provenance"]["keys"], "no request key: accounting counts valid replies only"
    settings = {"min_score": 9, "min_criteria": {}, "keep_ungraded": True}
    # a Parquet file has no place for the empty keys and models of this made-up record: facts of one with some
    provenance = {**record["provenance"], "keys": {"answers": "k"}, "models": {"answers": "m"}}
    source = facts_of(
        [{**record, "provenance": provenance}], tmp_path, DEFAULTS["clean"]["dedup"], DEFAULTS["clean"]["decontaminate"]
    )
    removals, report = judge_filter(source, settings)
    assert [found for _, found in removals] == [{}]
    removals, report = judge_filter(source, {**settings, "keep_ungraded": False})
    assert [entry["reason"] for _, found in removals for entry in found.values()] == ["ungraded"]
    assert report["counts"]["removed_ungraded"] == 1


def test_the_config_schema_names_the_judges_criteria_and_scale():
    schema = yaml.safe_load((ROOT / "config/schema.yaml").read_text())
    judge = schema["properties"]["clean"]["properties"]["judge"]["properties"]
    assert tuple(judge["min_criteria"]["properties"]) == CRITERIA
    score = schema["$defs"]["score"]
    assert (score["minimum"], score["maximum"]) == SCALE


def test_batch_export_counts_the_judge_requests_on_a_line_of_their_own(tmp_path):
    with FakeLLM() as server:
        workflow = Workflow(tmp_path, server)
        workflow.run()
        workflow.overlay = deep_merge(workflow.overlay, JUDGE_ON)
        command = [sys.executable, "-m", "glan.cli", "batch", "export", "out.jsonl"]
        command += ["--configfile", "config/tiny.yaml", "test.yaml"]
        result = subprocess.run(command, cwd=tmp_path, env=workflow.environment(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"judge: {GRADES} request(s)" in result.stdout.splitlines()
    assert "answers: 0 request(s)" in result.stdout.splitlines()


def test_the_slurm_profile_runs_the_judge_in_each_disciplines_job_and_its_steps_in_the_finishing_one(tmp_path):
    with FakeLLM() as server:
        workflow = Workflow(tmp_path, server)
        workflow.overlay = deep_merge(workflow.overlay, JUDGE_ON)
        result = workflow.run("--profile", "profiles/slurm", "-n")
    grouped = result.stdout.count("    rule judge:") + result.stdout.count("    localrule judge:")
    assert grouped == DISCIPLINES  # indented: inside a group job, not a job of its own
    for rule in ("judge_filter", "judge_scores"):
        assert f"    rule {rule}:" in result.stdout or f"    localrule {rule}:" in result.stdout
    assert result.stdout.count("Group job finish") == 1
