"""Bad input: a stage template that leaves out what its requests are about (issue 28, finding 5).

`user: Answer the question.` in prompts/answers.yaml used to build: 8 paid requests for 8 records,
every one the same text. Each stage names the placeholders its requests are told apart by
(glan.stages.contract.Stage.required); a template without one is refused before any request, by the
workflow when it is parsed and by `glan plan`, in one line naming the file and the placeholder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from glan.cli import main
from glan.prompts import PromptError
from glan.runtime.run import check_prompts, checked_template
from glan.stages import STAGES

pytestmark = pytest.mark.dataset_only  # `workflow` builds DATASET: the property ends at the dataset

ROOT = Path(__file__).resolve().parent.parent
# What each stage's requests are about, as the issue names them.
REQUIRED = {
    "subjects": {"discipline"},
    "syllabus": {"subject"},
    "questions": {"concepts"},
    "answers": {"question"},
    "judge": {"question", "answer"},
}
CASES = [(stage, name) for stage, names in REQUIRED.items() for name in sorted(names)]


def prompts_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", folder)
    return folder


def without(path: Path, name: str) -> None:
    """The template at `path` with every `{{ name }}` taken out of its texts."""
    text = path.read_text().replace(f"{{{{ {name} }}}}", "")
    assert "{{ " + name not in text
    path.write_text(text)


def test_every_stage_names_what_its_requests_are_about():
    assert {name: set(STAGES[name].required) for name in REQUIRED} == REQUIRED


def test_the_shipped_templates_have_every_placeholder_their_stage_needs():
    check_prompts(ROOT / "prompts")
    checked_template(STAGES["judge"], ROOT / "prompts")


@pytest.mark.parametrize(("stage", "name"), CASES)
def test_a_template_without_its_placeholder_is_refused_in_one_line_naming_file_and_placeholder(tmp_path, stage, name):
    folder = prompts_copy(tmp_path)
    without(folder / f"{stage}.yaml", name)
    with pytest.raises(PromptError) as refused:
        checked_template(STAGES[stage], folder)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{folder / stage}.yaml: ")
    assert f"no {{{{ {name} }}}}" in message or f"or {{{{ {name} }}}}" in message


def test_the_finding_an_answers_template_that_only_says_answer_the_question_stops_the_parse(tmp_path):
    folder = prompts_copy(tmp_path)
    (folder / "answers.yaml").write_text("user: Answer the question.\n")
    with pytest.raises(PromptError, match=r"answers\.yaml: the template has no \{\{ question \}\} placeholder"):
        check_prompts(folder)


def test_glan_plan_refuses_the_template_as_the_build_does(workflow, capsys):
    (workflow.path("prompts/answers.yaml")).write_text("user: Answer the question.\n")
    workflow.environment()  # writes the test overlay

    code = main(["plan", "-d", str(workflow.dir), "--configfile", "config/tiny.yaml", "test.yaml"])

    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.startswith("glan plan: ") and "\n" not in err
    assert "prompts/answers.yaml: the template has no {{ question }} placeholder" in err


def test_a_build_with_the_template_stops_at_parse_with_no_request_sent(workflow):
    (workflow.path("prompts/answers.yaml")).write_text(yaml.safe_dump({"user": "Answer the question."}))

    result = workflow.run(check=False)

    assert result.returncode != 0
    assert "prompts/answers.yaml: the template has no {{ question }} placeholder" in result.stderr
    assert "Traceback" not in result.stderr
    assert workflow.server.count == 0
    assert not workflow.path("results/nodes").exists() or not any(workflow.path("results/nodes").rglob("*.json"))
