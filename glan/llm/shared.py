"""One cap and one budget for several sender processes (the stage server's llm.senders): the Limiter's
state and the Meter's budget state in shared memory, so that llm.concurrency, AIMD on 429, the
per-minute budgets and llm.budget hold for all of them together, exactly.

Made once, before the processes are forked; each then takes its end with `join`. The state is read
and changed under one lock, held for a few arithmetic steps. A process whose requests must wait
counts them as queued for it; a release, in any process, grants the free slots to the queued ones in
turn (process by process) and wakes each process granted one with a byte on its wake pipe, which then
hands them to its waiters. A slot is counted in flight from the moment it is granted, so the cap is
never passed, and none stays free while a request anywhere waits for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
from typing import Any

from glan.llm.cache import Entry
from glan.llm.limits import Limiter, TokenBucket
from glan.llm.meter import Budget, JobCounts, Meter
from glan.llm.request import Request

FORK = multiprocessing.get_context("fork")


class _InShared:
    """An attribute kept in its object's shared array `_state`, at `index`."""

    def __init__(self, index: int):
        self.index = index

    def __get__(self, owner: Any, kind: type | None = None) -> Any:
        return owner._state[self.index]

    def __set__(self, owner: Any, value: float) -> None:
        owner._state[self.index] = value


class SharedTokenBucket(TokenBucket):
    """A per-minute budget all the processes take from."""

    level = _InShared(0)
    stamp = _InShared(1)

    def __init__(self, per_minute: float):
        self._lock = FORK.Lock()
        self._state = FORK.RawArray("d", 2)
        super().__init__(per_minute)

    def _try(self, amount: float) -> float:
        with self._lock:
            return super()._try(amount)


class SharedLimiter(Limiter):
    """The cap of `processes` sender processes; each uses it after `join`ing as one of them."""

    bucket = SharedTokenBucket
    limit = _InShared(0)
    in_flight = _InShared(1)
    successes = _InShared(2)
    paused_until = _InShared(3)
    cuts = _InShared(4)
    queued_total = _InShared(5)

    def __init__(self, processes: int, cap: int, **per_minute: float):
        self._lock = FORK.Lock()
        self._state = FORK.RawArray("d", 6)
        self._queued = FORK.RawArray("q", processes)  # per process: its requests waiting, not yet granted
        self._granted = FORK.RawArray("q", processes)  # per process: granted, not yet handed to its waiters
        self._wakes = [os.pipe() for _ in range(processes)]
        for _, write in self._wakes:
            os.set_blocking(write, False)
        self._turn = 0
        self.index = -1
        super().__init__(cap, **per_minute)

    def join(self, index: int) -> None:
        """Be process `index` from now on (in that process, on its event loop)."""
        self.index = index
        asyncio.get_running_loop().add_reader(self._wakes[index][0], self._woken)

    async def _slot(self) -> None:
        with self._lock:
            free = not self.queued_total and not self._paused() and self.in_flight < int(self.limit)
            if free:
                self.in_flight += 1
            else:
                self._queued[self.index] += 1
                self.queued_total += 1
        if free:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self._hand_over()
        try:
            await waiter  # granted with the wake-up: in_flight already counts it
        except asyncio.CancelledError:
            if not waiter.cancelled():
                self._give_back(1)
            elif waiter in self._waiting:  # its claim is still out: withdraw it
                self._waiting.remove(waiter)
                with self._lock:
                    if self._queued[self.index]:
                        self._queued[self.index] -= 1
                        self.queued_total -= 1
                        return_slot = False
                    else:  # granted, not yet handed over: the slot goes back
                        self._granted[self.index] -= 1
                        return_slot = True
                if return_slot:
                    self._give_back(1)
            raise

    def release(self, rate_limited: bool = False, retry_after: float | None = None) -> None:
        with self._lock:
            self._settle(rate_limited, retry_after)
        self._hand_over()

    def _give_back(self, slots: int) -> None:
        """Slots granted that no request used: free again, not a success."""
        with self._lock:
            self.in_flight -= slots
        self._hand_over()

    def _hand_over(self) -> None:
        """Grant the free slots to the processes' queued requests in turn, and wake those processes."""
        woken = set()
        with self._lock:
            paused = self._paused()
            while not paused and self.queued_total and self.in_flight < int(self.limit):
                turn = self._turn
                self._turn = (turn + 1) % len(self._queued)
                if self._queued[turn]:
                    self._queued[turn] -= 1
                    self._granted[turn] += 1
                    self.queued_total -= 1
                    self.in_flight += 1
                    woken.add(turn)
            delay = self.paused_until - time.monotonic()
        if paused and self._resume is None:
            self._resume = asyncio.get_running_loop().call_later(max(0.0, delay), self._resume_after_pause)
        for process in woken - {self.index}:
            try:
                os.write(self._wakes[process][1], b"\0")
            except BlockingIOError:  # its pipe is full of wake-ups already
                pass
        if self.index in woken:
            self._collect()

    def _woken(self) -> None:
        try:
            os.read(self._wakes[self.index][0], 4096)
        except BlockingIOError:
            pass
        self._collect()

    def _collect(self) -> None:
        """Hand this process's granted slots to its waiters; a waiter cancelled meanwhile gives its back."""
        with self._lock:
            granted = self._granted[self.index]
            self._granted[self.index] = 0
        unused = 0
        while granted and self._waiting:
            waiter = self._waiting.popleft()
            granted -= 1
            if waiter.cancelled():
                unused += 1
            else:
                waiter.set_result(None)
        if unused + granted:
            self._give_back(unused + granted)


class _SharedSums:
    """A number per key of a fixed set, in shared memory: a Meter's reservations or requests in flight by scope."""

    def __init__(self, keys: list[str]):
        self._index = {key: index for index, key in enumerate(keys)}
        self._values = FORK.RawArray("d", max(1, len(keys)))

    def get(self, key: str, default: float = 0.0) -> float:
        return self._values[self._index[key]] if key in self._index else default

    def __getitem__(self, key: str) -> float:
        return self._values[self._index[key]]

    def __setitem__(self, key: str, value: float) -> None:
        self._values[self._index[key]] = value


class SharedMeter(Meter):
    """A sender process's meter whose budgets hold for all the processes: what they have spent and what
    their requests in flight are expected to cost are kept together, and checked and changed under one
    lock. A request waiting for room looks again whenever one of its own process's comes back, and at
    least every WAIT_SECONDS for the others'."""

    WAIT_SECONDS = 0.05

    def __init__(self, prices: dict, budget: Budget):
        super().__init__(prices, budget)
        scopes = list(budget.limits)
        self._lock = FORK.Lock()
        self.reserved = _SharedSums(scopes)  # type: ignore[assignment]
        self.flying = _SharedSums(scopes)  # type: ignore[assignment]
        self._spent = _SharedSums(scopes)

    def spent(self, scope: str) -> float:
        return self._spent[scope]

    def _reserve(self, job: JobCounts, request: Request, via: str) -> float | None:
        with self._lock:
            return super()._reserve(job, request, via)

    async def _come_back(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), self.WAIT_SECONDS)

    def settle(self, job: JobCounts, request: Request, reservation: float, entry: Entry | None) -> None:
        tally = self.tally(job.stage, request.model)
        before = tally.cost
        with self._lock:
            super().settle(job, request, reservation, entry)
            for scope in self.budget.scopes(job.stage):
                self._spent[scope] += tally.cost - before
