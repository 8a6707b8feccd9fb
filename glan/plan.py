"""Plan before build: per node and stage, the requests a build would send, their tokens and cost, and what changed.

It runs each stage's own `plan` and `assemble` against the reply cache only, never a backend:
a request whose reply is cached costs nothing; a stage whose replies are all cached yields its
artifact exactly, so the next stage is planned exactly too. Where replies are missing, the
requests that depend on them cannot be known yet; they are counted from the node's settings
(one syllabus per subject, `per_subject` questions per syllabus, one answer per question) and
marked estimated. A reply stored as rejected moves on to the next attempt, as `send` does.

Tokens: the prompt side is measured on the planned requests (about 4 characters a token); the
reply side is the mean of this stage's cached replies where the cache has some, else half of
`max_tokens`. Money: tokens times `prices` in the config, per million tokens, per model.

What changed since the last build: the node's entry against the node record its subjects.json
was built from, and each stage's artifact against the one this plan would produce.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from glan.config import stage_llm, stage_settings
from glan.io import dump_json, dump_jsonl, read_json
from glan.llm.backends import make_backend
from glan.llm.cache import open_cache
from glan.llm.request import canonical_json
from glan.llm.send import Outcome
from glan.prompts import Template
from glan.stages.common import customise
from glan.stages.run import STAGES
from glan.taxonomy import deep_merge, leaves, load_taxonomy, select

ARTIFACTS = {"subjects": "subjects.json", "syllabus": "syllabus.json", "questions": "questions.jsonl"}
ARTIFACTS["answers"] = "answers.jsonl"
CHARS_PER_TOKEN = 4
REPLY_SHARE = 0.5  # of max_tokens, for replies of a stage the cache has never seen


def load_config(directory: str | Path = ".", configfiles: list[str] = ()) -> dict:
    """The config a `snakemake --configfile ...` run in `directory` would see: defaults, overlays, schema defaults."""
    from snakemake.utils import validate

    directory = Path(directory)
    config = yaml.safe_load((directory / "config/config.yaml").read_text(encoding="utf-8"))
    for name in configfiles:
        config = deep_merge(config, yaml.safe_load((directory / name).read_text(encoding="utf-8")) or {})
    validate(config, str((directory / "config/schema.yaml").resolve()))
    return config


def backend_identity(llm: dict) -> str:
    """The identity that goes into cache keys, found without loading a model or sending anything."""
    if llm["backend"] == "local":
        from glan.llm.backends import local

        if all(hasattr(local, name) for name in ("local_settings", "model_sha256")):
            path = Path(local.local_settings(llm)["model_path"])
            # No model file yet: nothing of it can be in the cache, and a plan must not write 250 MB to find out.
            return "local:sha256:" + local.model_sha256(path) if path.exists() else "local:model-not-assembled-yet"
    backend = make_backend(llm)
    identity = backend.identity
    asyncio.run(backend.aclose())
    return identity


class CacheView:
    """Read-only lookups in the reply cache; a missing cache directory is an empty cache (and stays missing)."""

    def __init__(self, directory: str | Path):
        self.cache = open_cache(directory) if os.path.isdir(directory) else None

    def get(self, key: str):
        return self.cache.get(key) if self.cache is not None else None

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


@dataclass
class StagePlan:
    planned: int = 0  # requests known exactly
    cached: int = 0  # of those, answered from the cache
    send: int = 0  # requests a build would send (exact and estimated)
    estimated: int = 0  # requests that depend on replies not in the cache yet
    failed: int = 0  # requests whose every attempt is stored as rejected: a build sends nothing for them
    prompt_tokens: int = 0
    reply_tokens: int = 0
    cost: float | None = 0.0
    model: str = ""
    max_tokens: int = 0
    status: str = ""  # up to date | would change | not built | unknown until replies arrive
    why: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class NodePlan:
    id: str
    stages: dict[str, StagePlan]
    changes: list[str]

    @property
    def send(self) -> int:
        return sum(s.send for s in self.stages.values())


def resolve(requests: list, identity: str, cache: CacheView, max_attempts: int) -> list[Outcome | None]:
    """What `send` would find for each request: the valid cached reply, a known failure, or None (must send)."""
    resolved = []
    for request in requests:
        outcome = None
        for attempt in range(max_attempts):
            current = request.at_attempt(attempt)
            key = current.key(identity)
            entry = cache.get(key)
            if entry is None:
                outcome = None
                break
            outcome = Outcome(request=current, key=key, reply=entry.reply if entry.valid else None, error=entry.error)
            if entry.valid:
                break
        resolved.append(outcome)
    return resolved


def fan_out(node: dict, config: dict) -> dict[str, dict[str, int]]:
    """How many requests of each later stage one missing reply of a stage leads to, with the node's overrides."""

    def own(stage: str, key: str) -> int:
        return customise(config["stages"][stage], node, stage)[key]

    subjects = len(node["subjects"]) if "subjects" in node else own("subjects", "per_query")
    per_subject = own("questions", "per_subject")
    return {
        "subjects": {"syllabus": subjects, "questions": subjects * per_subject, "answers": subjects * per_subject},
        "syllabus": {"questions": per_subject, "answers": per_subject},
        "questions": {"answers": 1},
        "answers": {},
    }


