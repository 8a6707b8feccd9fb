"""The content-addressed promise, proven in real Snakemake runs against a loopback server.

Three disciplines at the tiny scale; tests/helpers.py derives what each stage sends from config/tiny.yaml.
"""

from __future__ import annotations

import shutil

import orjson
import pytest
from helpers import (
    API_KEY,
    DISCIPLINES,
    FIRST_BUILD,
    FIRST_BUILD_TOTAL,
    OPTICS,
    PER_DISCIPLINE,
    all_disciplines,
    changed_files,
    optics,
    stage_counts,
)


def only_stages(paths: set[str], *stages: str) -> bool:
    """Every path is a file of one of these stages (its artifact or its rejects file), or the facts of
    the node's records (rules/clean.smk), which follow any change of them."""
    return all(path.rsplit("/", 1)[-1].startswith((*stages, "facts.", "usage.")) for path in paths)


def test_first_build_sends_each_request_once_and_a_second_run_does_nothing(workflow):
    workflow.run()
    assert stage_counts(workflow.server.requests) == FIRST_BUILD
    assert len(workflow.dataset().splitlines()) == FIRST_BUILD["answers"], "one record per answer"
    before = workflow.snapshot("results")

    workflow.server.reset()
    second = workflow.run()
    assert "Nothing to be done" in second.stdout + second.stderr
    assert workflow.server.count == 0
    assert workflow.snapshot("results") == before


@pytest.mark.built
def test_adding_a_discipline_sends_only_its_requests_and_leaves_the_other_nodes_files_alone(workflow):
    before = workflow.snapshot()
    workflow.server.reset()

    topology = {"name": "Topology", "description": "Shapes up to deformation."}
    workflow.edit_taxonomy(lambda taxonomy: taxonomy[1]["children"].append(topology))
    workflow.run()

    assert stage_counts(workflow.server.requests) == PER_DISCIPLINE
    after = workflow.snapshot()
    assert {path: after[path] for path in before} == before, "other nodes' files changed"
    new = changed_files(before, after)
    assert new and all(path.startswith("results/nodes/mathematics/topology/") for path in new)
    assert len(workflow.dataset().splitlines()) == (DISCIPLINES + 1) * PER_DISCIPLINE["answers"]


def rebuild_after_prompt_edit(workflow, stage: str, old: str, new: str) -> set[str]:
    """In a built workflow, edit one prompt and build again; return the files the second build changed."""
    before = workflow.snapshot()
    workflow.server.reset()
    prompt = workflow.path(f"prompts/{stage}.yaml")
    prompt.write_text(prompt.read_text().replace(old, new))
    workflow.run()
    return changed_files(before, workflow.snapshot())


@pytest.mark.built
def test_editing_the_answers_prompt_resends_only_answers(workflow):
    changed = rebuild_after_prompt_edit(workflow, "answers", "patient teacher", "rigorous teacher")

    assert stage_counts(workflow.server.requests) == all_disciplines("answers")
    assert changed and only_stages(changed, "answers")


@pytest.mark.built
def test_editing_the_questions_prompt_resends_questions_and_their_answers(workflow):
    changed = rebuild_after_prompt_edit(workflow, "questions", "homework question", "exam question")

    assert stage_counts(workflow.server.requests) == all_disciplines("questions", "answers")
    assert changed and only_stages(changed, "questions", "answers")


@pytest.mark.built
def test_editing_one_description_rebuilds_every_stage_of_that_node_and_nothing_else(workflow):
    before = workflow.snapshot()
    workflow.server.reset()

    workflow.edit_taxonomy(lambda taxonomy: optics(taxonomy).update(description="Geometric and wave optics, lasers."))
    workflow.run()

    assert stage_counts(workflow.server.requests) == PER_DISCIPLINE
    changed = changed_files(before, workflow.snapshot())
    assert changed and all(path.startswith(OPTICS) for path in changed)


@pytest.mark.built
def test_changing_one_stage_setting_reruns_only_that_stage_with_the_new_setting(workflow):
    before = workflow.snapshot()
    workflow.server.reset()

    workflow.overlay["stages"] = {"answers": {"sampling": {"temperature": 0.2}}}
    workflow.run()

    assert stage_counts(workflow.server.requests) == all_disciplines("answers")
    changed = changed_files(before, workflow.snapshot())
    assert changed and only_stages(changed, "answers")
    assert {body["temperature"] for body in workflow.server.requests} == {0.2}


@pytest.mark.built
def test_changing_a_tuning_knob_reruns_nothing_and_sends_nothing(workflow):
    workflow.server.reset()
    workflow.overlay["llm"]["concurrency"] = 3
    result = workflow.run()
    assert "Nothing to be done" in result.stdout + result.stderr
    assert workflow.server.count == 0


@pytest.mark.built
def test_a_wiped_results_folder_rebuilds_byte_identical_with_zero_requests(workflow):
    dataset = workflow.dataset()
    shutil.rmtree(workflow.path("results"))
    workflow.server.reset()

    workflow.run()

    assert workflow.server.count == 0
    assert workflow.dataset() == dataset


def test_records_carry_provenance_and_the_api_key_is_sent_but_stored_nowhere(workflow):
    workflow.run()
    record = orjson.loads(workflow.dataset().splitlines()[0])
    assert [m["role"] for m in record["messages"]] == ["user", "assistant"]
    provenance = record["provenance"]
    assert provenance["path"][0] in {"Natural Sciences", "Mathematics"}
    assert set(provenance["keys"]) == {"subjects", "syllabus", "questions", "answers"}
    assert set(provenance["models"].values()) == {"fake-model"}
    assert provenance["strategy"] in {"single-session", "two-sessions"}
    assert provenance["concepts"] and provenance["sessions"] and provenance["subject"]

    sent = [h.get("authorization") for h in workflow.server.headers]
    assert sent == [f"Bearer {API_KEY}"] * FIRST_BUILD_TOTAL
    # Every file the run left in its directory: results, cache, logs, benchmarks, .snakemake and the rest.
    files = [path for path in workflow.dir.rglob("*") if path.is_file()]
    assert {"results", "cache", "logs", ".snakemake"} <= {path.relative_to(workflow.dir).parts[0] for path in files}
    for path in files:
        assert API_KEY.encode() not in path.read_bytes(), f"API key leaked into {path}"
