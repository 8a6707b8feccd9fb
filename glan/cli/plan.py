"""Plan before build: per node and stage, the requests a build would send, their tokens and cost.

It runs each stage's own `plan` and `assemble` against the reply cache only, never a backend:
a request whose reply is cached costs nothing; a stage whose replies are all cached yields its
artifact exactly, so the next stage is planned exactly too. Where replies are missing, the
requests that depend on them cannot be known yet; they are counted from the node's settings
(one syllabus per subject, `per_subject` questions per syllabus, one answer per question) and
marked estimated. A reply stored as rejected moves on to the next attempt, as sending does
(both walk the attempts with glan.llm.lookup).

Tokens: the prompt side is measured on the planned requests (about 4 characters a token); the
reply side is the mean of this stage's cached replies where the cache has some, else half of
`max_tokens`. Money: tokens times `prices` in the config, per million tokens, per model, online
(`cost`) and through the Batch API (`batch_cost`, from `batch_input_per_mtok` / `batch_output_per_mtok`;
None where a model has none).
What changed since the last build is glan.cli.changes; the table is glan.cli.table.

The planner also records the misses whose node has every upstream reply cached (`Planner.missing`):
those are sent exactly as planned whatever replies come later. (A stage planned from a partial
artifact is counted as exact above, but a later reply may change it: subjects named alike are kept
once, the first.) They are what `glan batch export` writes and `glan batch import` matches against.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

from glan.cli.changes import changes, removed_nodes
from glan.config import load_config, stage_llm, stage_settings
from glan.llm.backends import make_backend
from glan.llm.cache import Entry, open_cache
from glan.llm.lookup import Outcome, lookup
from glan.llm.request import Request, canonical_json
from glan.prompts import Template
from glan.runtime.run import JobPlan
from glan.stages import active
from glan.stages.contract import customise
from glan.taxonomy import leaves, load_taxonomy, select

CHARS_PER_TOKEN = 4
REPLY_SHARE = 0.5  # of max_tokens, for replies of a stage the cache has never seen


def backend_identity(llm: dict) -> str:
    """The identity that goes into cache keys, found without loading a model or sending anything."""
    if llm["backend"] == "local":
        from glan.llm.backends.local.model_file import model_sha256

        path = Path(llm["local"]["model_path"])
        # No model file yet: nothing of it can be in the cache, and a plan must not write 250 MB to find out.
        return "local:sha256:" + model_sha256(path) if path.exists() else "local:model-not-assembled-yet"
    backend = make_backend(llm)
    identity = backend.identity
    asyncio.run(backend.aclose())
    return identity


class CacheView:
    """Read-only lookups in the reply cache; a missing cache directory is an empty cache (and stays missing)."""

    def __init__(self, directory: str | Path):
        self.cache = open_cache(directory) if os.path.isdir(directory) else None

    def get(self, key: str) -> Entry | None:
        return self.cache.get(key) if self.cache is not None else None

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


@dataclass
class StageEstimate:
    planned: int = 0  # requests known exactly
    cached: int = 0  # of those, answered from the cache
    send: int = 0  # requests a build would send (exact and estimated)
    estimated: int = 0  # requests that depend on replies not in the cache yet
    failed: int = 0  # requests whose every attempt is stored as rejected: a build sends nothing for them
    prompt_tokens: int = 0
    reply_tokens: int = 0
    cost: float | None = 0.0
    batch_cost: float | None = 0.0  # the same requests through the Batch API; None: the model has no batch prices
    model: str = ""
    max_tokens: int = 0
    status: str = ""  # up to date | would change | not built | unknown until replies arrive
    why: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class NodePlan:
    id: str
    stages: dict[str, StageEstimate]
    changes: list[str]

    @property
    def send(self) -> int:
        return sum(s.send for s in self.stages.values())


@dataclass(frozen=True)
class Missing:
    """A request not in the cache whose node has every upstream reply cached: the attempt a build sends next."""

    stage: str
    key: str
    request: Request  # at that attempt


def fan_out(node: dict, config: dict) -> dict[str, dict[str, int]]:
    """How many requests of each later stage one missing reply of a stage leads to, with the node's overrides."""

    def own(stage: str, key: str) -> int:
        return customise(config["stages"][stage], node, stage)[key]

    subjects = len(node["subjects"]) if "subjects" in node else own("subjects", "per_query")
    per_subject = own("questions", "per_subject")
    questions = subjects * per_subject
    return {  # the judge grades one answer per question (it is counted only where the config turns it on)
        "subjects": {"syllabus": subjects, "questions": questions, "answers": questions, "judge": questions},
        "syllabus": {"questions": per_subject, "answers": per_subject, "judge": per_subject},
        "questions": {"answers": 1, "judge": 1},
        "answers": {"judge": 1},
        "judge": {},
    }


