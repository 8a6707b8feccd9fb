"""llm.senders: the stage server sends from several processes, and llm.concurrency stays one cap for all
of them, exactly; each process reports its own progress part, and the run's merge counts every request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
from fake_llm import FakeLLM
from helpers import DATASET, FIRST_BUILD_TOTAL, Workflow

from glan.llm.cache import Entry
from glan.llm.meter import TOTAL, Budget, OverBudget
from glan.llm.request import Reply, Request
from glan.llm.shared import FORK, SharedLimiter, SharedMeter

CAP = 3


def in_two_processes(sender: Callable[[int], None]) -> None:
    """Run `sender(0)` and `sender(1)` in two processes forked from this one, as the stage server's are."""
    processes = [FORK.Process(target=sender, args=(index,)) for index in (0, 1)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [process.exitcode for process in processes] == [0, 0]


def test_two_sender_processes_share_the_cap_and_reach_it(tmp_path):
    with FakeLLM(latency=0.1) as server:
        workflow = Workflow(tmp_path, server)
        workflow.targets = DATASET
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


def test_the_shared_cap_holds_through_429s_and_cancellations_and_every_slot_comes_back():
    """Two processes, 300 requests each: a 429 now and then (a pause, and the limit cut in both), and
    every seventh request cancelled, waiting or holding its slot."""
    limiter = SharedLimiter(2, CAP + 1)
    peak = FORK.RawArray("q", 2)  # requests holding a slot now, and the most at once
    lock = FORK.Lock()

    def sender(index: int) -> None:
        async def one(number: int) -> None:
            await limiter.acquire(0)
            with lock:
                peak[0] += 1
                peak[1] = max(peak[1], peak[0])
            try:
                await asyncio.sleep(0.001)
            finally:
                with lock:
                    peak[0] -= 1
                limiter.release(rate_limited=number % 97 == 0, retry_after=0.01)

        async def requests() -> None:
            limiter.join(index)
            started = [asyncio.create_task(one(number)) for number in range(300)]
            await asyncio.sleep(0.02)
            for task in started[::7]:
                task.cancel()
            await asyncio.gather(*started, return_exceptions=True)

        asyncio.run(requests())

    in_two_processes(sender)
    assert peak[1] == CAP + 1
    assert limiter.in_flight == 0 and limiter.queued_total == 0 and limiter.cuts >= 6


def test_a_budget_shared_by_two_processes_is_spent_once():
    """A reply costs 1 (one completion token at 1 a token), as expected before it is sent; a budget of
    10 lets 10 requests go, from both processes together, and refuses the rest in each."""
    meter = SharedMeter({"m": {"input_per_mtok": 0, "output_per_mtok": 1e6}}, Budget({TOTAL: 10.0}))
    sent = FORK.RawArray("q", 2)
    refused = FORK.RawArray("q", 2)

    def sender(index: int) -> None:
        async def one(number: int) -> None:
            request = Request("m", [{"role": "user", "content": f"{index}-{number}"}], {"max_tokens": 1})
            job = meter.job_started("answers", [request])
            try:
                reservation = await meter.admit(job, request, "online")
            except OverBudget:
                refused[index] += 1
                return
            await asyncio.sleep(0.002)
            meter.settle(job, request, reservation, Entry(Reply("{}", usage={"completion_tokens": 1})))
            sent[index] += 1

        async def requests() -> None:
            await asyncio.gather(*(one(number) for number in range(20)))

        asyncio.run(requests())

    in_two_processes(sender)
    assert sum(sent) == 10 and sum(refused) == 30 and all(refused)
    assert meter.spent(TOTAL) == 10.0
