"""Checks on the curated taxonomy.yaml shipped at the repository root."""

from __future__ import annotations

from pathlib import Path

import pytest

from glan.taxonomy import iter_nodes, leaves, load_taxonomy

TAXONOMY = Path(__file__).resolve().parent.parent / "taxonomy.yaml"

# The areas the issue asks the shipped taxonomy to cover, by the top-level field that holds each.
REQUIRED_FIELDS = [
    "Natural Sciences",
    "Formal Sciences",
    "Social Sciences",
    "Business, Economics and Law",
    "Humanities",
    "Arts",
    "Applied Sciences",
    "Engineering and Technology",
    "Medicine and Health",
    "Vocational Skills and Services",
    "General Capabilities",
]


@pytest.fixture(scope="module")
def roots():
    return load_taxonomy(TAXONOMY)


def test_at_least_126_disciplines(roots):
    assert len(leaves(roots)) >= 126


def test_every_node_has_a_description(roots):
    missing = [node.id for node in iter_nodes(roots) if not node.description.strip()]
    assert missing == []


def test_ids_are_unique(roots):
    ids = [node.id for node in iter_nodes(roots)]
    assert len(ids) == len(set(ids))


def test_at_least_eight_top_level_fields(roots):
    assert len(roots) >= 8


def test_required_areas_are_top_level_fields_in_order(roots):
    names = [node.name for node in roots]
    assert [name for name in names if name in REQUIRED_FIELDS] == REQUIRED_FIELDS


def test_every_field_has_disciplines(roots):
    assert all(leaves(node.children) for node in roots)


@pytest.mark.parametrize(
    "path",
    [
        ("Formal Sciences", "Statistics and Probability"),
        ("Formal Sciences", "Logic"),
        ("Formal Sciences", "Theoretical Computer Science"),
        ("Vocational Skills and Services", "Commerce and Retail", "Retailing"),
        ("Vocational Skills and Services", "Food and Culinary Arts", "Cooking"),
        ("Vocational Skills and Services", "Hospitality and Tourism"),
        ("Vocational Skills and Services", "Skilled Trades"),
        ("General Capabilities", "Writing"),
        ("General Capabilities", "Programming"),
        ("General Capabilities", "Reasoning"),
        ("General Capabilities", "Communication and Conversation"),
        ("General Capabilities", "Languages and Translation", "Translation"),
    ],
)
def test_named_areas_are_present(roots, path):
    assert path in {node.path for node in iter_nodes(roots)}


def test_depth_is_at_most_three(roots):
    assert max(len(node.path) for node in iter_nodes(roots)) <= 3
