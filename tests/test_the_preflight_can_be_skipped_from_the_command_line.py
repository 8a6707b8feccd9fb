"""The preflight is skipped from the command line with `--config 'llm={preflight: false}'`.

Snakemake parses `--config` before the Snakefile runs and takes only a name as a key, so
`llm.preflight=false` cannot reach the workflow; a nested value it reads as text ('false'),
which the Snakefile now types as the schema says (a boolean). Before, that stopped the run with
`'false' is not of type 'boolean'`.
"""

from __future__ import annotations

import pytest
from helpers import SUBJECT_QUERIES

OPTICS_SUBJECTS = "results/nodes/natural-sciences/physics/optics/subjects.json"


@pytest.mark.parametrize("written", ["false", "False"])
def test_config_llm_preflight_false_on_the_command_line_skips_the_preflight(workflow, written):
    workflow.overlay["llm"]["preflight"] = True  # the overlay turns it on; the command line turns it off
    workflow.run("--config", f"llm={{preflight: {written}}}", "--", OPTICS_SUBJECTS)
    assert workflow.server.count == SUBJECT_QUERIES  # no probe


def test_without_it_the_same_run_sends_the_probe(workflow):
    workflow.overlay["llm"]["preflight"] = True
    workflow.run("--", OPTICS_SUBJECTS)
    assert workflow.server.count == SUBJECT_QUERIES + 1


def test_a_command_line_value_of_the_wrong_type_names_the_command_line(workflow):
    result = workflow.run("-n", "--config", "llm={concurrency: eight}", check=False)
    assert result.returncode != 0
    assert "--config: `llm.concurrency: 'eight'` must be an integer" in result.stdout + result.stderr
