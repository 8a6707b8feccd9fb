"""The taxonomy: parse and check `taxonomy.yaml`, give nodes path ids, and write one file per discipline.

Per-discipline files are rewritten only when their content changes, so an edit to one node
leaves every other node's file (bytes and mtime) alone and Snakemake re-runs that node only.

A node may also customise how it is built (see CUSTOM_KEYS): `instructions` for every prompt,
pinned `subjects` (a discipline only), and `stages` overrides of counts, sampling or model.
Instructions and stage overrides are inherited: a field's apply to all its disciplines, a
child's instructions follow its parent's and its stage keys win over its parent's. The
resolved values go into the discipline's file, so an override re-runs only the nodes it covers.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from glan.config import deep_merge
from glan.io import dump_json, write_if_changed
from glan.stages import GLAN_STAGES, STAGES
from glan.stages.subjects import LEVELS

CUSTOM_KEYS = ("instructions", "subjects", "stages")
NODE_KEYS = {"name", "description", "children", *CUSTOM_KEYS}

DEFAULT_LEVEL = "undergraduate"

# Ids in UTF-8 bytes. A part is a node's folder under results/nodes/, logs/ and benchmarks/, where a path
# component holds 255 bytes: a longer part is cut and made unique. The Slurm executor names a log folder
# after the whole id (its slashes made underscores), so a whole id must fit one component too: a deeper
# one is refused, naming the line.
ID_BYTES = 80
ID_TOTAL = 250
ID_HASH = 8  # hex digits of the hash that keeps two cut parts apart

# What a node may override per stage: the count keys its stage declares (glan.stages, `node_settings`),
# `sampling` keys, and the model. How each count key is checked:
_POSITIVE_INT = ("an integer >= 1", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1)
_SHARE = ("a number from 0 to 1", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1)
_NUMBER = ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))
COUNT_CHECKS = {
    **dict.fromkeys(("queries", "per_query", "subtopics", "sessions", "concepts_per_session"), _POSITIVE_INT),
    **dict.fromkeys(("per_subject", "max_concepts"), _POSITIVE_INT),
    "single_session_share": _SHARE,
}
SAMPLING_OVERRIDES = {
    "temperature": ("a number from 0 to 2", lambda v: _NUMBER[1](v) and 0 <= v <= 2),
    "top_p": ("a number above 0 and at most 1", lambda v: _NUMBER[1](v) and 0 < v <= 1),
    "max_tokens": _POSITIVE_INT,
    "presence_penalty": _NUMBER,
    "frequency_penalty": _NUMBER,
    "repeat_penalty": ("a number >= 0", lambda v: _NUMBER[1](v) and v >= 0),
    "stop": ("a list of strings", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
}
LLM_OVERRIDES = {"model": ("a non-empty string", lambda v: isinstance(v, str) and bool(v.strip()))}


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
    instructions: str = ""  # resolved: the ancestors' instructions, then this node's
    subjects: list[dict] | None = None  # pinned subjects: the subjects stage sends nothing for this node
    stages: dict = field(default_factory=dict)  # resolved stage overrides: the ancestors', then this node's
    own: dict = field(default_factory=dict)  # the customisation keys written on this node itself

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def record(self) -> dict:
        """What a discipline's jobs see of the taxonomy: nothing outside this node and its ancestors' names.

        Customisation keys appear only when set, so nodes without any keep the record (and the
        build outputs) they had before customisation existed.
        """
        record: dict[str, object] = {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "path": list(self.path),
        }
        if self.instructions:
            record["instructions"] = self.instructions
        if self.subjects is not None:
            record["subjects"] = self.subjects
        if self.stages:
            record["stages"] = self.stages
        return record


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
    """A node name's id part: readable in the name's own script, stable, and at most ID_BYTES of UTF-8.

    A name whose letters all have a Latin form (ASCII, or accented Latin) keeps the id it always
    had: accents dropped, ASCII letters and digits, a dash for anything else. A name with a letter
    of another script (Cyrillic, CJK, Arabic, ß, ł...) keeps every letter instead of losing them:
    NFKC, casefolded, runs of what is not a letter, digit or mark made one dash. A longer id is cut
    and made unique with a hash of all of it.
    """
    text = unicodedata.normalize("NFKC", name)
    if all(_has_latin_form(char) for char in text if unicodedata.category(char)[0] in "LN"):
        ascii_name = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
        slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    else:
        folded = unicodedata.normalize("NFKC", text.casefold())
        slug = "-".join("".join(c if unicodedata.category(c)[0] in "LNM" else " " for c in folded).split())
    return _bounded(slug)


def _has_latin_form(char: str) -> bool:
    """Whether a letter or digit decomposes to an ASCII one (é, ﬁ, ², full-width A), as the first ids were made."""
    return any(c.isascii() and c.isalnum() for c in unicodedata.normalize("NFKD", char))


def _bounded(slug: str) -> str:
    """The id part cut to ID_BYTES of UTF-8 (on a character, not mid-way through one) plus a hash of the whole."""
    if len(slug.encode()) <= ID_BYTES:
        return slug
    digest = hashlib.sha256(slug.encode()).hexdigest()[:ID_HASH]
    cut = slug.encode()[: ID_BYTES - ID_HASH - 1].decode(errors="ignore").rstrip("-")
    return f"{cut}-{digest}"


def _yaml_type(value) -> tuple[str, bool]:
    """What YAML made of a name that is not text, and whether `str(value)` is what was written."""
    if isinstance(value, bool):
        return "a true/false value", False
    if isinstance(value, (int, float)):
        return "a number", True
    if isinstance(value, (list, dict)):
        return ("a list" if isinstance(value, list) else "a mapping"), False
    return f"a {type(value).__name__}", True


def _plain(value):
    """The YAML loader's line-keeping mappings as plain dicts, for records and comparisons."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


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
    roots = _parse_nodes(document["taxonomy"], (), source, getattr(document, "line", 1), None)
    if not roots:
        raise TaxonomyError(f"{source}: the taxonomy is empty; add at least one node with a `name`")
    return roots


