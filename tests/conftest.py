"""Fixtures: a loopback OpenAI-compatible server, and a copy of the workflow in a temp dir against it."""

from __future__ import annotations

import inspect

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


def pytest_collection_modifyitems(items):
    """Mark every test that runs Snakemake (the `workflow` fixture, or a Workflow or snakemake command of its
    own) as `workflow`, so `pytest -m "not workflow"` is the fast tier."""
    for item in items:
        function = getattr(item, "function", None)
        source = inspect.getsource(function) if function is not None else ""
        if "workflow" in getattr(item, "fixturenames", ()) or "Workflow(" in source or '"snakemake"' in source:
            item.add_marker(pytest.mark.workflow)
