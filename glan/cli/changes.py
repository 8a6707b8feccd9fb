"""What changed since the last build, for `glan plan`: a node's taxonomy entry against the record
its subjects artifact was built from, and each stage's artifact against the one a build would write."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from glan.io import read_json
from glan.llm.request import canonical_json
from glan.runtime.run import dump_artifact
from glan.stages import STAGES


class Status(Protocol):
    """The part of a stage's plan this module fills in."""

    status: str
    why: list[str]


def changes(directory: Path, record: dict, plans: Mapping[str, Status], artifacts: dict) -> list[str]:
    """Why the node would rebuild, setting each stage's status; `artifacts` holds what each stage
    would write, or None where that depends on replies not in the cache yet."""
    folder = directory / "results/nodes" / record["id"]
    reasons = []
    built = folder / STAGES["subjects"].output
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
        name = STAGES[stage].output
        path = folder / name
        if not path.exists():
            plan.status = "not built"
            upstream_changed = True
            continue
        if artifacts[stage] is None:
            plan.status = "unknown until replies arrive"
            changed = True
        else:
            changed = dump_artifact(name, artifacts[stage]) != path.read_bytes()
            plan.status = "would change" if changed else "up to date"
        if not changed:
            upstream_changed = False
            continue
        if upstream_changed:
            plan.why.append("its input changed")
        else:
            prompt = directory / "prompts" / f"{stage}.yaml"
            if prompt.stat().st_mtime > path.stat().st_mtime:
                plan.why.append(f"prompts/{stage}.yaml edited")
            else:
                plan.why.append(f"settings changed (config stages.{stage} or llm), or the code")
        upstream_changed = True
    stages = [f"{s} ({', '.join(p.why)})" if p.why else s for s, p in plans.items() if p.status != "up to date"]
    if stages:
        reasons.append("rebuilds " + ", ".join(stages))
    return reasons


def removed_nodes(directory: Path, records: dict) -> list[str]:
    """Nodes built before that the taxonomy no longer has."""
    nodes = directory / "results/nodes"
    built = (p.parent.relative_to(nodes) for p in nodes.rglob(STAGES["subjects"].output))
    return sorted(str(node) for node in built if str(node) not in records)


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
