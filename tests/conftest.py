"""Fixtures: a loopback OpenAI-compatible server, and a copy of the workflow in a temp dir against it."""

from __future__ import annotations

import pytest
from fake_llm import FakeLLM
from helpers import Workflow


@pytest.fixture
def llm_server():
    with FakeLLM() as server:
        yield server


@pytest.fixture
def workflow(tmp_path, llm_server) -> Workflow:
    return Workflow(tmp_path, llm_server)
