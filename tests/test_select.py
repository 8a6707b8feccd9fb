"""The default `select` ({spread: 4}) names no node, so a first run on one's own taxonomy.yaml builds a
sample of it; a list of node ids that match nothing fails with the fix in the message."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from helpers import DEFAULTS, ROOT, THREE_DISCIPLINES

from glan.taxonomy import TaxonomyError, leaves, load_taxonomy, parse_taxonomy, select, spread

SHIPPED = [leaf.id for leaf in leaves(load_taxonomy(ROOT / "taxonomy.yaml"))]
FIELDS = ["a/x/1", "a/x/2", "a/y/1", "a/y/2", "b/z/1", "b/z/2", "c/w/1"]


def test_the_default_names_no_node():
    assert DEFAULTS["select"] == {"spread": 4}


def test_spread_takes_disciplines_in_turn_from_each_field_then_each_sub_field():
    assert spread(FIELDS, 3) == ["a/x/1", "b/z/1", "c/w/1"]
    assert spread(FIELDS, 4) == ["a/x/1", "a/y/1", "b/z/1", "c/w/1"]
    assert spread(FIELDS, 5) == ["a/x/1", "a/y/1", "b/z/1", "b/z/2", "c/w/1"]
    assert spread(FIELDS, 100) == FIELDS
    assert spread([], 4) == []


def test_spread_over_the_shipped_taxonomy_covers_every_field_evenly():
    picked = spread(SHIPPED, 126)
    per_field = {}
    for i in picked:
        per_field[i.split("/")[0]] = per_field.get(i.split("/")[0], 0) + 1
    assert len(picked) == 126 and len(per_field) == 11
    assert max(per_field.values()) - min(per_field.values()) <= 1
    assert (
        spread(SHIPPED, 4)
        == select(SHIPPED, {"spread": 4})
        == [
            "natural-sciences/physics/classical-mechanics",
            "formal-sciences/mathematics/arithmetic-and-elementary-algebra",
            "social-sciences/psychology/cognitive-psychology",
            "business-economics-and-law/economics/microeconomics",
        ]
    )


def test_appending_a_field_keeps_the_pick():
    assert spread([*FIELDS, "d/v/1"], 3) == spread(FIELDS, 3)


def test_ids_that_match_nothing_name_the_fix():
    ids = [leaf.id for leaf in leaves(parse_taxonomy(yaml.safe_dump(THREE_DISCIPLINES)))]
    with pytest.raises(TaxonomyError, match=re.escape("`select: {spread: 4}`")) as error:
        select(ids, ["natural-sciences/physics/classical-mechanics"])
    assert "select: []" in str(error.value) and "glan inspect" in str(error.value)


def test_a_first_run_on_ones_own_taxonomy_with_the_default_select_just_works(workflow):
    """No `select` in any overlay: the default config's. Three disciplines, fewer than 4: all of them."""
    del workflow.overlay["select"]
    dry = workflow.run("-n")
    jobs = dict(re.findall(r"^(subjects|answers|dataset)\s+(\d+)$", dry.stdout, re.M))
    assert jobs == {"subjects": "3", "answers": "3", "dataset": "1"}
    workflow.overlay["select"] = {"spread": 2}
    jobs = dict(re.findall(r"^(subjects|answers)\s+(\d+)$", workflow.run("-n").stdout, re.M))
    assert jobs == {"subjects": "2", "answers": "2"}
    command, env = workflow.command()
    plan = subprocess.run(
        ["glan", "plan", "--configfile", "config/tiny.yaml", "test.yaml"],
        cwd=workflow.dir,
        env=env,
        capture_output=True,
        text=True,
    )
    assert plan.returncode == 0, plan.stderr
    assert "natural-sciences/physics/optics" in plan.stdout and "mathematics/number-theory" in plan.stdout
    assert "natural-sciences/biology/genetics" not in plan.stdout


def test_the_old_default_on_ones_own_taxonomy_fails_before_any_job_with_the_fix(workflow):
    workflow.overlay["select"] = ["natural-sciences/physics/classical-mechanics"]
    result = workflow.run("-n", check=False)
    assert result.returncode != 0
    assert "`select: {spread: 4}`" in result.stdout + result.stderr
