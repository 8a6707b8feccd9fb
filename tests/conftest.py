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


RUNS_SNAKEMAKE = ("Workflow(", '"snakemake"', "real_workflow(")


def pytest_collection_modifyitems(items):
    """Mark every test that runs Snakemake (its own code or a fixture it uses builds a Workflow or a snakemake
    command) as `workflow`, so `pytest -m "not workflow"` is the fast tier."""
    for item in items:
        functions = [getattr(item, "function", None)]
        fixtures = getattr(item, "_fixtureinfo", None)
        if fixtures is not None:
            functions += [d.func for defs in fixtures.name2fixturedefs.values() for d in defs]
        sources = [inspect.getsource(f) for f in functions if f is not None]
        if any(mark in source for source in sources for mark in RUNS_SNAKEMAKE):
            item.add_marker(pytest.mark.workflow)