def prompt_tokens(request) -> int:
    return len(canonical_json([request.messages, request.schema])) // CHARS_PER_TOKEN


class Planner:
    def __init__(self, directory: str | Path, config: dict):
        self.dir = Path(directory)
        self.config = config
        self.templates = {stage: Template(self.dir / "prompts" / f"{stage}.yaml") for stage in STAGES}
        self.identities = {stage: backend_identity(stage_llm(config, stage)) for stage in STAGES}
        self.cache = CacheView(self.dir / config["cache_dir"])
        self.seen_reply_tokens: dict[str, list[int]] = {stage: [] for stage in STAGES}
        self.seen_prompt_tokens: dict[str, list[int]] = {stage: [] for stage in STAGES}

    def close(self) -> None:
        self.cache.close()

    def node(self, record: dict) -> NodePlan:
        """Walk the four stages of one node as a build would, against the cache only."""
        plans: dict[str, StagePlan] = {}
        source, pending = record, dict.fromkeys(STAGES, 0)  # pending: estimated requests per stage
        artifacts: dict[str, object] = {}
        exact = True
        fans = fan_out(record, self.config)
        for stage, module in STAGES.items():
            settings = stage_settings(self.config, stage)
            llm = stage_llm(self.config, stage)
            own = customise(settings, record, stage)
            plan = plans[stage] = StagePlan(model=own["llm"]["model"], max_tokens=own["sampling"]["max_tokens"])
            requests = module.plan(source, settings, self.templates[stage])
            resolved = resolve(requests, self.identities[stage], self.cache, llm.get("max_attempts", 3))
            missing = 0
            outcomes = []
            for request, outcome in zip(requests, resolved, strict=True):
                self.seen_prompt_tokens[stage].append(prompt_tokens(request))
                if outcome is None:
                    missing += 1
                    plan.prompt_tokens += prompt_tokens(request)
                    outcomes.append(Outcome(request=request, key="", reply=None, error="not in the cache"))
                else:
                    outcomes.append(outcome)
                    if outcome.ok:
                        plan.cached += 1
                        usage = outcome.reply.usage or {}
                        if "completion_tokens" in usage:
                            self.seen_reply_tokens[stage].append(usage["completion_tokens"])
                    else:
                        plan.failed += 1
            plan.planned = len(requests)
            plan.estimated = pending[stage]
            plan.send = missing + pending[stage]
            for later, count in fans[stage].items():
                pending[later] += missing * count
            source = module.assemble(source, outcomes, settings)
            exact = exact and missing == 0 and plan.estimated == 0
            artifacts[stage] = source if exact else None
        changes = self.changes(record, plans, artifacts)
        return NodePlan(record["id"], plans, changes)

    def finish(self, plans: list[NodePlan]) -> None:
        """Token and cost estimates, once every node is planned (reply sizes are learnt from the whole cache)."""
        prices = self.config.get("prices") or {}
        for node in plans:
            for stage, plan in node.stages.items():
                if not plan.send:
                    plan.prompt_tokens = plan.reply_tokens = 0
                    plan.cost = 0.0
                    continue
                seen = self.seen_prompt_tokens[stage]
                per_prompt = sum(seen) / len(seen) if seen else len(str(self.templates[stage].parts)) / 4 + 100
                plan.prompt_tokens += round(plan.estimated * per_prompt)
                replies = self.seen_reply_tokens[stage]
                per_reply = sum(replies) / len(replies) if replies else plan.max_tokens * REPLY_SHARE
                plan.reply_tokens = round(plan.send * per_reply)
                price = prices.get(plan.model)
                plan.cost = (
                    None
                    if price is None
                    else (
                        plan.prompt_tokens * price.get("input_per_mtok", 0)
                        + plan.reply_tokens * price.get("output_per_mtok", 0)
                    )
                    / 1e6
                )

    # --- what changed since the last build ---------------------------------------------------------

    def changes(self, record: dict, plans: dict[str, StagePlan], artifacts: dict) -> list[str]:
        folder = self.dir / "results/nodes" / record["id"]
        reasons = []
        built = folder / ARTIFACTS["subjects"]
        if not built.exists():
            for plan in plans.values():
                plan.status = "not built"
            return ["new: never built"]
        recorded = read_json(built).get("node", {})
        diff = record_diff(recorded, record)
        if diff:
            reasons.append("taxonomy entry: " + "; ".join(diff))
        upstream_changed = bool(diff)
        for stage, plan in plans.items():
            path = folder / ARTIFACTS[stage]
            if not path.exists():
                plan.status = "not built"
                upstream_changed = True
                continue
            if artifacts[stage] is None:
                plan.status = "unknown until replies arrive"
                changed = True
            else:
                dump = dump_jsonl if ARTIFACTS[stage].endswith(".jsonl") else dump_json
                changed = dump(artifacts[stage]) != path.read_bytes()
                plan.status = "would change" if changed else "up to date"
            if not changed:
                upstream_changed = False
                continue
            if upstream_changed:
                plan.why.append("its input changed")
            else:
                prompt = self.dir / "prompts" / f"{stage}.yaml"
                if prompt.stat().st_mtime > path.stat().st_mtime:
                    plan.why.append(f"prompts/{stage}.yaml edited")
                else:
                    plan.why.append(f"settings changed (config stages.{stage} or llm), or the code")
            upstream_changed = True
        stages = [f"{s} ({', '.join(p.why)})" if p.why else s for s, p in plans.items() if p.status != "up to date"]
        if stages:
            reasons.append("rebuilds " + ", ".join(stages))
        return reasons


