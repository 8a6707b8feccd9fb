"""Real OpenAI-compatible servers: llama-cpp-python's own server on the shipped model.

It rejects `response_format: json_schema` (with HTTP 500 and a validation message): the preflight
stops a json_schema build (and a closed port, a wrong key, an unknown model) in seconds, with one
message that names the URL and the fix and no traceback, and without the preflight the job fails at
once (no retry) with the server's words.

In `json_object` mode a tiny build goes through it: one request a stage, each artifact valid against
its stage's schema, one record. The server computes one request at a time, on one thread (two spin
against Snakemake's processes on 2 cores: 5-28 tokens/s instead of 45), so the build sends one at a
time. The model is a 270M base model whose question and answer replies are often cut off by the
token cap or empty: each request may be asked 8 times (in 21 builds, seeds 0-20, answers took up to 6
asks, so 5 would have failed one; a job of one request fails on any reject, whatever
llm.max_reject_share), and answers end at a blank line, as the embedded backend's do, since a base
model does not end a chat turn.

Not tested against it: `prompt` mode. This model ignores a schema in the prompt (its replies are
prose), so prompt mode is tested against the loopback server only (tests/test_structured_output.py).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jsonschema
import orjson
import pytest
from helpers import API_KEY, Workflow

from glan.llm.backends.local.model_file import ensure_model
from glan.stages import questions, subjects, syllabus

ALIAS = "gemma-server"
SERVER = "glan.llm.backends.local.server"
# One discipline, the smallest counts: 1 subject with 1 subtopic, 1 session of 1 concept, 1 question,
# so 4 requests and 1 record; replies capped short (answers end at a blank line).
SMALLEST = {
    "subjects": {"queries": 1, "per_query": 1, "subtopics": 1, "sampling": {"max_tokens": 256}},
    "syllabus": {"sessions": 1, "concepts_per_session": 1, "sampling": {"max_tokens": 384}},
    "questions": {"per_subject": 1, "max_concepts": 1, "sampling": {"max_tokens": 128}},
    "answers": {"sampling": {"max_tokens": 128, "stop": ["\n\n"]}},
}
ONE_DISCIPLINE = {"taxonomy": [{"name": "Physics", "children": [{"name": "Optics", "description": "Light."}]}]}
NODE = "results/nodes/physics/optics"


class LlamaServer:
    """llama-cpp-python's server on the shipped GGUF, with an API key, on a free loopback port, started the
    AMX-safe way (`python -m glan.llm.backends.local.server`: llama.cpp's extra buffer types off)."""

    def __init__(self, model: Path, log: Path):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log = log
        command = [sys.executable, "-m", SERVER, "--model", str(model), "--model_alias", ALIAS]
        command += ["--port", str(self.port), "--n_ctx", "4096", "--n_threads", "1", "--api_key", API_KEY]
        self.process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not self.ready():
            assert self.process.poll() is None, f"llama_cpp.server exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "llama_cpp.server did not start in 120 s"
            time.sleep(0.5)

    def ready(self) -> bool:
        request = urllib.request.Request(f"{self.base_url}/models", headers={"Authorization": f"Bearer {API_KEY}"})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return ALIAS in {model["id"] for model in json.load(response)["data"]}
        except OSError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llama")
    server = LlamaServer(ensure_model(folder / "model.gguf"), folder / "server.log")
    yield server
    server.stop()


def real_workflow(directory: Path, server, **llm) -> Workflow:
    workflow = Workflow(directory, server)
    workflow.write_taxonomy(ONE_DISCIPLINE)
    workflow.overlay["llm"] |= {"model": ALIAS, "preflight": True, "concurrency": 2, **llm}
    workflow.overlay["stages"] = SMALLEST
    return workflow


def failed_run(workflow: Workflow, **environment: str) -> tuple[str, float]:
    """A run that must fail: its output, and the seconds it took."""
    command, env = workflow.command()
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=workflow.dir, env={**env, **environment}, capture_output=True, text=True, timeout=300
    )
    seconds = time.monotonic() - started
    assert result.returncode != 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output  # it is in the job's log
    print(f"\nfirst clear error after {seconds:.1f} s:\n{output[-1500:]}")
    return output, seconds


