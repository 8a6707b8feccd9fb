"""The content-addressed promise, proven in real Snakemake runs against a loopback server.

Three disciplines at the tiny scale: per discipline 2 subject queries, 4 syllabi, 8 questions
and 8 answers, so 22 requests a discipline and 66 in all.
"""

from __future__ import annotations

import shutil
from collections import Counter

import orjson
from helpers import THREE_DISCIPLINES

PER_NODE = {"subjects": 2, "syllabus": 4, "questions": 8, "answers": 8}
OPTICS = "results/nodes/natural-sciences/physics/optics"


def stage_counts(requests: list[dict]) -> Counter:
    names = {"subjects": "subjects", "syllabus": "syllabus", "question": "questions"}
    counts = Counter()
    for body in requests:
        schema = (body.get("response_format") or {}).get("json_schema")
        counts[names[schema["name"]] if schema else "answers"] += 1
    return counts


def changed_files(before: dict, after: dict) -> set[str]:
    return {path for path in after if before.get(path) != after[path]}


def only_stages(paths: set[str], *stages: str) -> bool:
    """Every path is a file of one of these stages (its artifact or its rejects file)."""
    return all(path.rsplit("/", 1)[-1].startswith(stages) for path in paths)


def test_first_build_sends_each_request_once_and_a_second_run_does_nothing(workflow):
    workflow.run()
    assert stage_counts(workflow.server.requests) == Counter({k: 3 * v for k, v in PER_NODE.items()})
    records = [orjson.loads(line) for line in workflow.path("results/dataset.jsonl").read_bytes().splitlines()]
    assert len(records) == 3 * PER_NODE["answers"]
    before = workflow.snapshot("results")

    workflow.server.reset()
    second = workflow.run()
    assert "Nothing to be done" in second.stdout + second.stderr
    assert workflow.server.count == 0
    assert workflow.snapshot("results") == before


def test_adding_a_discipline_runs_only_that_node(workflow):
    workflow.run()
    before = workflow.snapshot()
    workflow.server.reset()

    grown = orjson.loads(orjson.dumps(THREE_DISCIPLINES))
    grown["taxonomy"][1]["children"].append({"name": "Topology", "description": "Shapes up to deformation."})
    workflow.write_taxonomy(grown)
    workflow.run()

    assert stage_counts(workflow.server.requests) == Counter(PER_NODE)
    after = workflow.snapshot()
    assert {path: after[path] for path in before} == before, "other nodes' files changed"
    new = changed_files(before, after)
    assert new and all(path.startswith("results/nodes/mathematics/topology/") for path in new)
    assert len(workflow.path("results/dataset.jsonl").read_bytes().splitlines()) == 4 * PER_NODE["answers"]


def rebuild_after_prompt_edit(workflow, stage: str, old: str, new: str) -> set[str]:
    """Build, edit one prompt, build again; return the files the second build changed."""
    workflow.run()
    before = workflow.snapshot()
    workflow.server.reset()
    prompt = workflow.path(f"prompts/{stage}.yaml")
    prompt.write_text(prompt.read_text().replace(old, new))
    workflow.run()
    return changed_files(before, workflow.snapshot())


def test_editing_the_answers_prompt_resends_only_answers(workflow):
    changed = rebuild_after_prompt_edit(workflow, "answers", "patient teacher", "rigorous teacher")

    assert stage_counts(workflow.server.requests) == Counter({"answers": 3 * PER_NODE["answers"]})
    assert changed and only_stages(changed, "answers")


def test_editing_the_questions_prompt_resends_questions_and_their_answers(workflow):
    changed = rebuild_after_prompt_edit(workflow, "questions", "homework question", "exam question")

    expected = {"questions": 3 * PER_NODE["questions"], "answers": 3 * PER_NODE["answers"]}
    assert stage_counts(workflow.server.requests) == Counter(expected)
    assert changed and only_stages(changed, "questions", "answers")


def test_editing_one_description_rebuilds_only_that_node(workflow):
    workflow.run()
    before = workflow.snapshot()
    workflow.server.reset()

    edited = orjson.loads(orjson.dumps(THREE_DISCIPLINES))
    edited["taxonomy"][0]["children"][0]["children"][0]["description"] = "Geometric and wave optics, lasers."
    workflow.write_taxonomy(edited)
    workflow.run()

    assert stage_counts(workflow.server.requests) == Counter(PER_NODE)
    changed = changed_files(before, workflow.snapshot())
    assert changed and all(path.startswith(OPTICS) for path in changed)


def test_changing_one_stage_setting_reruns_only_that_stage(workflow):
    workflow.run()
    before = workflow.snapshot()
    workflow.server.reset()

    workflow.overlay["stages"] = {"answers": {"sampling": {"temperature": 0.2}}}
    workflow.run()

    assert stage_counts(workflow.server.requests) == Counter({"answers": 3 * PER_NODE["answers"]})
    assert only_stages(changed_files(before, workflow.snapshot()), "answers")
    assert {body["temperature"] for body in workflow.server.requests} == {0.2}


def test_tuning_knobs_rerun_nothing(workflow):
    workflow.run()
    workflow.server.reset()
    workflow.overlay["llm"]["concurrency"] = 3
    result = workflow.run()
    assert "Nothing to be done" in result.stdout + result.stderr
    assert workflow.server.count == 0


def test_a_wiped_results_folder_rebuilds_byte_identical_with_zero_requests(workflow):
    workflow.run()
    dataset = workflow.path("results/dataset.jsonl").read_bytes()
    shutil.rmtree(workflow.path("results"))
    workflow.server.reset()

    workflow.run()

    assert workflow.server.count == 0
    assert workflow.path("results/dataset.jsonl").read_bytes() == dataset


def test_records_carry_provenance_and_the_api_key_is_stored_nowhere(workflow):
    from helpers import API_KEY

    workflow.run()
    record = orjson.loads(workflow.path("results/dataset.jsonl").read_bytes().splitlines()[0])
    assert [m["role"] for m in record["messages"]] == ["user", "assistant"]
    provenance = record["provenance"]
    assert provenance["path"][0] in {"Natural Sciences", "Mathematics"}
    assert set(provenance["keys"]) == {"subjects", "syllabus", "questions", "answers"}
    assert set(provenance["models"].values()) == {"fake-model"}
    assert provenance["strategy"] in {"single-session", "two-sessions"}
    assert provenance["concepts"] and provenance["sessions"] and provenance["subject"]

    assert all(h.get("authorization") == f"Bearer {API_KEY}" for h in workflow.server.headers)
    for folder in ("results", "cache", "logs", ".snakemake", "benchmarks"):
        for path in workflow.path(folder).rglob("*"):
            if path.is_file():
                assert API_KEY.encode() not in path.read_bytes(), f"API key leaked into {path}"
