"""Review: proposed nodes go into taxonomy.yaml with every comment, the order and the layout kept."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml

from glan.cli import main
from glan.curate.edit import apply
from glan.curate.review import ReviewError, ask, choose, load_proposal, review
from glan.taxonomy import iter_nodes, load_taxonomy

SHIPPED = Path(__file__).resolve().parent.parent / "taxonomy.yaml"

TAXONOMY = """\
# The curated taxonomy. Keep this comment.
#
taxonomy:
  # --- the sciences ---
  - name: Natural Sciences   # an inline comment
    description: 'Quoted: the physical world.'
    children:
      - name: Physics
        description: Matter and energy.
        children:
          - name: Optics
            description: Light.
      # comment after Physics, before Biology
      - name: Biology
        description: Life.
        children:
          - name: Genetics
  # --- mathematics comes last ---
  - name: Mathematics
    children:
      - name: Number Theory
        subjects:
          - Primes
# a comment at the very end
"""

PROPOSAL = {
    "taxonomy": [
        {
            "name": "Natural Sciences",
            "id": "natural-sciences",
            "status": "existing",
            "children": [
                {
                    "name": "Physics",
                    "id": "natural-sciences/physics",
                    "status": "existing",
                    "children": [
                        {"name": "Optics", "id": "natural-sciences/physics/optics", "status": "existing"},
                        {
                            "name": "Acoustics",
                            "id": "natural-sciences/physics/acoustics",
                            "status": "new",
                            "votes": 2,
                            "description": "Sound: how it is made, travels and is heard.",
                        },
                    ],
                },
                {
                    "name": "Biology",
                    "id": "natural-sciences/biology",
                    "status": "existing",
                    "children": [
                        {
                            "name": "Ecology",
                            "id": "natural-sciences/biology/ecology",
                            "status": "new",
                            "votes": 1,
                            "description": "Organisms and their environment.",
                        }
                    ],
                },
                {
                    "name": "Earth Sciences",
                    "id": "natural-sciences/earth-sciences",
                    "status": "new",
                    "votes": 3,
                    "description": "The planet.",
                    "children": [
                        {"name": "Geology", "id": "natural-sciences/earth-sciences/geology", "status": "new"},
                        {"name": "Oceanography", "id": "natural-sciences/earth-sciences/oceanography", "status": "new"},
                    ],
                },
            ],
        },
        {
            "name": "Mathematics",
            "id": "mathematics",
            "status": "existing",
            "children": [{"name": "Topology", "id": "mathematics/topology", "status": "new", "votes": 1}],
        },
        {"name": "Arts", "id": "arts", "status": "new", "children": [{"name": "Music", "id": "arts/music"}]},
    ]
}


@pytest.fixture
def files(tmp_path):
    taxonomy = tmp_path / "taxonomy.yaml"
    taxonomy.write_text(TAXONOMY)
    proposal = tmp_path / "proposed.yaml"
    proposal.write_text("# proposed\n" + yaml.safe_dump(PROPOSAL, sort_keys=False))
    return taxonomy, proposal


def only_insertions(before: str, after: str) -> list[str]:
    """The lines added; fails if any line of `before` was changed, dropped or moved."""
    added = []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        assert not line.startswith("- "), f"a line of the original changed or moved: {line!r}"
        if line.startswith("+ "):
            added.append(line[2:])
    return added


def test_accepting_nodes_keeps_every_comment_and_line_and_appends_under_the_right_parent(files):
    taxonomy, proposal = files
    printed = []
    changes = review(
        proposal, taxonomy, accept=["natural-sciences/physics/acoustics", "mathematics"], write=printed.append
    )

    after = taxonomy.read_text()
    added = only_insertions(TAXONOMY, after)
    assert added == [
        "          - name: Acoustics",
        "            description: 'Sound: how it is made, travels and is heard.'",
        "      - name: Topology",
    ]
    # Comments that followed the last child of a list stay where they were: before the next field.
    assert after.index("name: Acoustics") < after.index("# comment after Physics")
    assert after.index("name: Topology") < after.index("# a comment at the very end")
    assert after.endswith("          - Primes\n      - name: Topology\n# a comment at the very end\n")
    ids = {n.id for n in iter_nodes(load_taxonomy(taxonomy))}
    assert {"natural-sciences/physics/acoustics", "mathematics/topology"} <= ids
    assert [c.id for c in changes] == ["natural-sciences/physics/acoustics", "mathematics/topology"]
    assert printed[0].startswith("+ natural-sciences/physics/acoustics")
    assert "2 node(s) accepted" in printed[-1]


def test_a_new_subtree_goes_in_whole_and_the_end_of_file_comment_stays_last(files):
    taxonomy, proposal = files
    review(proposal, taxonomy, everything=True, reject=["natural-sciences/earth-sciences/oceanography"], write=print)
    after = taxonomy.read_text()
    only_insertions(TAXONOMY, after)
    assert after.rstrip().endswith("# a comment at the very end")
    ids = {n.id for n in iter_nodes(load_taxonomy(taxonomy))}
    assert {"natural-sciences/earth-sciences/geology", "arts/music", "natural-sciences/biology/ecology"} <= ids
    assert "natural-sciences/earth-sciences/oceanography" not in ids
    assert after.index("- name: Arts") > after.index("- name: Mathematics")


def test_reviewing_the_same_proposal_again_adds_nothing(files):
    taxonomy, proposal = files
    review(proposal, taxonomy, everything=True, write=lambda _: None)
    once = taxonomy.read_text()
    printed = []
    review(proposal, taxonomy, everything=True, write=printed.append)
    assert taxonomy.read_text() == once
    assert "does not already have" in printed[-1]


def test_choosing_takes_subtrees_and_new_ancestors_and_reject_wins(files):
    taxonomy, proposal = files
    nodes = load_proposal(proposal, {n.id for n in iter_nodes(load_taxonomy(taxonomy))})
    assert choose(nodes, accept=["natural-sciences/earth-sciences/geology"]) == {
        "natural-sciences/earth-sciences",
        "natural-sciences/earth-sciences/geology",
    }
    assert choose(nodes, accept=["natural-sciences/earth-sciences"]) == {
        "natural-sciences/earth-sciences",
        "natural-sciences/earth-sciences/geology",
        "natural-sciences/earth-sciences/oceanography",
    }
    assert choose(nodes, accept=["arts/music"], reject=["arts"]) == set()
    assert len(choose(nodes, everything=True)) == 8
    with pytest.raises(ReviewError, match="natural-sciences/chemistry"):
        choose(nodes, accept=["natural-sciences/chemistry"])


def test_interactive_review_asks_node_by_node_and_skips_rejected_subtrees(files):
    taxonomy, proposal = files
    nodes = load_proposal(proposal, {n.id for n in iter_nodes(load_taxonomy(taxonomy))})
    answers = iter(["y", "maybe", "n", "a", "s"])
    shown = []
    accepted = ask(nodes, lambda prompt: next(answers), shown.append)
    # acoustics: y; ecology: "maybe" then n; earth sciences: a (its children come without asking); topology: stop
    earth = {f"natural-sciences/earth-sciences{leaf}" for leaf in ("", "/geology", "/oceanography")}
    assert accepted == {"natural-sciences/physics/acoustics", *earth}
    asked = [line for line in shown if line.startswith("\n[")]
    assert len(asked) == 4
    assert any("please answer" in line for line in shown)
    text, _ = apply(
        taxonomy, nodes, choose(nodes, answered=accepted, reject=["natural-sciences/earth-sciences/geology"])
    )
    assert "- name: Oceanography" in text and "Geology" not in text and "Ecology" not in text


def test_the_shipped_taxonomy_round_trips_byte_for_byte_and_takes_a_node_as_a_pure_insertion(tmp_path):
    taxonomy = tmp_path / "taxonomy.yaml"
    taxonomy.write_text(SHIPPED.read_text())
    proposal = tmp_path / "proposed.yaml"
    proposal.write_text(
        yaml.safe_dump(
            {
                "taxonomy": [
                    {
                        "name": "Engineering and Technology",
                        "children": [
                            {
                                "name": "Civil Engineering",
                                "children": [{"name": "Tunnel Engineering", "description": "Tunnels: design, boring."}],
                            }
                        ],
                    }
                ]
            }
        )
    )
    nodes = load_proposal(proposal, {n.id for n in iter_nodes(load_taxonomy(taxonomy))})
    unchanged, _ = apply(taxonomy, nodes, set())
    assert unchanged == SHIPPED.read_text()
    assert main(["review", "--proposal", str(proposal), "--taxonomy", str(taxonomy), "--all"]) == 0
    added = only_insertions(SHIPPED.read_text(), taxonomy.read_text())
    assert added == [
        "          - name: Tunnel Engineering",
        "            description: 'Tunnels: design, boring.'",
    ]


def test_the_cli_lists_new_nodes_and_refuses_to_guess_without_a_terminal(files, capsys):
    taxonomy, proposal = files
    assert main(["review", "--proposal", str(proposal), "--taxonomy", str(taxonomy), "--list"]) == 0
    listed = capsys.readouterr().out
    assert "natural-sciences/earth-sciences/geology" in listed and "natural-sciences/physics/optics" not in listed
    assert main(["review", "--proposal", str(proposal), "--taxonomy", str(taxonomy)]) == 2
    assert main(["review", "--proposal", str(proposal), "--taxonomy", str(taxonomy), "--accept", "nope"]) == 1
    assert "no node of the proposal" in capsys.readouterr().err
    assert taxonomy.read_text() == TAXONOMY
