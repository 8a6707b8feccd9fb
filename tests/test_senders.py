"""llm.senders: the stage server sends from several processes, and llm.concurrency stays one cap for all
of them, exactly; each process reports its own progress part, and the run's merge counts every request."""

from __future__ import annotations

import orjson
from helpers import FIRST_BUILD_TOTAL, Workflow

from glan.fake_server import FakeLLM

CAP = 3


def test_two_sender_processes_share_the_cap_and_reach_it(tmp_path):
    with FakeLLM(latency=0.1) as server:
        workflow = Workflow(tmp_path, server)
        workflow.overlay["llm"].update(concurrency=CAP, senders=2)
        workflow.run("--cores", "6")
        assert server.count == FIRST_BUILD_TOTAL
        assert server.max_in_flight == CAP
    parts = [orjson.loads(workflow.path(f"logs/progress/server.{index}.json").read_bytes()) for index in (0, 1)]
    sent = [sum(row["sent"] for row in part["tallies"]) for part in parts]
    assert all(sent), f"each sender process sent some of the requests: {sent}"
    merged = orjson.loads(workflow.path("logs/progress.json").read_bytes())
    assert merged["finished"] and merged["totals"]["sent"] == sum(sent) == FIRST_BUILD_TOTAL
    assert merged["totals"]["in_flight"] == 0
