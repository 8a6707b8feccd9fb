"""Fixtures: a loopback OpenAI-compatible server, and a copy of the workflow in a temp dir against it."""

from __future__ import annotations

import pytest
from helpers import Workflow

from glan.fake_server import FakeLLM


@pytest.fixture
def llm_server():
    with FakeLLM() as server:
        yield server


@pytest.fixture
def workflow(tmp_path, llm_server) -> Workflow:
    return Workflow(tmp_path, llm_server)
