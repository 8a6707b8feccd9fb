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
None where a model has none), priced by glan.dataset.accounting.price_of as the build's replies are.

Prefix caching: `cost_with_cache` and `batch_cost_with_cache` price a stage's `cached_share` of its
prompt tokens at the cached-input price (`cached_input_per_mtok`, `batch_cached_input_per_mtok`; the
input price where a model has none). The share is measured (glan.llm.prefix) on the first SAMPLE
requests of the stage that the plan knows (cached or not, in plan order, so whole subjects of the first
nodes): of each request, its longest common prefix with an earlier one, as OpenAI counts it (nothing
under 1,024 tokens, else in 128-token steps), over their prompt tokens. That is what a cache that keeps
every prefix of the build would give, so a rebuild that sends a few requests among cached ones gets
less. A stage the plan knows no request of yet (all wait on missing replies) has no share (None) and
nothing of it is priced as cached: plan again once the first nodes are built, as for its reply tokens.
What changed since the last build is glan.cli.changes; the table is glan.cli.table.

The planner also records the misses whose node has every upstream reply cached (`Planner.missing`):
those are sent exactly as planned whatever replies come later. (A stage planned from a partial
artifact is counted as exact above, but a later reply may change it: subjects named alike are kept
once, the first.) They are what `glan batch export` writes and `glan batch import` matches against.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from glan.cli.changes import changes, removed_nodes
from glan.config import load_config, stage_llm, stage_settings
from glan.llm.backends import identity
from glan.llm.cache import Entry, ReplyReader, open_cache
from glan.llm.journals import open_journals
from glan.llm.lookup import Outcome, lookup
from glan.llm.prefix import Seen, cached
from glan.llm.prices import price_of, uncached
from glan.llm.request import CHARS_PER_TOKEN, Request, canonical_json
from glan.runtime.run import JobPlan, checked_template
from glan.stages import active
from glan.stages.contract import customise
from glan.taxonomy import leaves, load_taxonomy, select

REPLY_SHARE = 0.5  # of max_tokens, for replies of a stage the cache has never seen
SAMPLE = 20_000  # requests of a stage its cached share is measured on (a plan may hold 10 million)


class CacheView:
    """Read-only lookups in the reply cache; a missing cache directory is an empty cache (and stays missing).

    `reader`: entries to look up instead of the directory's (`glan cache verify`: those a damaged one still holds)."""

    def __init__(self, directory: str | Path, reader: ReplyReader | None = None):
        self.cache = open_cache(directory) if reader is None and os.path.isdir(directory) else None
        self.reader = reader or self.cache

    def get(self, key: str) -> Entry | None:
        return self.reader.get(key) if self.reader is not None else None

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
    in_batch: int = 0  # misses in a batch still open (cache/batches/): in flight, a build waits for them
    prompt_tokens: int = 0
    reply_tokens: int = 0
    cost: float | None = 0.0
    batch_cost: float | None = 0.0  # the same requests through the Batch API; None: the model has no batch prices
    cached_share: float | None = None  # of the stage's prompt tokens, in a prefix sent before; None: not measured
    cached_tokens: int = 0  # of prompt_tokens, that share
    cost_with_cache: float | None = 0.0  # cost with the cached tokens at the cached price
    batch_cost_with_cache: float | None = 0.0
    model: str = ""
    max_tokens: int = 0
    status: str = ""  # up to date | would change | not built | unknown until replies arrive
    why: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# What adds up over the nodes of a stage's estimate.
COUNTS = (
    "planned",
    "cached",
    "send",
    "estimated",
    "failed",
    "in_batch",
    "prompt_tokens",
    "reply_tokens",
    "cached_tokens",
)


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


def prompt_text(request: Request) -> bytes:
    """What a request's prompt tokens are counted on (CHARS_PER_TOKEN) and its shared prefix measured on."""
    return canonical_json([request.messages, request.schema])


