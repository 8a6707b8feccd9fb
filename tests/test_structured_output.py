"""llm.structured_output: json_schema (as ever), json_object with the schema, or the schema in the prompt.

Every reply is validated against the schema whatever the mode; JSON in a code fence or with text
around it is recovered. The default keys requests as before the setting existed, so existing caches
and finished jobs stay valid.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from fake_llm import FakeLLM
from helpers import DATASET, FIRST_BUILD, FIRST_BUILD_TOTAL, Workflow

from glan.io import read_jsonl
from glan.llm.backends.openai_compat import chat_body, schema_of
from glan.llm.request import Reply, Request
from glan.llm.validate import reply_error, reply_json

pytestmark = pytest.mark.dataset_only  # `workflow` builds DATASET: the property ends at the dataset

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
REQUEST = Request(model="m", messages=[{"role": "user", "content": "Give a."}], schema=SCHEMA, schema_name="x")


def test_each_mode_asks_for_the_schema_its_own_way_and_the_schema_is_read_back_from_the_body():
    as_schema = chat_body(REQUEST)
    assert as_schema["response_format"]["type"] == "json_schema"
    as_object = chat_body(replace(REQUEST, structured_output="json_object"))
    assert as_object["response_format"] == {"type": "json_object", "schema": SCHEMA}
    in_prompt = chat_body(replace(REQUEST, structured_output="prompt"))
    assert "response_format" not in in_prompt
    assert (
        in_prompt["messages"][-1]["content"].startswith("Give a.\n\n")
        and '"required":["a"]' in in_prompt["messages"][-1]["content"]
    )
    assert [schema_of(body) for body in (as_schema, as_object, in_prompt)] == [SCHEMA] * 3
    assert schema_of(chat_body(replace(REQUEST, schema=None))) is None


@pytest.mark.parametrize(
    "text",
    ['{"a": 1}', '```json\n{"a": 1}\n```', 'Here it is:\n```\n{"a": 1}\n```\nBye.', 'Sure! {"a": 1} Anything else?'],
)
def test_json_wrapped_in_a_fence_or_text_is_recovered_and_validated(text):
    assert reply_json(text) == {"a": 1}
    assert reply_error(REQUEST, Reply(text=text, finish_reason="stop")) is None


def test_a_reply_without_valid_json_inside_is_rejected_whatever_the_wrapping():
    for text in ("no json here", '```json\n{"a": \n```', '{"b": 2}'):
        assert reply_error(REQUEST, Reply(text=text, finish_reason="stop")) is not None


def test_a_build_in_prompt_mode_recovers_the_fenced_json_of_every_reply(workflow):
    workflow.overlay["llm"]["structured_output"] = "prompt"
    workflow.run()
    assert workflow.server.count == FIRST_BUILD_TOTAL
    assert all("response_format" not in body for body in workflow.server.requests)
    assert len(read_jsonl(workflow.path("results/dataset.jsonl"))) == FIRST_BUILD["answers"]


def test_the_default_mode_said_aloud_re_runs_nothing_and_another_mode_re_runs_the_schema_stages(tmp_path):
    with FakeLLM() as server:
        workflow = Workflow(tmp_path, server)
        workflow.targets = DATASET
        workflow.run()
        workflow.overlay["llm"]["structured_output"] = "json_schema"
        assert "Nothing to be done" in workflow.run("-n").stdout
        workflow.overlay["llm"]["structured_output"] = "json_object"
        planned = workflow.run("-n").stdout
        assert all(f"rule {stage}:" in planned for stage in ("subjects", "syllabus", "questions"))


def test_json_object_sends_string_limits_llama_cpps_grammar_can_parse_and_keeps_the_requests_own():
    from glan.llm.backends.openai_compat import GRAMMAR_MAX_LENGTH, chat_body
    from glan.llm.request import Request
    from glan.stages import questions

    request = Request(
        model="m", messages=[{"role": "user", "content": "q"}], schema=questions.SCHEMA, structured_output="json_object"
    )
    sent = chat_body(request)["response_format"]["schema"]["properties"]["question"]["maxLength"]
    assert sent == GRAMMAR_MAX_LENGTH < questions.SCHEMA["properties"]["question"]["maxLength"]
    assert (
        chat_body(Request(**{**request.__dict__, "structured_output": "json_schema"}))["response_format"][
            "json_schema"
        ]["schema"]
        == questions.SCHEMA
    )
