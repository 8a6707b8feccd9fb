"""A config mistake is one line: the file that set the key, the key's path, and what to change (the
nearest known key for a typo, the forms a `oneOf` key takes). Snakemake's own `validate` printed the
key and then some 850 lines of schema and config, naming neither the overlay nor the intended key."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import yaml
from helpers import ROOT

from glan.config import ConfigError, command_line_values, load_config

SELECT_FORMS = (
    "node ids (fields, sub-fields or disciplines) to build, [] for the whole taxonomy, or {spread: n}: "
    "n disciplines spread over the fields"
)


@pytest.fixture
def folder(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path


def mistake(folder, *overlays: dict) -> str:
    names = []
    for index, overlay in enumerate(overlays):
        names.append(f"my{index}.yaml")
        (folder / names[-1]).write_text(yaml.safe_dump(overlay))
    with pytest.raises(ConfigError) as error:
        load_config(folder, ["config/tiny.yaml", *names])
    assert "\n" not in str(error.value)
    return str(error.value)


@pytest.mark.parametrize(
    "overlay, line",
    [
        ({"llm": {"concurency": 4}}, "my0.yaml: unknown config key `llm.concurency`; did you mean `llm.concurrency`?"),
        ({"selekt": []}, "my0.yaml: unknown config key `selekt`; did you mean `select`?"),
        (
            {"stages": {"answers": {"sampling": {"temprature": 1}}}},
            "my0.yaml: unknown config key `stages.answers.sampling.temprature`; "
            "did you mean `stages.answers.sampling.temperature`?",
        ),
        ({"llm": {"backend": "opnai"}}, "my0.yaml: `llm.backend: 'opnai'` must be one of openai, local"),
        ({"stages": {"subjects": {"queries": 0}}}, "my0.yaml: `stages.subjects.queries: 0` must be at least 1"),
        ({"llm": {"timeout": "fast"}}, "my0.yaml: `llm.timeout: 'fast'` must be a number"),
        (
            {"prices": {"gpt-x": {"input_per_mtok": 1}}},
            "my0.yaml: the config has no `prices.gpt-x.output_per_mtok`, which is required; add it",
        ),
    ],
)
def test_a_mistake_names_the_overlay_the_key_and_what_to_change(folder, overlay, line):
    assert mistake(folder, overlay) == line


@pytest.mark.parametrize(
    "select, why",
    [
        ({"spread": 0}, " (`select.spread` must be at least 1)"),
        ({"spred": 3}, None),
        (3, ""),
        ([""], " (`select.0` must not be empty)"),
    ],
)
def test_select_says_what_forms_it_takes(folder, select, why):
    line = mistake(folder, {"select": select})
    if why is None:  # a typo of its key is a typo first
        assert line == "my0.yaml: unknown config key `select.spred`; did you mean `select.spread`?"
    else:
        assert line == f"my0.yaml: `select: {select!r}` is none of the forms it takes{why}: {SELECT_FORMS}"


def test_the_overlay_named_is_the_one_that_set_the_key(folder):
    line = mistake(folder, {"llm": {"concurrency": 0}}, {"llm": {"timeout": 5}})
    assert line == "my0.yaml: `llm.concurrency: 0` must be at least 1"


def test_a_key_no_overlay_sets_is_named_in_the_defaults(folder):
    config = folder / "config/config.yaml"
    config.write_text(config.read_text().replace("seed: 0", "seed: zero"))
    assert mistake(folder, {"llm": {"timeout": 5}}) == "config/config.yaml: `seed: 'zero'` must be an integer"


def test_a_command_line_value_takes_its_schema_type():
    given = {"llm": {"preflight": "false", "model": "123", "budget": "null"}, "seed": 3}
    typed = command_line_values(given, ROOT / "config/schema.yaml")
    assert typed == {"llm": {"preflight": False, "model": "123", "budget": None}, "seed": 3}


def test_glan_names_the_mistake_in_one_line(folder):
    (folder / "taxonomy.yaml").write_text("taxonomy:\n  - name: A\n")
    (folder / "my.yaml").write_text("llm: {concurency: 4}\n")
    result = subprocess.run(
        [sys.executable, "-m", "glan.cli", "inspect", "--configfile", "my.yaml"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    typo = "my.yaml: unknown config key `llm.concurency`; did you mean `llm.concurrency`?"
    assert result.stderr == f"glan inspect: {typo}\n"


def test_snakemake_prints_the_one_line_and_not_the_schema(workflow):
    workflow.overlay["llm"]["concurency"] = 4
    result = workflow.run("-n", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "test.yaml: unknown config key `llm.concurency`; did you mean `llm.concurrency`?" in output
    assert "additionalProperties" not in output and "$schema" not in output
    assert len(output.splitlines()) < 10, output