def prompt_tokens(request: Request) -> int:
    return len(canonical_json([request.messages, request.schema])) // CHARS_PER_TOKEN


class Planner:
    def __init__(self, directory: str | Path, config: dict):
        self.dir = Path(directory)
        self.config = config
        self.stages = active(config)  # GLAN's four, and the judge where it is on
        self.templates = {stage: Template(self.dir / "prompts" / f"{stage}.yaml") for stage in self.stages}
        self.identities = {stage: backend_identity(stage_llm(config, stage)) for stage in self.stages}
        self.cache = CacheView(self.dir / config["cache_dir"])
        self.seen_reply_tokens: dict[str, list[int]] = {stage: [] for stage in self.stages}
        self.seen_prompt_tokens: dict[str, list[int]] = {stage: [] for stage in self.stages}
        self.missing: list[Missing] = []  # in the order planned; two nodes may plan the same request

    def close(self) -> None:
        self.cache.close()

    def node(self, record: dict) -> NodePlan:
        """Walk the stages of one node as a build would, against the cache only."""
        plans: dict[str, StageEstimate] = {}
        fans = fan_out(record, self.config)
        source, pending = record, dict.fromkeys(fans, 0)  # pending: estimated requests per stage
        artifacts: dict[str, object] = {}
        exact = True
        for name, stage in self.stages.items():
            job = JobPlan.of(stage, source, self.templates[name], stage_settings(self.config, name))
            plan = plans[name] = StageEstimate(
                model=job.work.model, max_tokens=job.work.settings["sampling"]["max_tokens"]
            )
            max_attempts = stage_llm(self.config, name)["max_attempts"]
            missing = 0
            outcomes = []
            for request in job.requests:
                found = lookup(request, self.identities[name], self.cache, max_attempts)
                outcome = found.outcome
                self.seen_prompt_tokens[name].append(prompt_tokens(request))
                if outcome is None:
                    missing += 1
                    if exact:  # every upstream stage of the node is complete
                        self.missing.append(Missing(name, found.key, found.pending))
                    plan.prompt_tokens += prompt_tokens(request)
                    outcomes.append(Outcome(request=request, key="", reply=None, error="not in the cache"))
                    continue
                outcomes.append(outcome)
                if outcome.reply is None:
                    plan.failed += 1
                    continue
                plan.cached += 1
                if "completion_tokens" in outcome.reply.usage:
                    self.seen_reply_tokens[name].append(outcome.reply.usage["completion_tokens"])
            plan.planned = len(job.planned)
            plan.estimated = pending[name]
            plan.send = missing + pending[name]
            for later, count in fans[name].items():
                pending[later] += missing * count
            source = job.assemble(outcomes)
            exact = exact and missing == 0 and plan.estimated == 0
            artifacts[name] = source if exact else None
        return NodePlan(record["id"], plans, changes(self.dir, record, plans, artifacts))

    def finish(self, plans: list[NodePlan]) -> None:
        """Token and cost estimates, once every node is planned (reply sizes are learnt from the whole cache)."""
        prices = self.config["prices"]
        for node in plans:
            for stage, plan in node.stages.items():
                if not plan.send:
                    plan.prompt_tokens = plan.reply_tokens = 0
                    plan.cost = plan.batch_cost = 0.0
                    continue
                seen = self.seen_prompt_tokens[stage]
                per_prompt = sum(seen) / len(seen) if seen else len(str(self.templates[stage].parts)) / 4 + 100
                plan.prompt_tokens += round(plan.estimated * per_prompt)
                replies = self.seen_reply_tokens[stage]
                per_reply = sum(replies) / len(replies) if replies else plan.max_tokens * REPLY_SHARE
                plan.reply_tokens = round(plan.send * per_reply)
                price = prices.get(plan.model) or {}
                plan.cost = money(price, "", plan.prompt_tokens, plan.reply_tokens)
                plan.batch_cost = money(price, "batch_", plan.prompt_tokens, plan.reply_tokens)