class PrefixShare:
    """The share of a stage's prompt tokens in a prefix sent before, measured on its first SAMPLE requests."""

    def __init__(self) -> None:
        self.seen: Seen[bytes] = Seen()
        self.requests = self.tokens = self.cached = 0

    def add(self, text: bytes) -> None:
        if self.requests == SAMPLE:
            return
        self.requests += 1
        length = len(text) // CHARS_PER_TOKEN
        self.tokens += length
        self.cached += cached(self.seen.add(text) // CHARS_PER_TOKEN, length)

    @property
    def share(self) -> float | None:
        return self.cached / self.tokens if self.tokens else None


class Planner:
    def __init__(self, directory: str | Path, config: dict, reader: ReplyReader | None = None):
        self.dir = Path(directory)
        self.config = config
        self.stages = active(config)  # GLAN's four, and the judge where it is on
        # refused as a build refuses them, before any node is planned
        self.templates = {name: checked_template(stage, self.dir / "prompts") for name, stage in self.stages.items()}
        self.identities = {stage: identity(stage_llm(config, stage)) for stage in self.stages}
        self.cache = CacheView(self.dir / config["cache_dir"], reader)
        self.seen_reply_tokens: dict[str, list[int]] = {stage: [] for stage in self.stages}
        self.seen_prompt_tokens: dict[str, list[int]] = {stage: [] for stage in self.stages}
        self.prefixes = {stage: PrefixShare() for stage in self.stages}
        self.missing: list[Missing] = []  # in the order planned; two nodes may plan the same request
        batches = self.dir / config["cache_dir"] / "batches"
        self.in_batch = {key for journal in open_journals(batches) for key in journal.keys}

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
                text = prompt_text(request)
                self.seen_prompt_tokens[name].append(len(text) // CHARS_PER_TOKEN)
                self.prefixes[name].add(text)
                if outcome is None:
                    missing += 1
                    if exact:  # every upstream stage of the node is complete
                        self.missing.append(Missing(name, found.key, found.pending))
                    if found.key in self.in_batch:  # paid for, or being: not to send, nor to price again
                        plan.in_batch += 1
                    else:
                        plan.prompt_tokens += len(text) // CHARS_PER_TOKEN
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
            plan.send = missing - plan.in_batch + pending[name]
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
                plan.cached_share = self.prefixes[stage].share
                if not plan.send:
                    plan.prompt_tokens = plan.reply_tokens = 0
                    plan.cost = plan.batch_cost = plan.cost_with_cache = plan.batch_cost_with_cache = 0.0
                    continue
                seen = self.seen_prompt_tokens[stage]
                per_prompt = sum(seen) / len(seen) if seen else len(str(self.templates[stage].parts)) / 4 + 100
                plan.prompt_tokens += round(plan.estimated * per_prompt)
                replies = self.seen_reply_tokens[stage]
                per_reply = sum(replies) / len(replies) if replies else plan.max_tokens * REPLY_SHARE
                plan.reply_tokens = round(plan.send * per_reply)
                plan.cached_tokens = round(plan.prompt_tokens * (plan.cached_share or 0.0))
                usage = {
                    "prompt_tokens": plan.prompt_tokens,
                    "completion_tokens": plan.reply_tokens,
                    "prompt_tokens_details": {"cached_tokens": plan.cached_tokens},
                }
                plan.cost = price_of(plan.model, uncached(usage), prices)
                plan.batch_cost = price_of(plan.model, uncached(usage), prices, "batch")
                plan.cost_with_cache = price_of(plan.model, usage, prices)
                plan.batch_cost_with_cache = price_of(plan.model, usage, prices, "batch")


@dataclass
class Walk:
    """Every selected node planned against the cache."""

    config: dict
    records: dict[str, dict]  # every discipline of the taxonomy, selected or not
    nodes: list[NodePlan]
    missing: list[Missing]
    shares: dict[str, float | None]  # per stage, the cached share of its prompt tokens (Planner.prefixes)
    in_batch: set[str] = field(default_factory=set)  # keys in a batch still open (Planner.in_batch)


def walk(
    directory: str | Path = ".", configfiles: list[str] | tuple[str, ...] = (), reader: ReplyReader | None = None
) -> Walk:
    """Plan the selected nodes (`glan plan`, and the requests `glan batch` exports and imports), against
    the config's cache or `reader`."""
    directory = Path(directory)
    config = load_config(directory, configfiles)
    roots = load_taxonomy(directory / config["taxonomy"])
    records = {leaf.id: leaf.record() for leaf in leaves(roots)}
    ids = select(list(records), config["select"])
    planner = Planner(directory, config, reader)
    try:
        plans = [planner.node(records[node_id]) for node_id in ids]
        planner.finish(plans)
    finally:
        planner.close()
    shares = {stage: prefix.share for stage, prefix in planner.prefixes.items()}
    return Walk(config, records, plans, planner.missing, shares, planner.in_batch)


def build_plan(directory: str | Path = ".", configfiles: list[str] | tuple[str, ...] = ()) -> dict:
    """The plan of the selected nodes, as a document (the CLI prints it, tests compare it with a build)."""
    planned = walk(directory, configfiles)
    plans = planned.nodes
    totals = {stage: StageEstimate(cached_share=planned.shares[stage]) for stage in active(planned.config)}
    unpriced: dict[str, set[str]] = {"cost": set(), "batch_cost": set()}
    for node in plans:
        for stage, plan in node.stages.items():
            total = totals[stage]
            for key in COUNTS:
                setattr(total, key, getattr(total, key) + getattr(plan, key))
            for kind in ("cost", "batch_cost", "cost_with_cache", "batch_cost_with_cache"):
                value = getattr(plan, kind)
                if value is None:  # a model unpriced with the cache is unpriced without it
                    unpriced[kind.removesuffix("_with_cache")].add(plan.model)
                else:
                    setattr(total, kind, (getattr(total, kind) or 0.0) + value)
    gone = removed_nodes(Path(directory), planned.records)
    prompt = sum(t.prompt_tokens for t in totals.values())
    return {
        "nodes": {n.id: {"stages": {s: p.as_dict() for s, p in n.stages.items()}, "changes": n.changes} for n in plans},
        "totals": {s: p.as_dict() for s, p in totals.items()},
        "send": sum(t.send for t in totals.values()),
        "estimated": sum(t.estimated for t in totals.values()),
        "in_batch": sum(t.in_batch for t in totals.values()),
        "cost": sum(t.cost or 0.0 for t in totals.values()),
        "unpriced": sorted(unpriced["cost"]),
        "batch_cost": sum(t.batch_cost or 0.0 for t in totals.values()),  # of the models with batch prices
        "batch_unpriced": sorted(unpriced["batch_cost"]),  # models that would send and have no batch prices
        # Prefix caching: the share of the prompt tokens to send in a prefix sent before, and the costs with it.
        "cached_share": sum(t.cached_tokens for t in totals.values()) / prompt if prompt else None,
        "cost_with_cache": sum(t.cost_with_cache or 0.0 for t in totals.values()),
        "batch_cost_with_cache": sum(t.batch_cost_with_cache or 0.0 for t in totals.values()),
        "removed": gone,
    }