def _parse_nodes(items, parent: tuple[str, ...], source: str, line: int, up: Node | None) -> list[Node]:
    where = " > ".join(parent) or "top level"
    if not isinstance(items, list):
        raise TaxonomyError(f"{source}:{line}: children of {where} must be a list of nodes")
    nodes: list[Node] = []
    seen: dict[str, str] = {}
    for item in items:
        node = _parse_node(item, parent, source, line, up)
        if node.id in seen:
            raise TaxonomyError(
                f"{source}:{node.line}: node {node.name!r} has the same id {node.id!r} as its sibling "
                f"{seen[node.id]!r} (line {[n.line for n in nodes if n.id == node.id][0]}); rename one of them"
            )
        seen[node.id] = node.name
        nodes.append(node)
    return nodes


def _parse_node(item, parent: tuple[str, ...], source: str, line: int, up: Node | None) -> Node:
    where = " > ".join(parent) or "top level"
    if not isinstance(item, dict):
        raise TaxonomyError(f"{source}:{line}: under {where}, every node must be a mapping with a `name`")
    line = getattr(item, "line", line)
    name = item.get("name")
    if name is not None and not isinstance(name, str):
        kind, quoted = _yaml_type(name)
        raise TaxonomyError(
            f"{source}:{line}: a node under {where} has a `name` that YAML reads as {kind} ({name}), not text; "
            + (f'quote it: name: "{name}"' if quoted else "write the name in quotes")
        )
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
        raise TaxonomyError(
            f"{source}:{line}: node {label!r}: the name has no letters or digits to make an id from; "
            "write it with at least one"
        )
    node_id = f"{up.id}/{slug}" if up else slug
    if len(node_id.encode()) > ID_TOTAL:
        raise TaxonomyError(
            f"{source}:{line}: node {label!r}: its id {node_id!r} is {len(node_id.encode())} bytes of UTF-8, and "
            f"an id may have {ID_TOTAL} (a folder is named after it); shorten its name or its parents'"
        )
    node = Node(name=name, description=description.strip(), path=path, id=node_id, line=line)
    own = {key: _plain(item[key]) for key in CUSTOM_KEYS if key in item}
    node.own = own
    if "instructions" in own:
        if not isinstance(own["instructions"], str) or not own["instructions"].strip():
            raise TaxonomyError(
                f"{source}:{line}: node {label!r}: `instructions` must be a non-empty string "
                "(a language, a style, a level)"
            )
        own["instructions"] = own["instructions"].strip()
    if "stages" in own:
        own["stages"] = _check_stages(item["stages"], label, source, line)
    inherited = up.instructions if up else ""
    node.instructions = "\n".join(part for part in (inherited, own.get("instructions", "")) if part)
    node.stages = deep_merge(up.stages if up else {}, own.get("stages", {}))
    children = item.get("children")
    if children is not None:
        node.children = _parse_nodes(children, path, source, line, node)
    if "subjects" in own:
        if node.children:
            raise TaxonomyError(
                f"{source}:{line}: node {label!r}: pinned `subjects` belong on a discipline (a node without "
                "children); move them to the disciplines under it"
            )
        node.subjects = own["subjects"] = _check_subjects(item["subjects"], label, source, line)
    return node


