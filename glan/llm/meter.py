"""What a run has sent and spent so far, per stage and model, and the budget that stops it sending.

Every request of every job passes through one Meter of its process (glan.llm.send): planned when its
job starts, then cached, or admitted (in flight) and settled when its reply is stored. The progress
line, logs/progress.json and `glan status` read it (glan.runtime.progress); the budget is enforced in
`admit`, before a request leaves.

The budget (`llm.budget`, and `stages.<stage>.llm.budget`) caps what one run spends, in the price
table's currency. A request is sent only while the spend so far plus what the requests in flight are
expected to cost stays under every budget that covers it. Expected is the mean cost of the replies of
its stage and model so far, or before the first one, its most: the prompt at about 4 characters a token
plus the whole `max_tokens`. While only what is in flight fills the budget, a request waits for those to
come back (they may cost less than expected); once the spend itself has reached it, the request is
refused and nothing more of that budget is sent. What is in flight finishes and is stored, so the spend
passes the budget by at most what the requests in flight cost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field, fields

from glan.config import stage_llm
from glan.llm.cache import Entry
from glan.llm.lookup import Outcome
from glan.llm.prices import cached_tokens, price_of
from glan.llm.request import Request

SUMMARY = ("planned", "cached", "sent", "retries", "rejected", "failed", "refused")
TOTAL = "llm.budget"


class OverBudget(RuntimeError):
    """A budget would be passed: nothing more of it is sent this run."""


@dataclass
class Tally:
    """Requests are counted once each (planned = cached + sent-and-answered + failed + left); `sent`
    counts attempts that reached the endpoint, `retries` transient failures, `rejected` invalid replies."""

    planned: int = 0
    done: int = 0
    cached: int = 0
    in_flight: int = 0
    sent: int = 0
    retries: int = 0
    rejected: int = 0
    failed: int = 0
    refused: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    unpriced: int = 0
    jobs: int = 0

    def summary(self) -> str:
        """The job's counts as its log's last line says them, for a person (accounting reads the counts file)."""
        return " ".join(f"{name}={getattr(self, name)}" for name in SUMMARY)

    def add(self, other: Tally) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def as_dict(self) -> dict:
        return {**asdict(self), "cost": round(self.cost, 6)}

    @classmethod
    def of(cls, document: dict) -> Tally:
        return cls(**{item.name: document.get(item.name, 0) for item in fields(cls)})


class JobCounts:
    """One job's events, each counted once: it adds to the job's own tally (the job's summary, written
    to its counts file) and to its process's meter (the progress line and `glan status`) together."""

    def __init__(self, meter: Meter, stage: str, planned: int):
        self.meter, self.stage = meter, stage
        self.tally = Tally(planned=planned)

    def add(self, model: str, **events: float) -> None:
        for tally in (self.tally, self.meter.tally(self.stage, model)):
            for name, amount in events.items():
                setattr(tally, name, getattr(tally, name) + amount)

    def resolved(self, outcome: Outcome, cached: bool, rejected: int) -> Outcome:
        """A request is done: `cached` when the cache answered it with nothing sent; `rejected` counts the
        invalid replies on its way, those the cache held as on the build that paid for them."""
        self.add(outcome.request.model, done=1, cached=int(cached), failed=int(not outcome.valid), rejected=rejected)
        return outcome


@dataclass
class Budget:
    """Budgets by scope: TOTAL for the whole run, or a stage name."""

    limits: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of_config(cls, config: dict) -> Budget:
        limits = {TOTAL: config["llm"]["budget"]} if config["llm"].get("budget") is not None else {}
        for stage, settings in config["stages"].items():
            if (settings.get("llm") or {}).get("budget") is not None:
                limits[stage] = settings["llm"]["budget"]
        return cls(limits)

    def scopes(self, stage: str) -> list[str]:
        return [scope for scope in (TOTAL, stage) if scope in self.limits]


def budget_problems(config: dict, stages: Iterable[str]) -> list[str]:
    """Models a budget covers that the price table cannot price: a budget must never be a free pass."""
    budget = Budget.of_config(config)
    problems = []
    for stage in stages:
        if not budget.scopes(stage):
            continue
        llm = stage_llm(config, stage)
        price = config.get("prices", {}).get(llm["model"]) or {}
        needed = ("batch_input_per_mtok", "batch_output_per_mtok") if llm["mode"] == "batch" else ("input_per_mtok",)
        if not all(key in price for key in needed):
            problems.append(
                f"stage {stage} sends to {llm['model']!r}"
                + (" in batch mode" if llm["mode"] == "batch" else "")
                + f", which prices has no {' and '.join(needed)} for"
            )
    return problems


