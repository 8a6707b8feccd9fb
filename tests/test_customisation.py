"""Per-node customisation in taxonomy.yaml: parsing, inheritance, errors, and what each stage makes of it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from glan.config import deep_merge, stage_settings
from glan.llm.lookup import Outcome
from glan.llm.request import Reply
from glan.prompts import PromptError, Template
from glan.runtime.run import JobPlan
from glan.stages import STAGES, syllabus
from glan.taxonomy import TaxonomyError, iter_nodes, leaves, parse_taxonomy

ROOT = Path(__file__).resolve().parent.parent
CONFIG = deep_merge(*(yaml.safe_load((ROOT / "config" / name).read_text()) for name in ("config.yaml", "tiny.yaml")))
TEMPLATES = {stage: Template(ROOT / "prompts" / f"{stage}.yaml") for stage in STAGES}

DOC = """
taxonomy:
  - name: Humanities
    instructions: Write in French.
    stages:
      questions: {per_subject: 3}
    children:
      - name: History
        children:
          - name: Modern History
            instructions: Prefer primary sources.
            stages:
              questions:
                sampling: {temperature: 0.3}
              answers:
                llm: {model: big-model}
          - name: Ancient History
            subjects:
              - Roman Republic
              - name: Greek City States
                level: graduate
                subtopics: [Athens, Sparta]
  - name: Mathematics
    description: Numbers.
