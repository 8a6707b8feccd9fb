"""Merging proposals: by slug, with votes, marked new or existing, framed by the scope's ancestors."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

import glan.curate.propose as propose_module
from glan.curate.propose import propose, render
from glan.llm.lookup import Outcome
from glan.llm.meter import Tally
from glan.llm.request import Reply
from glan.prompts import PromptError, Template
from glan.taxonomy import TaxonomyError, parse_taxonomy

TEMPLATE = Template(Path(__file__).resolve().parent.parent / "prompts/taxonomy.yaml")
SETTINGS = {
    "llm": {"model": "m"},
    "seed": 0,
    "scope": "engineering",
    "prompts": 2,
    "per_request": 5,
    "depth": 1,
    "sampling": {"temperature": 1.0, "top_p": 0.95, "max_tokens": 100},
}
TAXONOMY = parse_taxonomy(
    """
taxonomy:
  - name: Engineering
    children:
      - name: Civil Engineering
        description: Bridges and roads.
        children: [{name: Surveying}]
      - name: Chemical Engineering
  - name: Formal Sciences
    children:
      - name: Robotics
"""
)


def answering(replies: list[list[dict]], seen: list):
    """A stand-in for glan.llm.send.send: requests get the replies in order, across calls (None: no valid reply)."""
    queue = iter(replies)

    def send(requests, llm, cache_dir):
        seen.extend(requests)
        outcomes = []
        for request in requests:
            reply = next(queue)
            text = orjson.dumps({"nodes": reply}).decode() if reply is not None else None
            outcomes.append(
                Outcome(request=request, key="k", reply=Reply(text=text) if text else None, error=None if text else "x")
            )
        return outcomes, Tally(planned=len(requests), sent=len(requests))

    return send


def test_answers_merge_by_slug_with_votes_and_existing_nodes_keep_their_names(monkeypatch):
    first = [
        {"name": "civil engineering", "description": "Proposed wording."},
        {"name": "Robotics", "description": "Robots."},
        {"name": "Engineering", "description": "The scope itself: dropped."},
    ]
    second = [{"name": "Robotics ", "description": "Other wording."}, {"name": "Robotics", "description": "Twice."}]
    seen = []
    monkeypatch.setattr(propose_module, "send", answering([first, second], seen))
    proposal = propose(TAXONOMY, TEMPLATE, SETTINGS, {"backend": "openai"}, "cache")

    assert len(seen) == 2 and seen[0].messages != seen[1].messages
    assert "List up to 5 sub-fields of Engineering." in seen[0].messages[-1]["content"]
    (scope,) = proposal["taxonomy"]
    children = {c["id"]: c for c in scope["children"]}
    assert list(children) == [
        "engineering/civil-engineering",
        "engineering/chemical-engineering",
        "engineering/robotics",
    ]
    civil = children["engineering/civil-engineering"]
    assert (civil["name"], civil["status"], civil["votes"], civil["description"]) == (
        "Civil Engineering",
        "existing",
        1,
        "Bridges and roads.",
    )
    assert civil["children"] == [
        {"name": "Surveying", "id": "engineering/civil-engineering/surveying", "status": "existing"}
    ]
    assert "votes" not in children["engineering/chemical-engineering"]
    robotics = children["engineering/robotics"]
    assert (robotics["status"], robotics["votes"], robotics["description"]) == ("new", 2, "Robots.")
    assert robotics["elsewhere"] == ["formal-sciences/robotics"]
    assert proposal["counts"]["new"] == 1
    text = render(proposal, SETTINGS).decode()
    assert text.startswith("# Taxonomy nodes proposed by the LLM")
    assert "\n    children:\n      - name: Civil Engineering\n" in text


def test_levels_go_down_to_disciplines_and_failed_answers_are_skipped(monkeypatch):
    seen = []
    replies = [[{"name": "Mechatronics", "description": "d"}], None] + [[{"name": "Sensors", "description": "d"}]] * 6
    monkeypatch.setattr(propose_module, "send", answering(replies, seen))
    proposal = propose(TAXONOMY, TEMPLATE, {**SETTINGS, "depth": None}, {}, "cache")
    # Engineering is a field: sub-fields (2 prompts), then disciplines of the 3 sub-fields (3 x 2 prompts).
    assert len(seen) == 2 + 3 * 2
    assert proposal["counts"]["failed"] == 1 and proposal["counts"]["levels"] == 2
    assert "disciplines of Civil Engineering" in seen[2].messages[-1]["content"]
    mechatronics = proposal["taxonomy"][0]["children"][-1]
    assert mechatronics["id"] == "engineering/mechatronics"
    assert [c["name"] for c in mechatronics["children"]] == ["Sensors"]


def test_a_scope_below_the_top_is_framed_by_its_ancestors_and_unknown_scopes_fail(monkeypatch):
    monkeypatch.setattr(propose_module, "send", answering([[{"name": "Geodesy", "description": "d"}]] * 2, []))
    proposal = propose(TAXONOMY, TEMPLATE, {**SETTINGS, "scope": "engineering/civil-engineering"}, {}, "cache")
    (field,) = proposal["taxonomy"]
    assert (field["id"], [c["id"] for c in field["children"]]) == ("engineering", ["engineering/civil-engineering"])
    assert [c["name"] for c in field["children"][0]["children"]] == ["Surveying", "Geodesy"]
    with pytest.raises(TaxonomyError, match="propose.scope 'engineering/civil'"):
        propose(TAXONOMY, TEMPLATE, {**SETTINGS, "scope": "engineering/civil"}, {}, "cache")
    with pytest.raises(PromptError, match="only 5 variants"):
        propose(TAXONOMY, TEMPLATE, {**SETTINGS, "prompts": 6}, {}, "cache")
