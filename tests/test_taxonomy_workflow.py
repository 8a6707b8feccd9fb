"""The taxonomy loop in real Snakemake runs against the loopback server: propose, review, customise, plan.

Three disciplines at the tiny scale, as in test_incremental; tests/helpers.py derives what each
stage sends from config/tiny.yaml.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import orjson
import pytest
import yaml
from helpers import (
    DISCIPLINES,
    FIRST_BUILD,
    GENETICS,
    OPTICS,
    PER_DISCIPLINE,
    QUESTIONS_PER_DISCIPLINE,
    QUESTIONS_PER_SUBJECT,
    SESSIONS_PER_SYLLABUS,
    SUBJECTS_PER_DISCIPLINE,
    changed_files,
    genetics,
    optics,
    stage_counts,
)

from glan.taxonomy import iter_nodes, load_taxonomy


def glan(workflow, *args: str) -> subprocess.CompletedProcess:
    """The `glan` command in the workflow copy, with the same config overlays and endpoint as its runs."""
    env = workflow.environment()
    command = [sys.executable, "-m", "glan.cli", *args]
    if args[0] in ("plan", "inspect"):
        command += ["--configfile", "config/tiny.yaml", "test.yaml"]
    result = subprocess.run(command, cwd=workflow.dir, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def plan(workflow) -> dict:
    return orjson.loads(glan(workflow, "plan", "--json").stdout)


def planned_sends(document: dict) -> Counter:
    return Counter({stage: total["send"] for stage, total in document["totals"].items() if total["send"]})


def test_a_proposal_from_several_prompts_is_reviewed_into_the_taxonomy_and_then_costs_nothing(workflow):
    prompts, per_request = 2, 3
    workflow.overlay["propose"] = {"scope": "natural-sciences", "prompts": prompts, "per_request": per_request}
    workflow.run("--", "results/taxonomy/proposed.yaml")
    # Every answer lists per_request children and the fake server names every node differently, so nothing
    # merges: each node asked gets prompts x per_request new children.
    proposed = prompts * per_request
    existing = {"sub-fields": 2, "disciplines": 2}  # Physics and Biology; Optics and Genetics
    sub_fields = existing["sub-fields"] + proposed
    # Two levels below a field: its sub-fields (the field asked once per prompt), then the disciplines of
    # every sub-field, existing and proposed (each asked once per prompt).
    assert workflow.server.count == prompts + sub_fields * prompts
    assert all(body["response_format"]["json_schema"]["name"] == "taxonomy" for body in workflow.server.requests)
    assert len({body["messages"][-1]["content"].split("\n")[0] for body in workflow.server.requests}) == prompts

    proposal = yaml.safe_load(workflow.path("results/taxonomy/proposed.yaml").read_text())
    (field,) = proposal["taxonomy"]
    assert (field["id"], field["status"]) == ("natural-sciences", "existing")
    statuses = Counter(node["status"] for node in iter_nodes_of(field["children"]))
    assert statuses == Counter(existing=sum(existing.values()), new=proposed + sub_fields * proposed)
    physics = field["children"][0]
    assert physics["children"][0] == {
        "name": "Optics",
        "id": "natural-sciences/physics/optics",
        "status": "existing",
        "description": "Light and its behaviour.",
    }
    assert all(child["votes"] == 1 and child["description"] for child in physics["children"][1:])

    glan(workflow, "review", "--all")
    after = load_taxonomy(workflow.path("taxonomy.yaml"))
    outside_the_scope = 2  # Mathematics and Number Theory
    assert len(list(iter_nodes(after))) == len(list(iter_nodes_of(proposal["taxonomy"]))) + outside_the_scope

    workflow.server.reset()
    workflow.run("--", "results/taxonomy/proposed.yaml")
    assert workflow.server.count == 0, "accepting a proposal must not change the requests that made it"
    again = yaml.safe_load(workflow.path("results/taxonomy/proposed.yaml").read_text())
    assert {node["status"] for node in iter_nodes_of(again["taxonomy"])} == {"existing"}


def iter_nodes_of(items: list):
    for item in items:
        yield item
        yield from iter_nodes_of(item.get("children", []))


def test_the_plan_counts_what_a_fresh_build_then_sends_and_nothing_after_it(workflow):
    before = plan(workflow)
    assert planned_sends(before) == FIRST_BUILD
    # Only the subject queries are known before any reply: every later request is counted from the settings.
    estimated = {stage: total["estimated"] for stage, total in before["totals"].items()}
    assert estimated == {**FIRST_BUILD, "subjects": 0}
    assert all(node["changes"] == ["new: never built"] for node in before["nodes"].values())

    workflow.run()
    assert stage_counts(workflow.server.requests) == planned_sends(before)

    after = plan(workflow)
    assert after["send"] == 0 and all(not node["changes"] for node in after["nodes"].values())
    assert after["totals"]["answers"]["cached"] == FIRST_BUILD["answers"]
    text = glan(workflow, "plan").stdout
    assert "A build would send 0 request(s)" in text and "Changed since the last build: 0 node(s)" in text
    tree = glan(workflow, "inspect").stdout
    sessions = SUBJECTS_PER_DISCIPLINE * SESSIONS_PER_SYLLABUS
    built = f"subjects {SUBJECTS_PER_DISCIPLINE} sessions {sessions} questions {QUESTIONS_PER_DISCIPLINE}"
    assert f"Optics  (natural-sciences/physics/optics; selected; {built} answers {QUESTIONS_PER_DISCIPLINE})" in tree
    assert f"valid: 2 fields, 2 sub-fields, {DISCIPLINES} disciplines" in tree


@pytest.mark.built
def test_an_override_rebuilds_only_its_node_and_the_plan_says_so_first(workflow):
    before = workflow.snapshot()
    workflow.server.reset()

    # One more question per subject for Optics: its earlier questions and answers stay cached,
    # and one question and its answer per subject are new.
    more = {"questions": {"per_subject": QUESTIONS_PER_SUBJECT + 1}}
    workflow.edit_taxonomy(lambda t: optics(t).update(stages=more))
    expected = plan(workflow)
    changes = {node: doc["changes"] for node, doc in expected["nodes"].items() if doc["changes"]}
    assert list(changes) == ["natural-sciences/physics/optics"]
    assert "stages added" in changes["natural-sciences/physics/optics"][0]
    workflow.run()
    new = SUBJECTS_PER_DISCIPLINE
    assert stage_counts(workflow.server.requests) == planned_sends(expected) == Counter(questions=new, answers=new)
    changed = changed_files(before, workflow.snapshot())
    assert changed and all(path.startswith(OPTICS) for path in changed)
    answers = workflow.path(OPTICS + "/answers.jsonl").read_bytes().splitlines()
    assert len(answers) == QUESTIONS_PER_DISCIPLINE + new

    # Instructions for Genetics: every stage of that node asks anew, with the instructions in each prompt.
    before = workflow.snapshot()
    workflow.server.reset()
    workflow.edit_taxonomy(
        lambda t: (optics(t).update(stages=more), genetics(t).update(instructions="Write everything in French."))
    )
    expected = plan(workflow)
    workflow.run()
    assert stage_counts(workflow.server.requests) == planned_sends(expected) == PER_DISCIPLINE
    assert all("Write everything in French." in orjson.dumps(b["messages"]).decode() for b in workflow.server.requests)
    changed = changed_files(before, workflow.snapshot())
    assert changed and all(path.startswith(GENETICS) for path in changed)
    record = orjson.loads(workflow.path(GENETICS + "/answers.jsonl").read_bytes().splitlines()[0])
    assert record["provenance"]["custom"] == {"instructions": "Write everything in French."}


def test_pinned_subjects_send_no_subjects_request(workflow):
    pinned = [{"name": "Geometric Optics", "subtopics": ["Lenses", "Mirrors"]}, "Wave Optics", "Lasers"]
    workflow.edit_taxonomy(lambda t: optics(t).update(subjects=pinned))
    expected = plan(workflow)
    assert expected["nodes"]["natural-sciences/physics/optics"]["stages"]["subjects"]["send"] == 0
    workflow.run()

    sent = stage_counts(workflow.server.requests)
    assert sent == planned_sends(expected)
    others = DISCIPLINES - 1
    assert sent["subjects"] == others * PER_DISCIPLINE["subjects"]
    assert sent["syllabus"] == others * PER_DISCIPLINE["syllabus"] + len(pinned), "one syllabus per pinned subject"
    subject_prompts = [
        orjson.dumps(b["messages"]).decode()
        for b in workflow.server.requests
        if (b.get("response_format") or {}).get("json_schema", {}).get("name") == "subjects"
    ]
    assert subject_prompts and not any("Optics" in prompt for prompt in subject_prompts)
    subjects = orjson.loads(workflow.path(OPTICS + "/subjects.json").read_bytes())
    assert [s["name"] for s in subjects["subjects"]] == ["Geometric Optics", "Wave Optics", "Lasers"]
    assert subjects["models"] == {"subjects": "pinned"}
