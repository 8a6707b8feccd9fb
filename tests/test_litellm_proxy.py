"""LiteLLM's proxy, a gateway many teams put in front of their models and that nobody here wrote, in
front of the loopback server: a tiny build goes through it, and the preflight stops a wrong key, an
unknown model and a closed upstream in seconds, each with a message about what is wrong.

The proxy (`litellm[proxy]`, pinned in .ci/install-litellm) lives in a virtualenv of its own, as it pins
openai 2.x; the fixture runs that script, which installs it when it is missing. Its master key is the
key the workflow sends; it reaches the loopback server with a key of its own. Without a database it
answers a wrong key with HTTP 400 `No connected db.`, an auth failure that does not look like one.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from fake_llm import FakeLLM
from helpers import API_KEY, DATASET, FIRST_BUILD, OPTICS, ROOT, Workflow, stage_counts
from test_endpoints import failed_run, free_port

pytestmark = pytest.mark.workflow  # every test runs Snakemake (through `through`, which conftest cannot see)
MODEL = "fake-model"  # what Workflow builds with
CLOSED = "closed-model"  # routed to a loopback server that has stopped
WILD = "wild/*"  # a wildcard route: it answers wild/<any name>, and lists OpenAI's model names under it
UPSTREAM_KEY = "sk-upstream-of-the-proxy"
QUICK_RETRIES = {"attempts": 2, "base_delay": 0.1, "max_delay": 0.2}  # the probe's 5xx is retried as any request's


class LiteLLMProxy:
    """`litellm --config` with one route a model name, and a master key, on a free loopback port."""

    def __init__(self, upstreams: dict[str, str], folder: Path):
        install = subprocess.run([str(ROOT / ".ci/install-litellm")], capture_output=True, text=True)
        assert install.returncode == 0, f".ci/install-litellm failed:\n{install.stderr[-3000:]}"
        routes = [route(name, url) for name, url in upstreams.items()]
        config = folder / "litellm.yaml"
        config.write_text(yaml.safe_dump({"model_list": routes, "general_settings": {"master_key": API_KEY}}))
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log = folder / "litellm.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        environment["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no fetch of its price map at start
        command = [install.stdout.split()[-1], "--config", str(config), "--port", str(self.port)]
        started = time.monotonic()
        self.process = subprocess.Popen(command, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, env=environment)
        while not self.ready(set(upstreams)):
            assert self.process.poll() is None, f"litellm exited: {self.log.read_text()[-3000:]}"
            assert time.monotonic() < started + 120, "litellm did not start in 120 s"
            time.sleep(0.3)
        self.start_seconds = time.monotonic() - started

    def ready(self, names: set[str]) -> bool:
        request = urllib.request.Request(f"{self.base_url}/models", headers={"Authorization": f"Bearer {API_KEY}"})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return names - {WILD} <= {model["id"] for model in json.load(response)["data"]}
        except OSError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def route(name: str, url: str) -> dict:
    """The proxy's route of a model name to the OpenAI-compatible server at `url`, with the proxy's key."""
    upstream = "*" if name == WILD else name
    params = {"model": f"openai/{upstream}", "api_base": url, "api_key": UPSTREAM_KEY}
    return {"model_name": name, "litellm_params": params}


@pytest.fixture(scope="module")
def upstream():
    with FakeLLM(api_key=UPSTREAM_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def proxy(tmp_path_factory, upstream):
    with FakeLLM() as stopped:
        closed = stopped.base_url  # the port closes as the block ends
    upstreams = {MODEL: upstream.base_url, CLOSED: closed, WILD: upstream.base_url}
    proxy = LiteLLMProxy(upstreams, tmp_path_factory.mktemp("litellm"))
    print(f"\nLiteLLM's proxy answered after {proxy.start_seconds:.1f} s")
    yield proxy
    proxy.stop()


def through(directory: Path, proxy: LiteLLMProxy, **llm) -> Workflow:
    workflow = Workflow(directory, proxy)  # any server with a base_url
    workflow.targets = DATASET
    workflow.overlay["llm"] |= llm
    return workflow


def test_a_tiny_build_through_the_proxy_sends_each_request_upstream_once_with_the_proxys_own_key(
    tmp_path, proxy, upstream
):
    upstream.reset()
    workflow = through(tmp_path, proxy)
    workflow.run()
    assert stage_counts(upstream.requests) == FIRST_BUILD
    assert {headers["authorization"] for headers in upstream.headers} == {f"Bearer {UPSTREAM_KEY}"}
    assert len(workflow.dataset().splitlines()) == FIRST_BUILD["answers"]


def test_a_model_its_wildcard_route_answers_but_does_not_list_builds_after_one_warning(tmp_path, proxy, upstream):
    """As Ollama's `llama3.2` listed as `llama3.2:latest`: only a request's answer says a name is served."""
    workflow = through(tmp_path, proxy, preflight=True, model="wild/fake-model")
    workflow.overlay["select"] = [OPTICS.removeprefix("results/nodes/")]
    upstream.reset()
    result = workflow.run()
    warnings = {line for line in (result.stdout + result.stderr).splitlines() if "does not list" in line}
    (warning,) = warnings  # one warning (Snakemake's output has it once a mode the build sends in)
    assert "'wild/fake-model'" in warning
    assert {body["model"] for body in upstream.requests} == {MODEL}
    assert workflow.path(f"{OPTICS}/answers.jsonl").read_bytes()


def test_a_wrong_key_stops_at_preflight_naming_the_key_or_quoting_the_proxy_not_advising_a_mode(
    tmp_path, proxy, upstream
):
    upstream.reset()
    output, _ = failed_run(through(tmp_path, proxy, preflight=True), OPENAI_API_KEY="sk-wrong")
    assert "OPENAI_API_KEY" in output or "No connected db." in output
    assert "structured_output" not in output
    assert upstream.count == 0 and not workflow_started(tmp_path)


def test_an_unknown_model_stops_at_preflight_naming_it_and_the_models_the_proxy_serves(tmp_path, proxy):
    output, _ = failed_run(through(tmp_path, proxy, preflight=True, model="gpt-9"))
    assert "gpt-9" in output and MODEL in output
    assert not workflow_started(tmp_path)


def test_a_closed_upstream_stops_at_preflight_naming_the_model_and_the_connection_error(tmp_path, proxy):
    output, _ = failed_run(through(tmp_path, proxy, preflight=True, model=CLOSED, retry=QUICK_RETRIES))
    assert CLOSED in output and "Connection error" in output
    assert "structured_output" not in output
    assert not workflow_started(tmp_path)


def workflow_started(directory: Path) -> bool:
    """Whether any stage wrote an artifact (the preflight runs before the first job)."""
    return any(directory.joinpath("results/nodes").rglob("subjects.json"))
