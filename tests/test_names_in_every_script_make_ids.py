"""A taxonomy written in any script gets readable, stable ids; the ids made before stay as they were.

Names with a letter of another script than Latin keep their letters (NFKC, casefolded); names in
Latin letters, accented or not, keep the ids they always had. tests/fixtures/shipped_taxonomy_ids.json
holds the shipped taxonomy's ids as the first code made them, before names of other scripts had ids.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from helpers import PER_DISCIPLINE_TOTAL, QUESTIONS_PER_DISCIPLINE, ROOT

from glan.taxonomy import TaxonomyError, iter_nodes, leaves, load_taxonomy, parse_taxonomy, slugify

pytestmark = pytest.mark.dataset_only  # `workflow` builds DATASET: the property ends at the dataset

FIXTURE = Path(__file__).parent / "fixtures/shipped_taxonomy_ids.json"

# Four scripts, one field each: Cyrillic, Chinese, Arabic, accented Latin.
FOUR_SCRIPTS = {
    "taxonomy": [
        {"name": "Естественные науки", "children": [{"name": "Химия", "description": "Вещества и их превращения."}]},
        {"name": "数学", "children": [{"name": "数论", "description": "整数的性质。"}]},
        {"name": "العلوم", "children": [{"name": "الكيمياء", "description": "المواد وتفاعلاتها."}]},
        {"name": "Économie", "children": [{"name": "Théorie des jeux", "description": "Décisions stratégiques."}]},
    ]
}
FOUR_IDS = ["естественные-науки/химия", "数学/数论", "العلوم/الكيمياء", "economie/theorie-des-jeux"]


def ids(text: str) -> list[str]:
    return [node.id for node in iter_nodes(parse_taxonomy(text))]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Химия", "химия"),
        ("Естественные науки", "естественные-науки"),
        ("日本語学", "日本語学"),
        ("الكيمياء", "الكيمياء"),
        ("हिन्दी साहित्य", "हिन्दी-साहित्य"),  # the vowel signs and the virama (marks) stay with their letters
        ("Ελληνική Γραμματεία", "ελληνική-γραμματεία"),
        ("Straße", "strasse"),  # no Latin form without losing a letter: casefolded
        ("Химия (общая), 2", "химия-общая-2"),
    ],
)
def test_a_name_in_any_script_keeps_its_letters_in_its_id(name, expected):
    assert slugify(name) == expected


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Quantum Mechanics", "quantum-mechanics"),
        ("C++ & Systems_Programming", "c-systems-programming"),
        ("Économie & Société", "economie-societe"),
        ("Tiếng Việt", "tieng-viet"),
        ("Women’s Studies", "womens-studies"),
        ("ＡＢＣ ２", "abc-2"),
    ],
)
def test_a_name_in_latin_letters_keeps_the_id_it_had(name, expected):
    assert slugify(name) == expected


def test_the_shipped_taxonomys_ids_are_those_made_before_names_of_other_scripts_had_ids():
    before = json.loads(FIXTURE.read_text(encoding="utf-8"))
    now = {" > ".join(node.path): node.id for node in iter_nodes(load_taxonomy(ROOT / "taxonomy.yaml"))}
    assert now == before


def test_names_that_differ_only_in_another_script_no_longer_collide():
    text = "taxonomy:\n  - name: Естественные науки\n    children:\n      - name: Химия 2\n      - name: Физика 2\n"
    assert ids(text) == ["естественные-науки", "естественные-науки/химия-2", "естественные-науки/физика-2"]


def test_two_names_with_one_id_are_refused_naming_both_lines():
    text = "taxonomy:\n  - name: Науки\n    children:\n      - name: Химия 2\n      - name: ХИМИЯ-2\n"
    with pytest.raises(TaxonomyError) as error:
        parse_taxonomy(text)
    assert str(error.value) == (
        "taxonomy.yaml:5: node 'ХИМИЯ-2' has the same id 'науки/химия-2' as its sibling 'Химия 2' (line 4); "
        "rename one of them"
    )


def test_a_name_of_no_letter_or_digit_says_so_truly():
    with pytest.raises(TaxonomyError, match=r"taxonomy.yaml:2: node '\+\+\+': the name has no letters or digits"):
        parse_taxonomy("taxonomy:\n  - name: '+++'\n")


@pytest.mark.parametrize(
    "written, told",
    [
        ("2024", 'reads as a number (2024), not text; quote it: name: "2024"'),
        ("1.5", 'reads as a number (1.5), not text; quote it: name: "1.5"'),
        ("2024-01-01", 'reads as a date (2024-01-01), not text; quote it: name: "2024-01-01"'),
        ("yes", "reads as a true/false value (True), not text; write the name in quotes"),
    ],
)
def test_a_name_yaml_reads_as_no_text_is_told_to_be_quoted(written, told):
    with pytest.raises(TaxonomyError) as error:
        parse_taxonomy(f"taxonomy:\n  - name: {written}\n")
    assert str(error.value) == f"taxonomy.yaml:2: a node under top level has a `name` that YAML {told}"


def test_a_taxonomy_in_four_scripts_builds_and_glan_inspect_shows_its_ids(workflow):
    workflow.write_taxonomy(FOUR_SCRIPTS)
    assert [leaf.id for leaf in leaves(load_taxonomy(workflow.path("taxonomy.yaml")))] == FOUR_IDS
    workflow.run()

    records = [orjson.loads(line) for line in workflow.dataset().splitlines()]
    assert sorted({r["provenance"]["node"] for r in records}) == sorted(FOUR_IDS)
    assert len(records) == len(FOUR_IDS) * QUESTIONS_PER_DISCIPLINE
    assert workflow.server.count == len(FOUR_IDS) * PER_DISCIPLINE_TOTAL
    for node_id in FOUR_IDS:
        assert (workflow.path("results/nodes") / node_id / "answers.jsonl").is_file()
    shown = subprocess.run(
        [sys.executable, "-m", "glan.cli", "inspect", "--configfile", "config/tiny.yaml", "test.yaml"],
        cwd=workflow.dir,
        env=workflow.environment(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for node_id in FOUR_IDS:
        assert f"({node_id}; selected; subjects " in shown
