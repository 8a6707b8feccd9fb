"""Inspect the taxonomy: validate it and print it as a tree with what each node has built so far."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from glan.io import read_json
from glan.stages import GLAN_STAGES, STAGES
from glan.taxonomy import Node, iter_nodes, leaves

COLUMNS = ("subjects", "sessions", "questions", "answers")


def built_counts(folder: Path) -> dict[str, int] | None:
    """Counts from one discipline's artifacts; None when nothing is built yet."""
    subjects, syllabus, questions, answers = (folder / STAGES[name].output for name in GLAN_STAGES)
    if not subjects.exists():
        return None
    counts = {"subjects": len(read_json(subjects)["subjects"])}
    if syllabus.exists():
        counts["sessions"] = sum(len(s["sessions"]) for s in read_json(syllabus)["subjects"])
    for column, path in (("questions", questions), ("answers", answers)):
        if path.exists():
            counts[column] = sum(1 for line in path.read_bytes().splitlines() if line.strip())
    return counts


def customisation(node: Node) -> str:
    marks = []
    own = node.own
    if "subjects" in own:
        marks.append(f"pins {len(own['subjects'])} subject(s)")
    if "instructions" in own:
        text = own["instructions"]
        marks.append(f"instructions: {text[:40] + '...' if len(text) > 40 else text!r}")
    for stage, override in own.get("stages", {}).items():
        flat = []
        for key, value in override.items():
            if isinstance(value, dict):
                flat += [f"{key}.{k}={v}" for k, v in value.items()]
            else:
                flat.append(f"{key}={value}")
        marks.append(f"{stage}: {', '.join(flat)}")
    return f"  [{'; '.join(marks)}]" if marks else ""


def tree(
    roots: list[Node], results: Path, selected: set[str], depth: int | None = None, under: str | None = None
) -> list[str]:
    """One line per node: name, id, disciplines below it, and the built counts summed over its disciplines."""
    built = {leaf.id: built_counts(results / leaf.id) for leaf in leaves(roots)}
    lines = []

    def total(node: Node) -> tuple[Counter, int, int]:
        counts: Counter[str] = Counter()
        done = chosen = 0
        for leaf in leaves([node]):
            if built[leaf.id] is not None:
                counts.update(built[leaf.id])
                done += 1
            chosen += leaf.id in selected
        return counts, done, chosen

    def show(nodes: list[Node], prefix: str, level: int) -> None:
        for index, node in enumerate(nodes):
            last = index == len(nodes) - 1
            counts, done, chosen = total(node)
            if node.is_leaf:
                size = "selected" if node.id in selected else "not selected"
            else:
                size = f"{len(leaves([node]))} disciplines, {chosen} selected"
            numbers = " ".join(f"{c} {counts.get(c, 0)}" for c in COLUMNS) if done else "not built"
            branch = "`-- " if last else "|-- "
            lines.append(f"{prefix}{branch}{node.name}  ({node.id}; {size}; {numbers}){customisation(node)}")
            if node.children and (depth is None or level + 1 < depth):
                show(node.children, prefix + ("    " if last else "|   "), level + 1)

    start = roots
    if under:
        start = [n for n in iter_nodes(roots) if n.id == under]
    show(start, "", 0)
    return lines


def summary(roots: list[Node]) -> list[str]:
    """Counts by top-level field: sub-fields and disciplines."""
    lines = []
    for root in roots:
        inner = sum(1 for n in iter_nodes(root.children) if not n.is_leaf)
        lines.append(f"{root.name}: {inner} sub-field(s), {len(leaves([root]))} discipline(s)")
    nodes = list(iter_nodes(roots))
    no_description = [n.id for n in nodes if not n.description]
    lines.append(
        f"valid: {len(roots)} fields, {sum(1 for n in nodes if not n.is_leaf) - len(roots)} sub-fields, "
        f"{len(leaves(roots))} disciplines"
        + (f"; {len(no_description)} node(s) without a description" if no_description else "")
    )
    return lines