def test_the_server_loads_the_model_without_llama_cpps_extra_buffer_types(llama):
    """What keeps it up on a host that advertises AMX: the patched defaults, read back inside the server
    process, and llama.cpp's own load log, which names a CPU_REPACK buffer when they are on (as
    `python -m llama_cpp.server` loads this model here) and only plain CPU buffers when they are off."""
    log = llama.log.read_text(errors="replace")
    assert "glan: llama.cpp extra buffer types (use_extra_bufts) off" in log
    buffers = [line for line in log.splitlines() if "model buffer size" in line]
    assert buffers and not any("REPACK" in line or "AMX" in line for line in buffers), buffers


def test_json_schema_against_llama_cpp_server_stops_at_preflight_with_the_servers_reason(tmp_path, llama):
    output, seconds = failed_run(real_workflow(tmp_path, llama))
    assert "body.response_format.type: Input should be 'text' or 'json_object'" in output
    assert "llm.structured_output: json_object" in output
    assert not (tmp_path / NODE / "subjects.json").exists()


def test_a_wrong_key_stops_at_preflight_naming_the_key(tmp_path, llama):
    output, _ = failed_run(real_workflow(tmp_path, llama), OPENAI_API_KEY="sk-wrong")
    assert f"preflight: {llama.base_url} answered HTTP 401: Invalid API key" in output and "OPENAI_API_KEY" in output


def test_an_unknown_model_that_fails_its_probe_stops_at_preflight_naming_the_served_ones(tmp_path, llama):
    """This server answers any model name with its own, so only a failed probe says a name is wrong: the
    message then lists what the server names."""
    output, _ = failed_run(real_workflow(tmp_path, llama, model="gpt-9"))
    assert "request for 'gpt-9' failed" in output and f"The server lists '{ALIAS}'" in output and "llm.model" in output


def test_a_closed_port_stops_at_preflight_naming_the_url(tmp_path, llama):
    closed = f"http://127.0.0.1:{free_port()}/v1"
    output, seconds = failed_run(real_workflow(tmp_path, llama), OPENAI_BASE_URL=closed)
    assert f"nothing answers at {closed}" in output and "OPENAI_BASE_URL" in output


def test_without_preflight_a_permanent_error_fails_its_job_at_once_in_one_paragraph(tmp_path, llama):
    """HTTP 500 with a validation message is not retried; Snakemake's output gets the server's words
    and what to change, the job's log the traceback."""
    output, _ = failed_run(real_workflow(tmp_path, llama, preflight=False))
    assert f"subjects failed for {NODE}/subjects.json:" in output
    assert "Input should be 'text' or 'json_object'" in output and "llm.structured_output: json_object" in output
    log = (tmp_path / "logs/physics/optics/subjects.log").read_text()
    assert "Traceback" in log and "retrying" not in log


def test_a_tiny_json_object_build_through_it_yields_valid_artifacts_and_the_whole_dataset(tmp_path, llama):
    workflow = real_workflow(tmp_path, llama, structured_output="json_object", concurrency=1, max_attempts=8)
    started = time.monotonic()
    workflow.run()
    seconds = time.monotonic() - started

    node = workflow.path(NODE)
    (subject,) = orjson.loads((node / "subjects.json").read_bytes())["subjects"]
    listed = {k: v for k, v in subject.items() if k != "keys"}
    jsonschema.validate({"subjects": [listed]}, subjects.schema(SMALLEST["subjects"]))
    (course,) = orjson.loads((node / "syllabus.json").read_bytes())["subjects"]
    jsonschema.validate({"sessions": course["sessions"]}, syllabus.schema(SMALLEST["syllabus"]))
    (question,) = map(orjson.loads, (node / "questions.jsonl").read_bytes().splitlines())
    jsonschema.validate({"question": question["question"]}, questions.SCHEMA)
    (record,) = map(orjson.loads, workflow.dataset().splitlines())
    asked, answered = record["messages"]
    assert asked == {"role": "user", "content": question["question"]}
    assert answered["role"] == "assistant" and answered["content"].strip()
    print(f"\ntiny json_object build through llama-cpp-python's server: {seconds:.1f} s, 1 record")
