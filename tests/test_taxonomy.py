import os

import pytest

from glan.taxonomy import TaxonomyError, leaves, parse_taxonomy, select, slugify, write_node_files

DOC = """
taxonomy:
  - name: Natural Sciences
    description: The world.
    children:
      - name: Physics
        children:
          - name: Quantum Mechanics
            description: Small things.
  - name: Mathematics
"""


def test_ids_are_slugs_of_the_path_and_leaves_are_disciplines():
    nodes = parse_taxonomy(DOC)
    assert [leaf.id for leaf in leaves(nodes)] == ["natural-sciences/physics/quantum-mechanics", "mathematics"]
    assert slugify("Économie & Société") == "economie-societe"


def test_node_files_are_rewritten_only_when_their_content_changes(tmp_path):
    write_node_files(parse_taxonomy(DOC), tmp_path)
    quantum = tmp_path / "natural-sciences/physics/quantum-mechanics/node.json"
    maths = tmp_path / "mathematics/node.json"
    # Back-dated: a rewrite within the file system's timestamp granularity would otherwise keep the mtime.
    old = 1_000_000_000_000_000_000
    for path in (quantum, maths):
        os.utime(path, ns=(old, old))

    write_node_files(parse_taxonomy(DOC.replace("Small things.", "Very small things.")), tmp_path)

    assert maths.stat().st_mtime_ns == old, "an unchanged node file was rewritten: its jobs would re-run"
    assert quantum.stat().st_mtime_ns != old and b"Very small things." in quantum.read_bytes()


@pytest.mark.parametrize(
    "text, message",
    [
        ("taxonomy: [", "not valid YAML"),
        ("nodes: []", "top-level key `taxonomy`"),
        ("taxonomy: []", "empty"),
        ("taxonomy:\n  - description: x\n", "taxonomy.yaml:2: a node under top level has no `name`"),
        ("taxonomy:\n  - name: A\n  - name: a\n", "same id 'a'"),
        ("taxonomy:\n  - name: A\n    colour: red\n", "unknown keys ['colour']"),
        ("taxonomy:\n  - name: A\n    children: B\n", "children of A must be a list"),
        ("taxonomy:\n  - name: '!!!'\n", "no letters or digits"),
    ],
)
def test_bad_taxonomies_name_the_file_line_and_problem(text, message):
    with pytest.raises(TaxonomyError, match="taxonomy.yaml") as error:
        parse_taxonomy(text)
    assert message in str(error.value)


def test_select_picks_subtrees_and_rejects_unknown_ids():
    ids = ["a/b/c", "a/b/d", "a/e/f", "g"]
    assert select(ids, []) == ids
    assert select(ids, ["a/b", "g"]) == ["a/b/c", "a/b/d", "g"]
    assert select(ids, ["a/b/c"]) == ["a/b/c"]
    with pytest.raises(TaxonomyError, match="a/x"):
        select(ids, ["a/x"])
    with pytest.raises(TaxonomyError, match="'a/b/c/'"):
        select(ids, ["a/b/c/"])
