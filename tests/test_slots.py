"""The run's slot pool: a cap across processes, and slots a killed job held come back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

from glan.llm.slots import SlotClient, SlotServer

HOLDER = """
import asyncio, sys
from glan.llm.slots import SlotClient
async def main():
    client = await SlotClient.connect(sys.argv[1])
    for _ in range(int(sys.argv[2])):
        await client.acquire()
    print("held", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""


def holder(address: str, count: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLDER, address, str(count)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


async def grants_within(address: str, count: int, seconds: float) -> int:
    """How many of `count` slots a new client is granted before `seconds` pass."""
    client = await SlotClient.connect(address)
    granted = 0
    try:
        async with asyncio.timeout(seconds):
            for _ in range(count):
                await client.acquire()
                granted += 1
    except TimeoutError:
        pass
    await client.close()
    return granted


def test_the_pool_never_grants_more_than_its_capacity_across_processes():
    server = SlotServer(capacity=5)
    address = server.start()
    first = holder(address, 3)
    second = holder(address, 2)
    try:
        assert asyncio.run(grants_within(address, 1, 0.5)) == 0
    finally:
        for process in (first, second):
            process.kill()
            process.wait()
        server.stop()


def test_slots_held_by_a_killed_process_come_back():
    server = SlotServer(capacity=4)
    address = server.start()
    process = holder(address, 4)
    try:
        assert asyncio.run(grants_within(address, 1, 0.3)) == 0
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        time.sleep(0.1)
        assert asyncio.run(grants_within(address, 4, 5)) == 4
    finally:
        server.stop()


def test_released_slots_are_granted_to_waiters_in_order():
    async def scenario(address: str) -> list[int]:
        client = await SlotClient.connect(address)
        order: list[int] = []

        async def one(index: int) -> None:
            await client.acquire()
            order.append(index)
            await asyncio.sleep(0.01)
            client.release()

        await asyncio.gather(*(one(i) for i in range(10)))
        await client.close()
        return order

    server = SlotServer(capacity=2)
    try:
        assert asyncio.run(scenario(server.start())) == list(range(10))
    finally:
        server.stop()
