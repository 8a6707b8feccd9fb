"""Fixtures: a loopback OpenAI-compatible server, and a copy of the workflow in a temp dir against it."""

from __future__ import annotations

import inspect
import os

import pytest
from fake_llm import FakeLLM
from helpers import Build, Workflow, shared_build


@pytest.fixture
def llm_server():
    with FakeLLM() as server:
        yield server


@pytest.fixture
def workflow(request, tmp_path, llm_server) -> Workflow:
    """A copy of the workflow against `llm_server`. In a test marked `built`, as it is after its first
    `workflow.run()` (a copy of `first_build`, against a server that has received nothing yet), without
    paying for that build again."""
    if request.node.get_closest_marker("built") is None:
        return Workflow(tmp_path, llm_server)
    return Workflow(tmp_path, llm_server, built=request.getfixturevalue("first_build").dir)


@pytest.fixture(scope="session")
def first_build(tmp_path_factory) -> Build:
    """The default build (THREE_DISCIPLINES at the tiny scale), made once per test run: under pytest-xdist,
    once for all workers, in the folder their own temp folders share."""
    root = tmp_path_factory.getbasetemp()
    return shared_build(root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root, "first-build")


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