"""


def by_id(text: str = DOC) -> dict:
    return {node.id: node for node in iter_nodes(parse_taxonomy(text))}


def test_plain_nodes_keep_the_record_they_had_before_customisation_existed():
    record = by_id()["mathematics"].record()
    assert record == {"id": "mathematics", "name": "Mathematics", "description": "Numbers.", "path": ["Mathematics"]}


def test_instructions_and_stage_overrides_are_inherited_and_pins_stay_on_their_discipline():
    nodes = by_id()
    modern = nodes["humanities/history/modern-history"].record()
    assert modern["instructions"] == "Write in French.\nPrefer primary sources."
    assert modern["stages"] == {
        "questions": {"per_subject": 3, "sampling": {"temperature": 0.3}},
        "answers": {"llm": {"model": "big-model"}},
    }
    assert "subjects" not in modern
    ancient = nodes["humanities/history/ancient-history"].record()
    assert ancient["instructions"] == "Write in French."
    assert ancient["subjects"] == [
        {"name": "Roman Republic", "level": "undergraduate", "subtopics": []},
        {"name": "Greek City States", "level": "graduate", "subtopics": ["Athens", "Sparta"]},
    ]
    assert nodes["humanities/history/modern-history"].own["instructions"] == "Prefer primary sources."


@pytest.mark.parametrize(
    "text, message",
    [
        ("  - name: A\n    instructions: ''\n", "taxonomy.yaml:2: node 'A': `instructions` must be a non-empty string"),
        ("  - name: A\n    stages: [questions]\n", "taxonomy.yaml:2: node 'A': `stages` must be a mapping"),
        (
            "  - name: A\n    stages:\n      essays: {n: 1}\n",
            "taxonomy.yaml:4: node 'A': `stages` has unknown stage 'essays'",
        ),
        (
            "  - name: A\n    stages:\n      questions:\n        per_subject: ten\n",
            "taxonomy.yaml:5: node 'A': `stages.questions.per_subject` must be an integer >= 1, not 'ten'",
        ),
        (
            "  - name: A\n    stages:\n      answers: {per_subject: 2}\n",
            "taxonomy.yaml:4: node 'A': `stages.answers` cannot set 'per_subject'",
        ),
        (
            "  - name: A\n    stages:\n      questions:\n        single_session_share: 2\n",
            "`stages.questions.single_session_share` must be a number from 0 to 1, not 2",
        ),
        (
            "  - name: A\n    stages:\n      answers:\n        llm: {backend: local}\n",
            "taxonomy.yaml:5: node 'A': `stages.answers.llm` cannot set 'backend'; it may set ['model']",
        ),
        (
            "  - name: A\n    stages:\n      syllabus:\n        sampling:\n          temperature: 3\n",
            "taxonomy.yaml:6: node 'A': `stages.syllabus.sampling.temperature` must be a number from 0 to 2, not 3",
        ),
        (
            "  - name: A\n    subjects: [x]\n    children:\n      - name: B\n",
            "taxonomy.yaml:2: node 'A': pinned `subjects` belong on a discipline",
        ),
        ("  - name: A\n    subjects: []\n", "taxonomy.yaml:2: node 'A': `subjects` must be a non-empty list"),
        (
            "  - name: A\n    subjects:\n      - name: X\n        level: phd\n",
            "taxonomy.yaml:4: node 'A': pinned subject 'X' has level 'phd'",
        ),
        ("  - name: A\n    subjects: [X, x]\n", "taxonomy.yaml:2: node 'A': subject 'x' is pinned twice"),
        (
            "  - name: A\n    subjects:\n      - {name: X, hours: 3}\n",
            "taxonomy.yaml:4: node 'A': a pinned subject has unknown keys ['hours']",
        ),
        (
            "  - name: F\n    children:\n      - name: A\n        colour: red\n",
            "taxonomy.yaml:4: node 'F > A' has unknown keys ['colour']",
        ),
    ],
)
def test_bad_customisation_names_the_file_line_and_node(text, message):
    with pytest.raises(TaxonomyError) as error:
        parse_taxonomy("taxonomy:\n" + text)
    assert message in str(error.value)


def settings(stage: str) -> dict:
    return stage_settings(CONFIG, stage)


def planned(stage: str, source, template: Template | None = None) -> JobPlan:
    return JobPlan.of(STAGES[stage], source, template or TEMPLATES[stage], settings(stage))


def test_pinned_subjects_send_no_subjects_request_and_reach_the_syllabus():
    node = by_id()["humanities/history/ancient-history"].record()
    plan = planned("subjects", node)
    assert plan.requests == []
    artifact = plan.assemble([])
    assert [s["name"] for s in artifact["subjects"]] == ["Roman Republic", "Greek City States"]
    assert artifact["subjects"][0]["keys"] == {"subjects": None}
    requests = planned("syllabus", artifact).requests
    assert len(requests) == 2
    assert syllabus.OPEN_SUBTOPICS in requests[0].messages[-1]["content"]
    assert "- Athens\n- Sparta" in requests[1].messages[-1]["content"]


def three_session_syllabus(node: dict, count: int = 2) -> dict:
    sessions = [{"title": f"S{i}", "description": "d", "key_concepts": ["a", "b", "c"]} for i in range(3)]
    return {
        "node": node,
        "models": {"subjects": "m", "syllabus": "m"},
        "subjects": [
            {"name": f"Subject {i}", "level": "undergraduate", "subtopics": ["t"], "sessions": sessions, "keys": {}}
            for i in range(count)
        ],
    }


def replied(plan: JobPlan, text: str) -> list[Outcome]:
    """Every planned request answered with `text`, as the cache would hand it back."""
    return [Outcome(request=r, key=f"key-{i}", reply=Reply(text=text)) for i, r in enumerate(plan.requests)]


def test_instructions_reach_every_stage_and_overrides_change_counts_and_models():
    node = by_id()["humanities/history/modern-history"].record()
    (request,) = planned("subjects", node).requests[:1]
    assert request.messages[-1]["content"].endswith("Write in French.\nPrefer primary sources.")

    asking = planned("questions", three_session_syllabus(node))
    assert len(asking.requests) == 2 * 3  # per_subject: 3 from the field, not the config's 2
    assert {r.params["temperature"] for r in asking.requests} == {0.3}
    # In the system text, which every question of the node shares (prefix caching), as in the answers.
    assert all(r.messages[0]["content"].endswith("Prefer primary sources.") for r in asking.requests)

    records = asking.assemble(replied(asking, '{"question": "Why?"}'))
    assert records[0]["custom"] == {"instructions": node["instructions"], "stages": node["stages"]}
    answering = planned("answers", records)
    assert {r.model for r in answering.requests} == {"big-model"}
    assert answering.requests[0].messages[0]["content"].endswith("Prefer primary sources.")

    done = answering.assemble(replied(answering, "Because."))
    assert done[0]["provenance"]["models"]["answers"] == "big-model"


def test_nodes_without_customisation_render_the_prompts_exactly_as_before(tmp_path):
    """The {{ instructions }} placeholder renders to nothing: no request of an existing build changes."""
    node = leaves(parse_taxonomy(DOC))[-1].record()
    for stage in ("subjects", "questions"):
        template = TEMPLATES[stage]
        before = tmp_path / f"{stage}.yaml"
        before.write_text(template.path.read_text().replace("{{ instructions }}", ""))
        source = node if stage == "subjects" else three_session_syllabus(node)
        with_placeholder = planned(stage, source).requests
        without = planned(stage, source, Template(before)).requests
        assert [r.key("e") for r in with_placeholder] == [r.key("e") for r in without]


def test_a_template_without_the_placeholder_refuses_a_node_with_instructions(tmp_path):
    bare = tmp_path / "subjects.yaml"
    bare.write_text(TEMPLATES["subjects"].path.read_text().replace("{{ instructions }}", ""))
    node = by_id()["humanities/history/modern-history"].record()
    with pytest.raises(PromptError, match="no \\{\\{ instructions \\}\\} placeholder"):
        planned("subjects", node, Template(bare))
