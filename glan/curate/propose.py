"""Propose taxonomy nodes: ask the LLM, from several prompts, for fields, then sub-fields, then disciplines.

Level by level below the scope, every node of the level is asked for its children once per
prompt variant (the template's `variants`); the answers are merged by slug (the node id, so
"Civil engineering" and "Civil Engineering" are one node), each answer naming a node counts as
a vote, and every node is marked `new` or `existing` against taxonomy.yaml. Existing children
that no answer named stay in the proposal (existing, 0 votes) and are expanded too, so the file
shows the scope's whole subtree. Requests are built with the stages' `make_request` and go
through `glan.llm.send.send`, so the cache, retries and the endpoint identity are the build's.

Prompts name a node by its path only, never by descriptions from taxonomy.yaml: accepting a
proposal (or editing a description) leaves the requests as they were, and a re-run costs nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from glan.config import REPLY_LLM_KEYS
from glan.io import write_bytes_atomic
from glan.llm.send import send
from glan.prompts import PromptError, Template
from glan.stages.contract import make_request
from glan.stages.shapes import array, record, text
from glan.taxonomy import Node, TaxonomyError, iter_nodes, load_taxonomy, slugify

log = logging.getLogger("glan")

PLACEHOLDERS = {"variant", "path", "name", "level", "level_one", "count"}
LEVELS = [("fields", "field"), ("sub-fields", "sub-field"), ("disciplines", "discipline")]
DEEPER = ("sub-disciplines", "sub-discipline")
EVERYTHING = "all human knowledge and capabilities"
TAXONOMY_DEPTH = 3  # fields -> sub-fields -> disciplines


def propose_llm(config: dict) -> dict:
    """The full llm settings of the proposal: the global `llm` with `propose.llm` on top."""
    return {**config["llm"], **config["propose"].get("llm", {})}


def propose_settings(config: dict) -> dict:
    """What the proposal depends on (tracked as the rule's params): reply-relevant llm keys, seed, `propose`."""
    llm = propose_llm(config)
    own = {k: v for k, v in config["propose"].items() if k != "llm"}
    settings = {"llm": {k: llm[k] for k in REPLY_LLM_KEYS if k in llm}, "seed": config["seed"], **own}
    return {k: settings[k] for k in sorted(settings)}


def schema(settings: dict) -> dict:
    node = record(name=text(80), description=text(300))
    return record(nodes=array(node, settings["per_request"]))


@dataclass
class Proposed:
    name: str
    path: tuple[str, ...]
    id: str
    status: str  # "new" or "existing"
    description: str = ""
    votes: int = 0
    existing: Node | None = None
    elsewhere: list[str] = field(default_factory=list)
    children: list[Proposed] = field(default_factory=list)

    def child(self, slug: str) -> Proposed | None:
        return next((c for c in self.children if c.id.rsplit("/", 1)[-1] == slug), None)

    def document(self) -> dict:
        entry: dict[str, object] = {"name": self.name, "id": self.id, "status": self.status}
        if self.status == "new" or self.votes:
            entry["votes"] = self.votes
        if self.description:
            entry["description"] = self.description
        if self.elsewhere:
            entry["elsewhere"] = self.elsewhere
        if self.children:
            entry["children"] = [c.document() for c in self.children]
        return entry


def _existing(node: Node) -> Proposed:
    return Proposed(node.name, node.path, node.id, "existing", node.description, existing=node)


def _expandable(node: Proposed) -> Proposed:
    """A node about to be asked for its children starts with the children it already has."""
    if node.existing is not None and not node.children:
        node.children = [_existing(c) for c in node.existing.children]
    return node


def scope_chain(roots: list[Node], scope: str | None) -> tuple[Proposed, list[Proposed]]:
    """The node to expand, and the chain of its ancestors (outermost first) that frames it in the output."""
    if not scope:
        top = Proposed(EVERYTHING, (), "", "existing")
        top.children = [_existing(r) for r in roots]
        return top, []
    by_id = {n.id: n for n in iter_nodes(roots)}
    if scope not in by_id:
        near = sorted(i for i in by_id if scope.split("/")[-1] in i)[:5]
        raise TaxonomyError(
            f"config: propose.scope {scope!r} is no node of the taxonomy" + (f"; did you mean {near}?" if near else "")
        )
    node = by_id[scope]
    chain = [by_id["/".join(node.id.split("/")[: i + 1])] for i in range(len(node.path) - 1)]
    return _existing(node), [Proposed(n.name, n.path, n.id, "existing", n.description, existing=n) for n in chain]


def level_names(depth: int) -> tuple[str, str]:
    return LEVELS[depth] if depth < len(LEVELS) else DEEPER


def plan_level(frontier: list[Proposed], settings: dict, template: Template) -> list:
    """One request per node of the level and prompt variant; pure, like every stage's plan."""
    requests = []
    for parent in frontier:
        many, one = level_names(len(parent.path))
        for index, variant in enumerate(template.variants[: settings["prompts"]]):
            messages = template.render(
                variant=variant,
                path=" > ".join(parent.path) or EVERYTHING,
                name=parent.name,
                level=many,
                level_one=one,
                count=settings["per_request"],
            )
            requests.append((parent, make_request(settings, messages, schema(settings), "taxonomy", sample=index)))
    return requests


def merge(parent: Proposed, answer: list[dict], elsewhere: dict[str, list[str]]) -> None:
    """Fold one answer into the parent's children: one vote per answer naming a node, first wording kept."""
    named = set()
    for item in answer:
        name = " ".join(item["name"].split())
        slug = slugify(name)
        if not slug or slug in named or slug == slugify(parent.name):
            continue
        named.add(slug)
        child = parent.child(slug)
        if child is None:
            node_id = f"{parent.id}/{slug}" if parent.id else slug
            child = Proposed(name, (*parent.path, name), node_id, "new", " ".join(item["description"].split()))
            child.elsewhere = [i for i in elsewhere.get(slug, []) if i != node_id]
            parent.children.append(child)
        child.votes += 1


def propose(roots: list[Node], template: Template, settings: dict, llm: dict, cache_dir: str) -> dict:
    """Expand the scope level by level; return the proposal document and counts for the log and the header."""
    if settings["prompts"] > len(template.variants):
        raise PromptError(
            f"{template.path}: propose.prompts is {settings['prompts']} but the template has only "
            f"{len(template.variants)} variants; add variants or lower propose.prompts"
        )
    scope, chain = scope_chain(roots, settings["scope"])
    levels = settings["depth"] or max(1, TAXONOMY_DEPTH - len(scope.path))
    elsewhere: dict[str, list[str]] = {}
    for node in iter_nodes(roots):
        elsewhere.setdefault(node.id.rsplit("/", 1)[-1], []).append(node.id)

    frontier, counts = [_expandable(scope)], {"requests": 0, "sent": 0, "cached": 0, "failed": 0}
    for depth in range(levels):
        planned = plan_level(frontier, settings, template)
        outcomes, stats = send([request for _, request in planned], llm, cache_dir)
        log.info("propose: level %d (%s): %s", depth + 1, level_names(len(frontier[0].path))[0], stats.summary())
        counts["requests"] += len(planned)
        counts["sent"] += stats.sent
        counts["cached"] += stats.cached
        for (parent, _), outcome in zip(planned, outcomes, strict=True):
            if outcome.valid:
                merge(parent, outcome.json()["nodes"], elsewhere)
            else:
                counts["failed"] += 1
        frontier = [_expandable(child) for parent in frontier for child in parent.children]
        if not frontier:
            break

    top = scope.children if not scope.path else [scope]
    for outer in reversed(chain):
        outer.children = top
        top = [outer]
    new = [n for n in _walk(top) if n.status == "new"]
    counts.update(new=len(new), levels=levels)
    return {"taxonomy": [n.document() for n in top], "counts": counts, "scope": settings["scope"] or None}


def _walk(nodes: list[Proposed]):
    for node in nodes:
        yield node
        yield from _walk(node.children)


class _Dumper(yaml.SafeDumper):
    """Indents lists under their key, as taxonomy.yaml does."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)


def render(proposal: dict, settings: dict) -> bytes:
    counts = proposal["counts"]
    header = [
        "# Taxonomy nodes proposed by the LLM, for review: `glan review` accepts them into taxonomy.yaml.",
        f"# scope: {proposal['scope'] or 'everything'}; {counts['levels']} level(s) below it; "
        f"{settings['prompts']} prompt variant(s) per node; {counts['requests']} requests "
        f"({counts['sent']} sent, {counts['cached']} from the cache, {counts['failed']} without a valid reply).",
        f"# {counts['new']} new node(s). status: new (not in taxonomy.yaml) or existing; votes: how many answers",
        "# named the node; elsewhere: existing nodes with the same name at another place.",
    ]
    body = yaml.dump(
        {"taxonomy": proposal["taxonomy"]}, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000
    )
    return ("\n".join(header) + "\n" + body).encode()


def run_proposal(taxonomy: str, template: str, output: str, settings: dict, llm: dict, cache_dir: str) -> dict:
    prompt = Template(template)
    prompt.check(PLACEHOLDERS)
    proposal = propose(load_taxonomy(taxonomy), prompt, settings, llm, cache_dir)
    write_bytes_atomic(Path(output), render(proposal, settings))
    log.info("propose: %d new node(s) written to %s", proposal["counts"]["new"], output)
    return proposal
