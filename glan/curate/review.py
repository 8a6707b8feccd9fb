"""Review a taxonomy proposal: choose which of its new nodes go into taxonomy.yaml (glan.curate.edit writes them).

As in GLAN's human review, rejecting a node rejects its subtree, and a node can only be accepted with its
new ancestors. Status is recomputed against the current taxonomy, so a proposal reviewed twice adds nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

import yaml

from glan.curate.edit import Candidate, Change, apply
from glan.io import write_bytes_atomic
from glan.taxonomy import iter_nodes, load_taxonomy, slugify


class ReviewError(ValueError):
    pass


def load_proposal(path: str | Path, existing: set[str]) -> list[Candidate]:
    """The proposal's nodes as a tree, `new` judged against the ids of the current taxonomy."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReviewError(
            f"{path}: cannot read the proposal ({exc.strerror}); make one with "
            "`snakemake --cores 2 results/taxonomy/proposed.yaml`"
        ) from exc
    if not isinstance(document, dict) or not isinstance(document.get("taxonomy"), list):
        raise ReviewError(f"{path}: not a proposal: expected a top-level `taxonomy` list")

    def build(items, parent: Candidate | None) -> list[Candidate]:
        nodes = []
        for item in items or []:
            parent_id = parent.id if parent else ""
            node_id = item.get("id") or "/".join(filter(None, [parent_id, slugify(item["name"])]))
            node = Candidate(
                id=node_id,
                name=item["name"],
                description=item.get("description") or "",
                new=node_id not in existing,
                parent=parent,
                votes=item.get("votes", 0),
                elsewhere=item.get("elsewhere") or [],
            )
            node.children = build(item.get("children"), node)
            nodes.append(node)
        return nodes

    return build(document["taxonomy"], None)


def walk(nodes: list[Candidate]):
    for node in nodes:
        yield from node.subtree()


def new_nodes(nodes: list[Candidate]) -> list[Candidate]:
    return [n for n in walk(nodes) if n.new]


def _close(accepted: set[str], by_id: dict[str, Candidate]) -> set[str]:
    """Keep only nodes whose new ancestors are all accepted: rejecting a node rejects its subtree."""
    kept = set()
    for node_id in accepted:
        node, ok = by_id[node_id].parent, True
        while node is not None and ok:
            ok = not node.new or node.id in accepted
            node = node.parent
        if ok:
            kept.add(node_id)
    return kept


def choose(
    nodes: list[Candidate],
    accept: Collection[str] = (),
    reject: Collection[str] = (),
    everything: bool = False,
    answered: Collection[str] = frozenset(),
) -> set[str]:
    """Accepted ids: `answered` as they are (interactive answers), each `accept` id with its new subtree and
    its new ancestors, all new nodes with `everything`; a `reject` id drops its subtree, whatever else said."""
    by_id = {n.id: n for n in walk(nodes)}
    unknown = [i for i in [*accept, *reject] if i not in by_id]
    if unknown:
        raise ReviewError(f"no node of the proposal has the id(s) {unknown}; ids are listed by `glan review --list`")
    accepted = {n.id for n in new_nodes(nodes)} if everything else set(answered)
    for node_id in accept:
        accepted |= {n.id for n in by_id[node_id].subtree() if n.new}
        parent = by_id[node_id].parent
        while parent is not None:
            if parent.new:
                accepted.add(parent.id)
            parent = parent.parent
    for node_id in reject:
        accepted -= {n.id for n in by_id[node_id].subtree()}
    return _close(accepted, by_id)


def ask(nodes: list[Candidate], read: Callable[[str], str], write: Callable[[str], None]) -> set[str]:
    """One question per new node, in order; a rejected node's subtree is not asked about."""
    candidates = new_nodes(nodes)
    accepted: set[str] = set()
    whole: set[str] = set()  # subtrees accepted with [a]
    for index, node in enumerate(candidates, 1):
        if node.parent is not None and node.parent.new and node.parent.id not in accepted:
            continue
        if any(node.id.startswith(root + "/") for root in whole):
            accepted.add(node.id)
            continue
        write(f"\n[{index}/{len(candidates)}] {node.label}  ({node.id}, votes {node.votes})")
        if node.description:
            write(f"    {node.description}")
        if node.elsewhere:
            write(f"    also in the taxonomy as: {', '.join(node.elsewhere)}")
        while True:
            answer = read("    accept? [y]es  [n]o (drops its subtree)  [a]ll of its subtree  [s]top here > ")
            answer = (answer or "").strip().lower()[:1]
            if answer in ("y", "n", "a", "s"):
                break
            write("    please answer y, n, a or s")
        if answer == "s":
            break
        if answer in ("y", "a"):
            accepted.add(node.id)
        if answer == "a":
            whole.add(node.id)
    return accepted


def describe(changes: list[Change], accepted: set[str], nodes: list[Candidate], taxonomy: str) -> list[str]:
    """What the review adds to taxonomy.yaml, a line a change, and a last line of how much was accepted."""
    lines = []
    for change in changes:
        lines.append(f"+ {change.id}  ({change.label}; {change.disciplines} discipline(s))")
        if change.became_parent:
            lines.append(
                f"! {change.became_parent} was a discipline and now has children: it is no longer built itself, "
                "its new children are"
            )
    rejected = len(new_nodes(nodes)) - len(accepted)
    total = sum(c.disciplines for c in changes)
    lines.append(
        f"{len(accepted)} node(s) accepted into {taxonomy} ({total} new discipline(s)), {rejected} not accepted"
        if accepted
        else f"nothing accepted; {taxonomy} is unchanged"
    )
    return lines


def review(
    proposal: str | Path,
    taxonomy: str | Path,
    accept: Collection[str] = (),
    reject: Collection[str] = (),
    everything: bool = False,
    interactive: bool = False,
    dry_run: bool = False,
    read: Callable[[str], str] = input,
    write: Callable[[str], None] = print,
) -> list[Change]:
    existing = {n.id for n in iter_nodes(load_taxonomy(taxonomy))}
    nodes = load_proposal(proposal, existing)
    if not new_nodes(nodes):
        write(f"{proposal}: no node that {taxonomy} does not already have")
        return []
    if interactive:
        accepted = choose(nodes, reject=reject, answered=ask(nodes, read, write))
    else:
        accepted = choose(nodes, accept, reject, everything)
    if not accepted:
        write(f"nothing accepted; {taxonomy} is unchanged")
        return []
    text, changes = apply(taxonomy, nodes, accepted)
    for line in describe(changes, accepted, nodes, str(taxonomy)):
        write(line)
    if dry_run:
        write("(dry run: nothing written)")
    else:
        write_bytes_atomic(taxonomy, text.encode("utf-8"))
    return changes


def listing(proposal: str | Path, taxonomy: str | Path) -> list[str]:
    """The proposal's new nodes, one per line, indented by depth: ids to pass to --accept/--reject."""
    existing = {n.id for n in iter_nodes(load_taxonomy(taxonomy))}
    nodes = load_proposal(proposal, existing)
    lines = []
    for node in new_nodes(nodes):
        depth = node.id.count("/")
        lines.append(f"{'  ' * depth}{node.id}  (votes {node.votes}) {node.description}".rstrip())
    return lines or [f"{proposal}: no node that {taxonomy} does not already have"]
