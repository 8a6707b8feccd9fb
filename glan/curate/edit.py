"""Accepted nodes into taxonomy.yaml, and nothing else of the file changed: it is curated by hand.

ruamel.yaml's round-trip mode keeps every comment, the key order, the quoting and (with the file's own
indentation, detected) the layout of untouched lines; accepted nodes are appended at the end of their
parent's children. Its errors are TaxonomyErrors: they are about the file, not about what was chosen.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from glan.taxonomy import TaxonomyError, parse_taxonomy, slugify

INDENTATIONS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 4, 0), (2, 3, 1))  # (mapping, sequence, offset)


def _handler(mapping: int, sequence: int, offset: int) -> YAML:
    handler = YAML()
    handler.preserve_quotes = True
    handler.width = 4096
    handler.indent(mapping=mapping, sequence=sequence, offset=offset)
    return handler


def _round_trip(text: str) -> tuple[YAML, Any]:
    """A ruamel YAML set to the file's own indentation (the one that dumps the file back unchanged), and the
    document it loaded; with none of the usual indentations, the first (untouched lines may be re-indented)."""
    for indentation in INDENTATIONS:
        handler = _handler(*indentation)
        out = io.StringIO()
        handler.dump(handler.load(text), out)
        if out.getvalue() == text:
            return handler, handler.load(text)
    handler = _handler(*INDENTATIONS[0])
    return handler, handler.load(text)


def _last_slot(node):
    """(container, key) of the last scalar in `node`: where ruamel keeps the comment lines that follow it."""
    while isinstance(node, (CommentedMap, CommentedSeq)) and len(node):
        key = list(node.keys())[-1] if isinstance(node, CommentedMap) else len(node) - 1
        if isinstance(node[key], (CommentedMap, CommentedSeq)) and len(node[key]):
            node = node[key]
            continue
        return node, key
    return None


def _move_trailing_comment(previous, new) -> None:
    """Comments after a list's last item belong to what follows the list: keep them after the appended item."""
    source, target = _last_slot(previous), _last_slot(new)
    if source is None or target is None:
        return
    container, key = source
    entry = container.ca.items.get(key)
    position = 0 if isinstance(container, CommentedSeq) else 2
    if not entry or entry[position] is None:
        return
    token, entry[position] = entry[position], None
    target_container, target_key = target
    slot = [None, None, None, None]
    slot[0 if isinstance(target_container, CommentedSeq) else 2] = token
    target_container.ca.items[target_key] = slot


def _mapping(node: Candidate, accepted: set[str]) -> CommentedMap:
    entry = CommentedMap()
    entry["name"] = node.name
    if node.description:
        entry["description"] = node.description
    children = [c for c in node.children if c.id in accepted]
    if children:
        entry["children"] = CommentedSeq(_mapping(c, accepted) for c in children)
    return entry


def _find(document, node_id: str):
    """The mapping of the node with this id in the round-trip document."""
    items, found = document["taxonomy"], None
    for depth, slug in enumerate(node_id.split("/")):
        found = next((i for i in items or [] if slugify(str(i.get("name", ""))) == slug), None)
        if found is None:
            raise TaxonomyError(f"taxonomy.yaml has no node {'/'.join(node_id.split('/')[: depth + 1])!r}")
        items = found.get("children")
    return found


@dataclass
class Candidate:
    """A node of the proposal; `new` when taxonomy.yaml has no node with its id."""

    id: str
    name: str
    description: str
    new: bool
    parent: Candidate | None
    votes: int = 0
    elsewhere: list[str] = field(default_factory=list)
    children: list[Candidate] = field(default_factory=list)

    @property
    def label(self) -> str:
        names: list[str] = []
        node: Candidate | None = self
        while node is not None:
            names.append(node.name)
            node = node.parent
        return " > ".join(reversed(names))

    def subtree(self):
        yield self
        for child in self.children:
            yield from child.subtree()


@dataclass
class Change:
    """One accepted subtree, inserted at one place of taxonomy.yaml."""

    id: str
    label: str
    disciplines: int  # leaves added with this node (itself if it is one)
    became_parent: str | None = None  # an existing discipline that now has children


def apply(taxonomy: str | Path, nodes: list[Candidate], accepted: set[str]) -> tuple[str, list[Change]]:
    """The new text of taxonomy.yaml with the accepted nodes appended, and the list of what was added."""
    path = Path(taxonomy)
    text = path.read_text(encoding="utf-8")
    handler, document = _round_trip(text)
    changes = []
    for node in (n for root in nodes for n in root.subtree()):
        if node.id not in accepted or (node.parent is not None and node.parent.id in accepted):
            continue  # only the top of each accepted subtree is inserted; its accepted children come with it
        if node.parent is None:
            siblings = document["taxonomy"]
            became = None
        else:
            parent = _find(document, node.parent.id)
            became = node.parent.id if not parent.get("children") else None
            if not parent.get("children"):
                parent["children"] = CommentedSeq()
            siblings = parent["children"]
        entry = _mapping(node, accepted)
        if len(siblings):
            _move_trailing_comment(siblings[-1], entry)
        siblings.append(entry)
        added = [n for n in node.subtree() if n.id in accepted]
        leaves = [n for n in added if not any(c.id in accepted for c in n.children)]
        changes.append(Change(node.id, node.label, len(leaves), became))
    out = io.StringIO()
    handler.dump(document, out)
    new_text = out.getvalue()
    try:
        parse_taxonomy(new_text, str(path))
    except TaxonomyError as exc:
        raise TaxonomyError(f"the reviewed taxonomy would not be valid, nothing written: {exc}") from exc
    return new_text, changes