def money(price: dict, kind: str, prompt: int, reply: int) -> float | None:
    """Tokens at a model's `prices` entry (`kind` "" online, "batch_" in batch); None where it has no such prices."""
    rates = (price.get(f"{kind}input_per_mtok"), price.get(f"{kind}output_per_mtok"))
    if rates[0] is None or rates[1] is None:
        return None
    return (prompt * rates[0] + reply * rates[1]) / 1e6


@dataclass
class Walk:
    """Every selected node planned against the cache."""

    config: dict
    records: dict[str, dict]  # every discipline of the taxonomy, selected or not
    nodes: list[NodePlan]
    missing: list[Missing]


def walk(directory: str | Path = ".", configfiles: list[str] | tuple[str, ...] = ()) -> Walk:
    """Plan the selected nodes (`glan plan`, and the requests `glan batch` exports and imports)."""
    directory = Path(directory)
    config = load_config(directory, configfiles)
    roots = load_taxonomy(directory / config["taxonomy"])
    records = {leaf.id: leaf.record() for leaf in leaves(roots)}
    ids = select(list(records), config["select"])
    planner = Planner(directory, config)
    try:
        plans = [planner.node(records[node_id]) for node_id in ids]
        planner.finish(plans)
    finally:
        planner.close()
    return Walk(config, records, plans, planner.missing)


def build_plan(directory: str | Path = ".", configfiles: list[str] | tuple[str, ...] = ()) -> dict:
    """The plan of the selected nodes, as a document (the CLI prints it, tests compare it with a build)."""
    planned = walk(directory, configfiles)
    plans = planned.nodes
    totals = {stage: StageEstimate() for stage in active(planned.config)}
    unpriced: dict[str, set[str]] = {"cost": set(), "batch_cost": set()}
    for node in plans:
        for stage, plan in node.stages.items():
            total = totals[stage]
            for key in ("planned", "cached", "send", "estimated", "failed", "prompt_tokens", "reply_tokens"):
                setattr(total, key, getattr(total, key) + getattr(plan, key))
            for kind, models in unpriced.items():
                value = getattr(plan, kind)
                if value is None:
                    models.add(plan.model)
                else:
                    setattr(total, kind, (getattr(total, kind) or 0.0) + value)
    gone = removed_nodes(Path(directory), planned.records)
    return {
        "nodes": {n.id: {"stages": {s: p.as_dict() for s, p in n.stages.items()}, "changes": n.changes} for n in plans},
        "totals": {s: p.as_dict() for s, p in totals.items()},
        "send": sum(t.send for t in totals.values()),
        "estimated": sum(t.estimated for t in totals.values()),
        "cost": sum(t.cost or 0.0 for t in totals.values()),
        "unpriced": sorted(unpriced["cost"]),
        "batch_cost": sum(t.batch_cost or 0.0 for t in totals.values()),  # of the models with batch prices
        "batch_unpriced": sorted(unpriced["batch_cost"]),  # models that would send and have no batch prices
        "removed": gone,
    }
