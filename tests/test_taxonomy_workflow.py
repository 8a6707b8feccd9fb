"""The taxonomy loop in real Snakemake runs against the loopback server: propose, review, customise, plan.

Three disciplines at the tiny scale, as in test_incremental: 2 subject queries, 4 syllabi,
8 questions and 8 answers per discipline.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import orjson
import yaml
from helpers import API_KEY, THREE_DISCIPLINES
from test_incremental import OPTICS, PER_NODE, changed_files, stage_counts

from glan.taxonomy import iter_nodes, load_taxonomy

GENETICS = "results/nodes/natural-sciences/biology/genetics"


def glan(workflow, *args: str) -> subprocess.CompletedProcess:
    """The `glan` command in the workflow copy, with the same config overlays and endpoint as its runs."""
    (workflow.dir / "test.yaml").write_text(yaml.safe_dump(workflow.overlay))
    env = {**os.environ, "OPENAI_BASE_URL": workflow.server.base_url, "OPENAI_API_KEY": API_KEY}
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


def edit_taxonomy(workflow, change) -> None:
    document = orjson.loads(orjson.dumps(THREE_DISCIPLINES))
    change(document["taxonomy"])
    workflow.write_taxonomy(document)


def optics(taxonomy: list) -> dict:
    return taxonomy[0]["children"][0]["children"][0]


def genetics(taxonomy: list) -> dict:
    return taxonomy[0]["children"][1]["children"][0]


def test_a_proposal_from_several_prompts_is_reviewed_into_the_taxonomy_and_then_costs_nothing(workflow):
    workflow.overlay["propose"] = {"scope": "natural-sciences", "prompts": 2, "per_request": 3}
    workflow.run("--", "results/taxonomy/proposed.yaml")
    # Two levels below a field: sub-fields (1 node x 2 prompts), then disciplines under the 2 existing and
    # 6 proposed sub-fields (8 x 2); the fake server names every node differently, so nothing merges.
    assert workflow.server.count == 2 + 8 * 2
    assert all(body["response_format"]["json_schema"]["name"] == "taxonomy" for body in workflow.server.requests)
    assert len({body["messages"][-1]["content"].split("\n")[0] for body in workflow.server.requests}) == 2

    proposal = yaml.safe_load(workflow.path("results/taxonomy/proposed.yaml").read_text())
    (field,) = proposal["taxonomy"]
    assert (field["id"], field["status"]) == ("natural-sciences", "existing")
    statuses = Counter(node["status"] for node in iter_nodes_of(field["children"]))
    assert statuses == Counter(existing=4, new=6 + 8 * 6)
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
    assert len(list(iter_nodes(after))) == len(list(iter_nodes_of(proposal["taxonomy"]))) + 2

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
    assert planned_sends(before) == Counter({k: 3 * v for k, v in PER_NODE.items()})
    assert before["totals"]["subjects"]["estimated"] == 0 and before["totals"]["answers"]["estimated"] == 24
    assert all(node["changes"] == ["new: never built"] for node in before["nodes"].values())

    workflow.run()
    assert stage_counts(workflow.server.requests) == planned_sends(before)

    after = plan(workflow)
    assert after["send"] == 0 and all(not node["changes"] for node in after["nodes"].values())
    assert after["totals"]["answers"]["cached"] == 3 * PER_NODE["answers"]
    text = glan(workflow, "plan").stdout
    assert "A build would send 0 request(s)" in text and "Changed since the last build: 0 node(s)" in text
    tree = glan(workflow, "inspect").stdout
    assert "Optics  (natural-sciences/physics/optics; selected; subjects 4 sessions 12 questions 8 answers 8)" in tree
    assert "valid: 2 fields, 2 sub-fields, 3 disciplines" in tree


def test_an_override_rebuilds_only_its_node_and_the_plan_says_so_first(workflow):
    workflow.run()
    before = workflow.snapshot()
    workflow.server.reset()

    # More questions for Optics: its 8 questions and answers stay cached, 4 of each are new.
    edit_taxonomy(workflow, lambda t: optics(t).update(stages={"questions": {"per_subject": 3}}))
    expected = plan(workflow)
    changes = {node: doc["changes"] for node, doc in expected["nodes"].items() if doc["changes"]}
    assert list(changes) == ["natural-sciences/physics/optics"]
    assert "stages added" in changes["natural-sciences/physics/optics"][0]
    workflow.run()
    assert stage_counts(workflow.server.requests) == planned_sends(expected) == Counter(questions=4, answers=4)
    changed = changed_files(before, workflow.snapshot())
    assert changed and all(path.startswith(OPTICS) for path in changed)
    assert len(workflow.path(OPTICS + "/answers.jsonl").read_bytes().splitlines()) == 12

    # Instructions for Genetics: every stage of that node asks anew, with the instructions in each prompt.
    before = workflow.snapshot()
    workflow.server.reset()
    edit_taxonomy(
        workflow,
        lambda t: (
            optics(t).update(stages={"questions": {"per_subject": 3}}),
            genetics(t).update(instructions="Write everything in French."),
        ),
    )
    expected = plan(workflow)
    workflow.run()
    assert stage_counts(workflow.server.requests) == planned_sends(expected) == Counter(PER_NODE)
    assert all("Write everything in French." in orjson.dumps(b["messages"]).decode() for b in workflow.server.requests)
    changed = changed_files(before, workflow.snapshot())
    assert changed and all(path.startswith(GENETICS) for path in changed)
    record = orjson.loads(workflow.path(GENETICS + "/answers.jsonl").read_bytes().splitlines()[0])
    assert record["provenance"]["custom"] == {"instructions": "Write everything in French."}


def test_pinned_subjects_send_no_subjects_request(workflow):
    pinned = [{"name": "Geometric Optics", "subtopics": ["Lenses", "Mirrors"]}, "Wave Optics", "Lasers"]
    edit_taxonomy(workflow, lambda t: optics(t).update(subjects=pinned))
    expected = plan(workflow)
    assert expected["nodes"]["natural-sciences/physics/optics"]["stages"]["subjects"]["send"] == 0
    workflow.run()

    sent = stage_counts(workflow.server.requests)
    assert sent == planned_sends(expected)
    assert sent["subjects"] == 2 * 2 and sent["syllabus"] == 2 * 4 + 3
    subject_prompts = [
        orjson.dumps(b["messages"]).decode()
        for b in workflow.server.requests
        if (b.get("response_format") or {}).get("json_schema", {}).get("name") == "subjects"
    ]
    assert subject_prompts and not any("Optics" in prompt for prompt in subject_prompts)
    subjects = orjson.loads(workflow.path(OPTICS + "/subjects.json").read_bytes())
    assert [s["name"] for s in subjects["subjects"]] == ["Geometric Optics", "Wave Optics", "Lasers"]
    assert subjects["models"] == {"subjects": "pinned"}
