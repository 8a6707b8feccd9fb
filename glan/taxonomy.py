"""The taxonomy: parse and check `taxonomy.yaml`, give nodes path ids, and write one file per discipline.

Per-discipline files are rewritten only when their content changes, so an edit to one node
leaves every other node's file (bytes and mtime) alone and Snakemake re-runs that node only.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from glan.io import dump_json, write_if_changed

NODE_KEYS = {"name", "description", "children"}


class TaxonomyError(ValueError):
    pass


@dataclass
class Node:
    name: str
    description: str
    path: tuple[str, ...]
    id: str
    line: int
    children: list[Node] = field(default_factory=list)

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def record(self) -> dict:
        """What a discipline's jobs see of the taxonomy: nothing outside this node and its ancestors' names."""
        return {"id": self.id, "name": self.name, "description": self.description, "path": list(self.path)}


class _LineMap(dict):
    line = 0


class _LineLoader(yaml.SafeLoader):
    """Keeps each mapping's line number, so errors can point at the node."""


def _construct_line_map(loader: _LineLoader, node: yaml.MappingNode):
    mapping = _LineMap()
    mapping.line = node.start_mark.line + 1
    yield mapping
    mapping.update(loader.construct_mapping(node))


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_line_map)


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def parse_taxonomy(text: str, source: str = "taxonomy.yaml") -> list[Node]:
    try:
        document = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or "taxonomy" not in document:
        raise TaxonomyError(f"{source}: expected a top-level key `taxonomy` holding a list of nodes")
    extra = set(document) - {"taxonomy"}
    if extra:
        raise TaxonomyError(f"{source}: unknown top-level keys {sorted(extra)}; only `taxonomy` is allowed")
    roots = _parse_nodes(document["taxonomy"], (), source, getattr(document, "line", 1))
    if not roots:
        raise TaxonomyError(f"{source}: the taxonomy is empty; add at least one node with a `name`")
    return roots


def _parse_nodes(items, parent: tuple[str, ...], source: str, line: int) -> list[Node]:
    where = " > ".join(parent) or "top level"
    if not isinstance(items, list):
        raise TaxonomyError(f"{source}:{line}: children of {where} must be a list of nodes")
    nodes, seen = [], {}
    for item in items:
        node = _parse_node(item, parent, source, line)
        if node.id in seen:
            raise TaxonomyError(
                f"{source}:{node.line}: node {node.name!r} has the same id {node.id!r} as its sibling "
                f"{seen[node.id]!r} (line {[n.line for n in nodes if n.id == node.id][0]}); rename one of them"
            )
        seen[node.id] = node.name
        nodes.append(node)
    return nodes


def _parse_node(item, parent: tuple[str, ...], source: str, line: int) -> Node:
    where = " > ".join(parent) or "top level"
    if not isinstance(item, dict):
        raise TaxonomyError(f"{source}:{line}: under {where}, every node must be a mapping with a `name`")
    line = getattr(item, "line", line)
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise TaxonomyError(f"{source}:{line}: a node under {where} has no `name` (a non-empty string)")
    name = name.strip()
    path = (*parent, name)
    label = " > ".join(path)
    unknown = set(item) - NODE_KEYS
    if unknown:
        raise TaxonomyError(
            f"{source}:{line}: node {label!r} has unknown keys {sorted(unknown)}; allowed: {sorted(NODE_KEYS)}"
        )
    description = item.get("description") or ""
    if not isinstance(description, str):
        raise TaxonomyError(f"{source}:{line}: node {label!r}: `description` must be a string")
    slug = slugify(name)
    if not slug:
        raise TaxonomyError(f"{source}:{line}: node {label!r}: the name has no letters or digits to make an id from")
    parent_id = "/".join(slugify(p) for p in parent)
    node = Node(
        name=name,
        description=description.strip(),
        path=path,
        id=f"{parent_id}/{slug}" if parent_id else slug,
        line=line,
    )
    children = item.get("children")
    if children is not None:
        node.children = _parse_nodes(children, path, source, line)
    return node


def load_taxonomy(path: str | Path) -> list[Node]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaxonomyError(f"{path}: cannot read the taxonomy: {exc.strerror}") from exc
    return parse_taxonomy(text, str(path))


def iter_nodes(nodes: list[Node]):
    for node in nodes:
        yield node
        yield from iter_nodes(node.children)


def leaves(nodes: list[Node]) -> list[Node]:
    return [node for node in iter_nodes(nodes) if node.is_leaf]


def write_node_files(nodes: list[Node], directory: str | Path, filename: str = "node.json") -> list[str]:
    """Write each discipline's file, touching only those whose content changed; return their ids."""
    ids = []
    for leaf in leaves(nodes):
        write_if_changed(Path(directory) / leaf.id / filename, dump_json(leaf.record()))
        ids.append(leaf.id)
    return ids


def select(ids: list[str], prefixes: list[str], source: str = "config") -> list[str]:
    """The discipline ids under any of `prefixes` (node ids: a field, a sub-field or a discipline); all if none."""
    if not prefixes:
        return ids
    unknown = [p for p in prefixes if not any(i == p or i.startswith(p + "/") for i in ids)]
    if unknown:
        raise TaxonomyError(f"{source}: `select` names {unknown}, which match no node of the taxonomy")
    return [i for i in ids if any(i == p or i.startswith(p + "/") for p in prefixes)]
