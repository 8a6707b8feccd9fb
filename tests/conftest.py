"""Fixtures: a loopback OpenAI-compatible server, and a copy of the workflow in a temp dir against it."""

from __future__ import annotations

import inspect
import os
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fake_llm import FakeLLM
from helpers import DATASET, Build, Workflow, shared_build


@pytest.fixture
def llm_server():
    with FakeLLM() as server:
        yield server


@pytest.fixture
def workflow(request, tmp_path, llm_server) -> Workflow:
    """A copy of the workflow against `llm_server`. In a test marked `built`, as it is after its first
    `workflow.run()` (a copy of `first_build`, against a server that has received nothing yet), without
    paying for that build again. In a test marked `dataset_only`, its runs build DATASET."""
    built = request.getfixturevalue("first_build").dir if request.node.get_closest_marker("built") else None
    made = Workflow(tmp_path, llm_server, built=built)
    if request.node.get_closest_marker("dataset_only") is not None:
        made.targets = DATASET
    return made


@pytest.fixture(scope="session")
def first_build(tmp_path_factory) -> Build:
    """The default build (THREE_DISCIPLINES at the tiny scale), made once per test run: under pytest-xdist,
    once for all workers, in the folder their own temp folders share."""
    root = tmp_path_factory.getbasetemp()
    return shared_build(root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root, "first-build")


RUNS_SNAKEMAKE = ("Workflow(", '"snakemake"', "real_workflow(")
TESTS = Path(__file__).resolve().parent


def _names(code: types.CodeType) -> Iterator[str]:
    """The global names a function's code (its nested functions and lambdas too) refers to."""
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _names(constant)


def _sources(function: Callable, seen: set) -> Iterator[str]:
    """The source of `function` and of every function of tests/ that it calls, however deep."""
    if not inspect.isfunction(function) or function in seen:
        return
    seen.add(function)
    if not Path(inspect.getfile(function)).resolve().is_relative_to(TESTS):
        return
    yield inspect.getsource(function)
    for name in _names(function.__code__):
        yield from _sources(function.__globals__.get(name), seen)


# Modules whose tests run in one process under pytest-xdist (`--dist loadgroup`, pyproject.toml's addopts):
# what they share is one per machine, or a module fixture too slow to make again in each worker.
ONE_PROCESS = {
    "test_slurm.py": "slurm",  # one test cluster at a time on a machine (/etc/slurm/slurm.conf, a file lock)
    "test_litellm_proxy.py": "litellm",  # the proxy (its start takes seconds; .ci/install-litellm's venv)
    "test_judge.py": "judge",  # `judged`, a build with the judge on
    "test_streaming.py": "streaming",  # `datasets`, written once
}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(items):
    """Mark every test that runs Snakemake (its own code, a function of tests/ it calls, or a fixture it
    uses builds a Workflow or a snakemake command) as `workflow`, so `pytest -m "not workflow"` is the fast tier."""
    for item in items:
        functions = [getattr(item, "function", None)]
        fixtures = getattr(item, "_fixtureinfo", None)
        if fixtures is not None:
            functions += [d.func for defs in fixtures.name2fixturedefs.values() for d in defs]
        seen: set = set()
        sources = [source for f in functions if f is not None for source in _sources(f, seen)]
        if any(mark in source for source in sources for mark in RUNS_SNAKEMAKE):
            item.add_marker(pytest.mark.workflow)
        group = ONE_PROCESS.get(item.path.name)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    # The slowest first, so that no worker starts a long module last while the others idle: modules that
    # run in one process, then those that run Snakemake, then the rest (each module's tests stay together).
    modules = list(dict.fromkeys(item.path for item in items))
    weight = {
        path: (
            path.name not in ONE_PROCESS,
            not any(i.get_closest_marker("workflow") for i in items if i.path == path),
        )
        for path in modules
    }
    items.sort(key=lambda item: (weight[item.path], modules.index(item.path)))