class Meter:
    """One per sending process; not thread-safe, as everything that sends runs on one event loop."""

    def __init__(self, prices: dict | None = None, budget: Budget | None = None, expected_jobs: dict | None = None):
        self.prices = prices or {}
        self.budget = budget or Budget()
        self.expected_jobs = expected_jobs or {}  # stage -> jobs the run will start (for the projection)
        self.tallies: dict[tuple[str, str], Tally] = {}
        self.reserved: dict[str, float] = {}  # scope -> expected cost of its requests in flight
        self.flying: dict[str, int] = {}  # scope -> its requests in flight
        self._settled = asyncio.Event()  # set (and replaced) whenever a request comes back
        self.stopped: dict[str, str] = {}  # scope -> why
        self.started = time.time()
        self.first_sent: float | None = None
        self.last_sent: float | None = None
        self.changes = 0

    def tally(self, stage: str, model: str) -> Tally:
        found = self.tallies.get((stage, model))
        if found is None:
            found = self.tallies[(stage, model)] = Tally()
        self.changes += 1
        return found

    def job_started(self, stage: str, requests: list[Request]) -> JobCounts:
        """A job's requests are planned; the job counts under its first model (a job with none is not
        counted: it neither sends nor tells the projection anything)."""
        by_model: dict[str, int] = {}
        for request in requests:
            by_model[request.model] = by_model.get(request.model, 0) + 1
        for model, count in by_model.items():
            self.tally(stage, model).planned += count
        job = JobCounts(self, stage, len(requests))
        if requests:
            job.add(requests[0].model, jobs=1)
        return job

    def spent(self, scope: str) -> float:
        return sum(t.cost for (stage, _), t in self.tallies.items() if scope in (TOTAL, stage))

    def expected_cost(self, stage: str, request: Request, via: str) -> float:
        tally = self.tallies.get((stage, request.model))
        answered = tally.sent - tally.unpriced if tally else 0
        if tally and answered > 0:
            return tally.cost / answered
        usage = {"prompt_tokens": request.prompt_tokens, "completion_tokens": request.params.get("max_tokens", 0)}
        return price_of(request.model, usage, self.prices, via) or 0.0

    async def metered(self, job: JobCounts, request: Request, via: str, ask: Callable[[], Awaitable[Entry]]) -> Entry:
        """`ask` for the request's entry within the budget: admitted (or refused with OverBudget) before it
        goes, and settled when it is back, stored or not."""
        reservation = await self.admit(job, request, via)
        try:
            entry = await ask()
        except BaseException:
            self.settle(job, request, reservation, None)
            raise
        self.settle(job, request, reservation, entry)
        return entry

    async def admit(self, job: JobCounts, request: Request, via: str) -> float:
        """Reserve the request's expected cost, or raise OverBudget. Returns the reservation.

        Where only the reservations of requests in flight leave no room, wait for them to come back: they
        may cost less than reserved. Refuse once the spend alone has reached the budget."""
        while (reservation := self._reserve(job, request, via)) is None:
            await self._come_back()
        return reservation

    def _reserve(self, job: JobCounts, request: Request, via: str) -> float | None:
        """The reservation made, or None while requests in flight fill the budget."""
        stage = job.stage
        scopes = self.budget.scopes(stage)
        refused = [scope for scope in scopes if scope in self.stopped]
        expected = self.expected_cost(stage, request, via) if scopes else 0.0
        over = refused or [
            scope for scope in scopes if self.spent(scope) + self.reserved.get(scope, 0.0) >= self.budget.limits[scope]
        ]
        if over and not refused and any(self.flying.get(scope) for scope in over):
            return None
        if over:
            self.stopped.update({scope: self.stop_message(scope) for scope in over if scope not in self.stopped})
            job.add(request.model, refused=1)
            raise OverBudget(self.stop_message(over[0]))
        for scope in scopes:
            self.reserved[scope] = self.reserved.get(scope, 0.0) + expected
            self.flying[scope] = self.flying.get(scope, 0) + 1
        job.add(request.model, in_flight=1)
        return expected

    async def _come_back(self) -> None:
        """Until a request in flight comes back."""
        await self._settled.wait()

    def settle(self, job: JobCounts, request: Request, reservation: float, entry: Entry | None) -> None:
        """The request is back: stored as `entry`, or None when it never got a reply (cancelled, failed)."""
        scopes = self.budget.scopes(job.stage)
        for scope in scopes:
            self.reserved[scope] -= reservation
            self.flying[scope] -= 1
        if scopes:  # only requests under a budget wait in admit
            self._settled.set()
            self._settled = asyncio.Event()
        job.add(request.model, in_flight=-1)
        if entry is None:
            return
        self.last_sent = time.time()
        self.first_sent = self.first_sent or self.last_sent
        usage = entry.reply.usage or {}
        cost = price_of(request.model, usage, self.prices, entry.via)
        job.add(
            request.model,
            sent=1,
            prompt_tokens=usage.get("prompt_tokens", 0),
            cached_tokens=cached_tokens(usage),
            completion_tokens=usage.get("completion_tokens", 0),
            **({"unpriced": 1} if cost is None else {"cost": cost}),
        )

    def stop_message(self, scope: str) -> str:
        limit = self.budget.limits[scope]
        left = sum(t.planned - t.done for (stage, _), t in self.tallies.items() if scope in (TOTAL, stage))
        key = TOTAL if scope == TOTAL else f"stages.{scope}.llm.budget"
        return (
            f"{key} {limit:,.2f} reached: this run spent {self.spent(scope):,.4f}, and the next request would "
            f"pass it; {left:,} requests of the jobs started are not done. Nothing paid is sent again: every "
            f"reply is in the cache. To go on, raise {key} and run again (`glan plan` shows what is left and "
            "its cost)."
        )
