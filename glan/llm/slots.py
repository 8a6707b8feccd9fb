"""One pool of request slots for every job of a local run, held only while a request is in flight.

The Snakemake main process serves the pool on loopback (`SlotServer`, started in rules/common.smk);
each job connects once (`SlotClient`) and asks for a slot per request. A slot is released when
the reply arrives, or when the job's connection closes, so a killed job cannot leak slots.
Jobs that cannot reach a server (on a cluster) fall back to the static share Snakemake's
`llm_slots` resource gives them.

The server also spends the run's per-minute budgets (llm.rate_limits), so they hold across jobs.

Protocol, one line each way: "A <tokens>" asks for a slot and is answered "K" once granted;
"R" gives one back.
"""

from __future__ import annotations

import asyncio
import collections
import os
import threading

from glan.llm.limits import TokenBucket

ENVIRONMENT = "GLAN_SLOT_SERVER"


def serve_for_run(capacity: int, rate_limits: dict) -> str:
    """Start the pool in this (the main Snakemake) process; jobs find it through the environment."""
    address = SlotServer(capacity, **rate_limits).start()
    os.environ[ENVIRONMENT] = address
    return address


class SlotServer:
    def __init__(
        self,
        capacity: int,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        host: str = "127.0.0.1",
    ):
        self.capacity = capacity
        self._budgets = (requests_per_minute, tokens_per_minute)
        self.address: str | None = None
        self._host = host
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="glan-slot-server")

    def start(self) -> str:
        self._thread.start()
        self._ready.wait()
        return self.address

    def stop(self) -> None:
        async def shutdown() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._slots = asyncio.Semaphore(self.capacity)
        requests_per_minute, tokens_per_minute = self._budgets
        self._requests = TokenBucket(requests_per_minute) if requests_per_minute else None
        self._tokens = TokenBucket(tokens_per_minute) if tokens_per_minute else None
        self._budget_lock = asyncio.Lock()
        self._server = self._loop.run_until_complete(asyncio.start_server(self._client, self._host, 0))
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = f"{host}:{port}"
        self._ready.set()
        self._loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held = 0
        waiting: set[asyncio.Task] = set()

        async def grant(tokens: int) -> None:
            nonlocal held
            await self._slots.acquire()
            held += 1
            async with self._budget_lock:  # first come, first served
                if self._requests:
                    await self._requests.take(1)
                if self._tokens:
                    await self._tokens.take(tokens)
            writer.write(b"K\n")

        try:
            while line := await reader.readline():
                if line.startswith(b"A"):
                    task = asyncio.create_task(grant(int(line[1:].strip() or 0)))
                    waiting.add(task)
                    task.add_done_callback(waiting.discard)
                elif line == b"R\n" and held:
                    held -= 1
                    self._slots.release()
        except ConnectionError:
            pass
        finally:
            for task in list(waiting):
                task.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)
            for _ in range(held):
                self._slots.release()
            writer.close()


class SlotClient:
    """A job's connection to the pool; slots are granted in the order they were asked for."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader = reader
        self._writer = writer
        self._pending: collections.deque[asyncio.Future] = collections.deque()
        self._listener = asyncio.create_task(self._listen())

    @classmethod
    async def connect(cls, address: str) -> SlotClient:
        host, _, port = address.rpartition(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def _listen(self) -> None:
        while await self._reader.readline() == b"K\n":
            future = self._pending.popleft()
            if future.cancelled():
                self.release()  # its asker stopped waiting: give the slot straight back
            else:
                future.set_result(None)
        for future in self._pending:
            if not future.done():
                future.set_exception(ConnectionError("the slot server went away"))

    async def acquire(self, tokens: int = 0) -> None:
        future = asyncio.get_running_loop().create_future()
        self._pending.append(future)
        self._writer.write(b"A %d\n" % tokens)
        await future

    def release(self) -> None:
        self._writer.write(b"R\n")

    async def close(self) -> None:
        self._listener.cancel()
        self._writer.close()
