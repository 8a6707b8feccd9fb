"""The preflight against servers as users meet them: flaky, listing other names than they answer, and
answering a wrong key with a 400. It stops only what cannot work, and its advice is about the error.

The loopback server here fails any request, the model list and the first probe included."""

from __future__ import annotations

import pytest
from fake_llm import FakeLLM
from helpers import API_KEY, DATASET, DEFAULTS, Workflow

from glan.llm.preflight import PreflightFailed, Target, preflight

MODES = (None, "json_schema", "json_object", "prompt")
QUICK_RETRIES = {"attempts": 8, "base_delay": 0.01, "max_delay": 0.05, "max_total": 30}


def settings(**retry) -> dict:
    return {**DEFAULTS["llm"], "retry": {**QUICK_RETRIES, **retry}}


def targets(model: str = "mock-model") -> list[Target]:
    return [Target(model, mode, ("answers" if mode is None else "subjects",)) for mode in MODES]


@pytest.fixture
def against(monkeypatch):
    def point(server: FakeLLM, key: str = API_KEY) -> FakeLLM:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", key)
        return server

    return point


def test_a_server_failing_30_percent_of_requests_passes_the_preflight_every_time(against):
    injected = 0
    for seed in range(10):  # each server draws other faults
        with FakeLLM(faults=0.3, seed=seed) as server:
            against(server)
            assert preflight(targets(), settings()) == []
            injected += len(server.faults_injected)
    assert injected > 0  # the retries were needed, not luck


class AlwaysFailing(FakeLLM):
    FAULTS = ("429", "500", "503")


def test_transient_errors_stop_the_preflight_only_when_the_retries_are_spent_and_say_so(against):
    with AlwaysFailing(faults=1.0) as server:
        against(server)
        with pytest.raises(PreflightFailed) as failed:
            preflight(targets()[:1], settings(attempts=3))
    message = str(failed.value)
    assert "gave up after 3 attempts in" in message and "llm.retry" in message
    assert "structured_output" not in message


def test_a_model_the_server_answers_but_does_not_list_goes_on_with_one_warning(against):
    with FakeLLM(listed_models=["mock-model:latest"]) as server:
        against(server)
        warnings = preflight(targets(), settings())
    (warning,) = warnings  # one line, however many modes the model is asked in
    assert "does not list the model 'mock-model'" in warning and "'mock-model:latest'" in warning


def test_a_model_the_server_does_not_answer_is_refused_naming_the_models_it_lists(against):
    with FakeLLM(listed_models=["llama3.2:latest"], answered_models=["llama3.2:latest"]) as server:
        against(server)
        with pytest.raises(PreflightFailed) as failed:
            preflight(targets("mock-model")[:1], settings())
    message = str(failed.value)
    assert "'mock-model'" in message and "'llama3.2:latest'" in message and "stages.answers.llm.model" in message
    assert "structured_output" not in message


def test_a_wrong_key_answered_with_a_400_gets_the_servers_words_and_the_key_not_a_mode(against):
    with FakeLLM(api_key=API_KEY, wrong_key_status=400, wrong_key_message="No connected db.") as server:
        against(server, key="sk-wrong")
        with pytest.raises(PreflightFailed) as failed:
            preflight(targets(), settings())
    message = str(failed.value)
    assert "HTTP 400: No connected db." in message and "OPENAI_API_KEY" in message
    assert "structured_output" not in message


def test_modes_are_named_in_words(against):
    with FakeLLM(api_key=API_KEY, wrong_key_status=400, wrong_key_message="No connected db.") as server:
        against(server, key="sk-wrong")
        for target, words in zip(targets(), ("a free-text request", "a json_schema request"), strict=False):
            with pytest.raises(PreflightFailed) as failed:
                preflight([target], settings())
            assert words in str(failed.value) and "None" not in str(failed.value)


@pytest.mark.workflow
def test_a_tiny_build_against_a_flaky_server_and_a_server_listing_other_names_completes(tmp_path):
    with FakeLLM(faults=0.3, listed_models=["fake-model:latest"]) as server:
        workflow = Workflow(tmp_path, server)
        workflow.targets = DATASET
        workflow.overlay["llm"] |= {"preflight": True, "retry": QUICK_RETRIES}
        result = workflow.run()
    output = result.stdout + result.stderr
    assert workflow.path("results/dataset.jsonl").exists()
    warnings = [line for line in output.splitlines() if "preflight:" in line]
    (warning,) = warnings  # one line for the model, asked in json_schema and as free text
    assert "does not list the model 'fake-model'" in warning, output