def _short(value) -> str:
    text = value if isinstance(value, str) else canonical_json(value).decode()
    return repr(text[:37] + "...") if len(text) > 40 else repr(text) if isinstance(value, str) else text


def record_diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Human-readable differences between two node records, key by key."""
    lines = []
    for key in sorted(set(old) | set(new)):
        name = f"{prefix}{key}"
        if key not in old:
            lines.append(f"{name} added ({_short(new[key])})")
        elif key not in new:
            lines.append(f"{name} removed")
        elif isinstance(old[key], dict) and isinstance(new[key], dict):
            lines.extend(record_diff(old[key], new[key], name + "."))
        elif old[key] != new[key]:
            lines.append(f"{name} {_short(old[key])} -> {_short(new[key])}")
    return lines


def build_plan(directory: str | Path = ".", configfiles: list[str] = ()) -> dict:
    """The plan of the selected nodes, as a document (the CLI prints it, tests compare it with a build)."""
    directory = Path(directory)
    config = load_config(directory, configfiles)
    roots = load_taxonomy(directory / config["taxonomy"])
    records = {leaf.id: leaf.record() for leaf in leaves(roots)}
    ids = select(list(records), config.get("select") or [])
    planner = Planner(directory, config)
    try:
        plans = [planner.node(records[node_id]) for node_id in ids]
        planner.finish(plans)
    finally:
        planner.close()
    totals = {stage: StagePlan() for stage in STAGES}
    unpriced = set()
    for node in plans:
        for stage, plan in node.stages.items():
            total = totals[stage]
            for key in ("planned", "cached", "send", "estimated", "failed", "prompt_tokens", "reply_tokens"):
                setattr(total, key, getattr(total, key) + getattr(plan, key))
            if plan.cost is None:
                unpriced.add(plan.model)
            else:
                total.cost += plan.cost
    gone = sorted(
        str(p.parent.relative_to(directory / "results/nodes"))
        for p in (directory / "results/nodes").rglob("subjects.json")
        if str(p.parent.relative_to(directory / "results/nodes")) not in records
    )
    return {
        "nodes": {n.id: {"stages": {s: p.as_dict() for s, p in n.stages.items()}, "changes": n.changes} for n in plans},
        "totals": {s: p.as_dict() for s, p in totals.items()},
        "send": sum(t.send for t in totals.values()),
        "estimated": sum(t.estimated for t in totals.values()),
        "cost": sum(t.cost for t in totals.values()),
        "unpriced": sorted(unpriced),
        "removed": gone,
    }


def format_plan(document: dict, all_nodes: bool = False) -> list[str]:
    """A table per node and stage (nodes with nothing to send are folded unless `all_nodes`), then the changes."""
    lines = []
    width = max([len(i) for i in document["nodes"]] + [20])
    header = f"{'node':<{width}}  {'stage':<9} {'send':>6} {'cached':>7} {'tok in':>9} {'tok out':>9} {'cost':>10}"
    lines += [header, "-" * len(header)]
    idle = 0
    for node_id, node in document["nodes"].items():
        stages = node["stages"]
        if not all_nodes and not any(p["send"] for p in stages.values()):
            idle += 1
            continue
        for index, (stage, plan) in enumerate(stages.items()):
            mark = "~" if plan["estimated"] else " "
            cost = "unpriced" if plan["cost"] is None else f"{plan['cost']:.4f}"
            label = node_id if index == 0 else ""
            lines.append(
                f"{label:<{width}}  {stage:<9} {plan['send']:>5}{mark} {plan['cached']:>7} "
                f"{plan['prompt_tokens']:>9} {plan['reply_tokens']:>9} {cost:>10}"
            )
    if idle:
        lines.append(f"({idle} node(s) with nothing to send not shown; --all shows them)")
    lines.append("-" * len(header))
    for stage, plan in document["totals"].items():
        mark = "~" if plan["estimated"] else " "
        lines.append(
            f"{'total':<{width}}  {stage:<9} {plan['send']:>5}{mark} {plan['cached']:>7} "
            f"{plan['prompt_tokens']:>9} {plan['reply_tokens']:>9} {plan['cost']:>10.4f}"
        )
    lines.append(
        f"A build would send {document['send']} request(s) ({document['estimated']} estimated: marked ~, they depend "
        f"on replies not in the cache yet); estimated cost {document['cost']:.4f}"
        + (f" plus unpriced models {document['unpriced']} (add them to `prices`)" if document["unpriced"] else "")
        + "."
    )
    changed = {i: n["changes"] for i, n in document["nodes"].items() if n["changes"]}
    lines.append("")
    lines.append(f"Changed since the last build: {len(changed)} node(s)" + (":" if changed else ""))
    for node_id, reasons in changed.items():
        lines.append(f"  ~ {node_id}: " + " | ".join(reasons))
    for node_id in document["removed"]:
        lines.append(f"  - {node_id}: no longer in the taxonomy (its results stay on disk, unused)")
    return lines
