"""The loopback server behaves as real servers do where the product must cope: a fault on any request
(the first, the model list), a model list apart from the models answered, a wrong key answered 400.

Spoken to over plain HTTP, not through the product's client: these are facts about the server."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

from fake_llm import FakeLLM

KEY = "sk-right"
CHAT = {"model": "mock-model", "messages": [{"role": "user", "content": "Say hi."}]}


def call(server: FakeLLM, method: str, path: str, body: dict | None = None, key: str = KEY) -> tuple[int, dict]:
    """Status and JSON document of one request; status 0 for a dropped connection or a reply too slow."""
    url = urlsplit(server.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=0.5)
    payload = None if body is None else json.dumps(body)
    try:
        connection.request(method, url.path + path, payload, {"Authorization": f"Bearer {key}"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    except (OSError, http.client.HTTPException):
        return 0, {}
    finally:
        connection.close()


def test_any_request_may_fail_the_first_and_the_model_list_too_and_the_same_request_may_then_pass():
    with FakeLLM(faults=1.0, slow_seconds=2.0) as server:
        assert call(server, "POST", "/chat/completions", CHAT)[0] != 200
        assert call(server, "GET", "/models")[0] != 200
    with FakeLLM(faults=0.5, slow_seconds=2.0, seed=3) as server:
        statuses = [call(server, "POST", "/chat/completions", CHAT)[0] for _ in range(20)]
    assert 200 in statuses and any(status != 200 for status in statuses), statuses


def test_the_model_list_is_apart_from_the_models_answered():
    with FakeLLM(listed_models=["mock-model:latest"]) as server:
        status, models = call(server, "GET", "/models")
        assert status == 200 and [model["id"] for model in models["data"]] == ["mock-model:latest"]
        status, reply = call(server, "POST", "/chat/completions", CHAT)
        assert status == 200 and reply["model"] == "mock-model"
    with FakeLLM(answered_models=["mock-model"]) as server:
        assert [model["id"] for model in call(server, "GET", "/models")[1]["data"]] == ["mock-model"]
        status, error = call(server, "POST", "/chat/completions", {**CHAT, "model": "gpt-9"})
        assert status == 404 and error["error"]["code"] == "model_not_found" and "gpt-9" in error["error"]["message"]


def test_a_wrong_key_is_answered_as_configured_on_every_endpoint_and_any_key_goes_without_one():
    with FakeLLM(api_key=KEY) as server:
        status, error = call(server, "POST", "/chat/completions", CHAT, key="sk-wrong")
        assert status == 401 and error["error"]["code"] == "invalid_api_key"
        assert call(server, "POST", "/chat/completions", CHAT)[0] == 200
    with FakeLLM(api_key=KEY, wrong_key_status=400, wrong_key_message="No connected db.") as server:
        for method, path in (("GET", "/models"), ("POST", "/chat/completions"), ("GET", "/batches")):
            status, error = call(server, method, path, CHAT if method == "POST" else None, key="sk-wrong")
            assert (status, error["error"]["message"]) == (400, "No connected db."), (method, path)
        assert call(server, "GET", "/models")[0] == 200
    with FakeLLM() as server:
        assert call(server, "POST", "/chat/completions", CHAT, key="sk-anything")[0] == 200


def test_a_strict_json_schema_openai_would_refuse_is_refused_with_openais_words():
    closed = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    nested = {**closed, "additionalProperties": False, "properties": {"a": closed}}

    def response_format(schema: dict, name: str = "reply", strict: bool = True) -> dict:
        return {
            **CHAT,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": strict},
            },
        }

    with FakeLLM() as server:
        status, error = call(server, "POST", "/chat/completions", response_format(nested))
        assert status == 400 and "context=('properties', 'a')" in error["error"]["message"]
        assert "additionalProperties" in error["error"]["message"]
        open_required = {**closed, "additionalProperties": False, "required": []}
        assert (
            "Missing 'a'"
            in call(server, "POST", "/chat/completions", response_format(open_required))[1]["error"]["message"]
        )
        assert call(server, "POST", "/chat/completions", response_format(closed, name="a reply"))[0] == 400
        assert call(server, "POST", "/chat/completions", response_format(nested, strict=False))[0] == 200
        status, reply = call(
            server, "POST", "/chat/completions", response_format({**closed, "additionalProperties": False})
        )
        assert status == 200 and set(json.loads(reply["choices"][0]["message"]["content"])) == {"a"}
