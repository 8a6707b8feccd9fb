"""One global cap on requests in flight, however many jobs run at once."""

from __future__ import annotations

import pytest
from fake_llm import FakeLLM
from helpers import DATASET, FIRST_BUILD_TOTAL, Workflow


@pytest.mark.parametrize("cap", [3, 7])
def test_the_cap_holds_across_parallel_jobs_and_is_reached(tmp_path, cap):
    with FakeLLM(latency=0.1) as server:
        workflow = Workflow(tmp_path, server)
        workflow.targets = DATASET
        workflow.overlay["llm"]["concurrency"] = cap
        workflow.run("--cores", "6")
        assert server.count == FIRST_BUILD_TOTAL
        assert server.max_in_flight == cap