def _check_subjects(items, label: str, source: str, line: int) -> list[dict]:
    """Pinned subjects: names, or mappings with `name`, `level` and `subtopics`; normalised to mappings."""
    if not isinstance(items, list) or not items:
        raise TaxonomyError(
            f"{source}:{line}: node {label!r}: `subjects` must be a non-empty list of subject names or mappings"
        )
    subjects, seen = [], set()
    for item in items:
        where = f"{source}:{getattr(item, 'line', line)}: node {label!r}"
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            raise TaxonomyError(f"{where}: a pinned subject is a name or a mapping with `name`, `level`, `subtopics`")
        unknown = set(item) - {"name", "level", "subtopics"}
        if unknown:
            raise TaxonomyError(
                f"{where}: a pinned subject has unknown keys {sorted(unknown)}; allowed: name, level, subtopics"
            )
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise TaxonomyError(f"{where}: a pinned subject needs a `name` (a non-empty string)")
        level = item.get("level", DEFAULT_LEVEL)
        if level not in LEVELS:
            raise TaxonomyError(f"{where}: pinned subject {name!r} has level {level!r}; choose one of {LEVELS}")
        subtopics = item.get("subtopics", [])
        if not isinstance(subtopics, list) or not all(isinstance(t, str) and t.strip() for t in subtopics):
            raise TaxonomyError(f"{where}: pinned subject {name!r}: `subtopics` must be a list of non-empty strings")
        norm = " ".join(name.lower().split())
        if norm in seen:
            raise TaxonomyError(f"{where}: subject {name!r} is pinned twice")
        seen.add(norm)
        subjects.append({"name": name.strip(), "level": level, "subtopics": [t.strip() for t in subtopics]})
    return subjects


def _check_stages(value, label: str, source: str, line: int) -> dict:
    """`stages: {<stage>: {<count key>: n, sampling: {...}, llm: {model: ...}}}`, checked key by key."""
    where = f"{source}:{getattr(value, 'line', line)}: node {label!r}"
    if not isinstance(value, dict):
        raise TaxonomyError(f"{where}: `stages` must be a mapping of stage names ({', '.join(GLAN_STAGES)})")
    checked: dict[str, dict] = {}
    for stage, override in value.items():
        at = f"{source}:{getattr(override, 'line', getattr(value, 'line', line))}: node {label!r}"
        if stage not in GLAN_STAGES:
            raise TaxonomyError(f"{where}: `stages` has unknown stage {stage!r}; stages: {list(GLAN_STAGES)}")
        if not isinstance(override, dict) or not override:
            raise TaxonomyError(f"{where}: `stages.{stage}` must be a mapping of settings to override")
        allowed = {**{k: COUNT_CHECKS[k] for k in STAGES[stage].node_settings}, "sampling": None, "llm": None}
        checked[stage] = {}
        for key, setting in override.items():
            if key not in allowed:
                raise TaxonomyError(f"{at}: `stages.{stage}` cannot set {key!r}; it may set {sorted(allowed)}")
            if key in ("sampling", "llm"):
                rules = SAMPLING_OVERRIDES if key == "sampling" else LLM_OVERRIDES
                sub_at = f"{source}:{getattr(setting, 'line', line)}: node {label!r}"
                if not isinstance(setting, dict) or not setting:
                    raise TaxonomyError(f"{at}: `stages.{stage}.{key}` must be a mapping of {sorted(rules)}")
                for sub, sub_value in setting.items():
                    if sub not in rules:
                        raise TaxonomyError(
                            f"{sub_at}: `stages.{stage}.{key}` cannot set {sub!r}; it may set {sorted(rules)}"
                        )
                    _check_value(sub_value, rules[sub], f"{sub_at}: `stages.{stage}.{key}.{sub}`")
                checked[stage][key] = _plain(setting)
            else:
                _check_value(setting, allowed[key], f"{at}: `stages.{stage}.{key}`")
                checked[stage][key] = setting
    return checked


def _check_value(value, rule, what: str) -> None:
    description, ok = rule
    if not ok(value):
        raise TaxonomyError(f"{what} must be {description}, not {value!r}")


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


def select(ids: list[str], chosen: list[str] | dict, source: str = "config") -> list[str]:
    """The discipline ids `select` picks: those under any listed node id (a field, a sub-field or a
    discipline; all if none), or with `{spread: n}` n disciplines spread over the fields (`spread`)."""
    if isinstance(chosen, dict):
        return spread(ids, chosen["spread"])
    if not chosen:
        return ids
    unknown = [p for p in chosen if not any(i == p or i.startswith(p + "/") for i in ids)]
    if unknown:
        raise TaxonomyError(
            f"{source}: `select` names {unknown}, which match no node of the taxonomy; list ids of its nodes "
            "(`glan inspect` prints them), or build a sample of any taxonomy with `select: {spread: 4}`, "
            "or all of it with `select: []`"
        )
    return [i for i in ids if any(i == p or i.startswith(p + "/") for p in chosen)]


def spread(ids: list[str], count: int) -> list[str]:
    """`count` disciplines spread over the taxonomy: the disciplines taken in turn from each field, and
    within a field in turn from each sub-field (the first of the first sub-field of every field, then
    the first of every field's second sub-field, ...). It names no node, so it suits any taxonomy: the
    default config's `select` is this, and a first run on one's own taxonomy.yaml builds a sample of
    it. Returned in taxonomy order."""
    tree: dict = {}
    for i in ids:
        branch = tree
        for part in i.split("/"):
            branch = branch.setdefault(part, {})
        branch[""] = i

    def in_turn(branch: dict) -> list[str]:
        if "" in branch:
            return [branch[""]]
        orders = [in_turn(child) for child in branch.values()]
        return [order[rank] for rank in range(max(map(len, orders))) for order in orders if rank < len(order)]

    picked = set(in_turn(tree)[:count]) if tree else set()
    return [i for i in ids if i in picked]
