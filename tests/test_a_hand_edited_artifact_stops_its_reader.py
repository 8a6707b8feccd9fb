"""Bad input: a stage's artifact changed by hand after it was built (issue 28, finding 8).

`results/nodes/<id>/questions.jsonl` cut at a line boundary used to build: rc 0, and the dataset
dropped from 24 records to 20 without a word; cut mid-line, the answers job failed with
`ValueError ... questions.jsonl:5: unexpected end of data` and its frames. A stage now writes beside
its artifact a sum (`<artifact>.sum`: lines, bytes, sha256; glan.io.write_summed), and every job that
reads the artifact checks it: a file that is not what was written stops its reader in one line naming
the file and the command that has it written again, which the build tests here follow.
"""

from __future__ import annotations

import hashlib
import re

import orjson
import pytest
from helpers import FIRST_BUILD, OPTICS

from glan.dataset.join import concatenate
from glan.io import ArtifactChanged, checked_lines, read_checked, sum_path
from glan.runtime.run import dump_artifact, read_artifact, write_artifact

pytestmark = pytest.mark.dataset_only  # `workflow` builds DATASET: the property ends at the dataset

RECORDS = [{"question": f"Question {i}?", "concepts": ["light", "lens"], "index": i} for i in range(24)]
SUBJECTS = {"node": {"id": "physics/optics"}, "subjects": [{"name": "Lenses", "level": "undergraduate"}]}


def written(tmp_path, name: str = "questions.jsonl", artifact=None):
    path = tmp_path / name
    write_artifact(path, RECORDS if artifact is None else artifact)
    return path


def refusal(path) -> str:
    with pytest.raises(ArtifactChanged) as refused:
        read_artifact(path)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{path} was changed after it was built (")
    assert message.endswith(f"run snakemake --forcerun {path} with your options")
    return message


def test_an_artifact_keeps_its_bytes_and_gets_its_sum_beside_it(tmp_path):
    for name, artifact in (("questions.jsonl", RECORDS), ("subjects.json", SUBJECTS)):
        path = written(tmp_path, name, artifact)
        data = path.read_bytes()
        assert data == dump_artifact(name, artifact), "the artifact's bytes are those it had before sums"
        recorded = orjson.loads(sum_path(path).read_bytes())
        assert recorded == {"bytes": len(data), "lines": data.count(b"\n"), "sha256": hashlib.sha256(data).hexdigest()}
        assert read_artifact(path) == artifact


def test_an_artifact_cut_at_a_line_boundary_stops_its_reader_saying_how_many_records_are_left(tmp_path):
    path = written(tmp_path)
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:20]))
    assert "(20 whole records where 24 were written)" in refusal(path)


def test_an_artifact_cut_mid_line_gets_the_same_message_not_a_parse_error(tmp_path):
    path = written(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:4]) + lines[4][:20])
    assert "(4 whole records where 24 were written)" in refusal(path)


def test_an_edit_that_keeps_the_count_is_caught_by_size_or_digest(tmp_path):
    path = written(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"Question 3?", b"Question 3 (edited)?"))
    assert "bytes where" in refusal(path)
    path.write_bytes(data.replace(b"Question 3?", b"Question 9?"))
    assert "its bytes are not those written" in refusal(path)


def test_an_edited_json_artifact_stops_its_reader(tmp_path):
    path = written(tmp_path, "subjects.json", SUBJECTS)
    path.write_bytes(path.read_bytes().replace(b"Lenses", b"Mirrors"))
    refusal(path)


def test_an_edited_sum_stops_the_reader_too(tmp_path):
    path = written(tmp_path)
    sum_path(path).write_text("edited\n")
    told = f"{sum_path(path)} was changed after it was built; .* --forcerun {path} "
    with pytest.raises(ArtifactChanged, match=told):
        read_artifact(path)


def test_a_file_without_a_sum_is_read_as_before(tmp_path):
    """The taxonomy's node files (node.json) are written at parse, from taxonomy.yaml, with no sum."""
    path = tmp_path / "node.json"
    path.write_bytes(dump_artifact("node.json", SUBJECTS["node"]))
    assert read_artifact(path) == SUBJECTS["node"]
    assert read_checked(path) == path.read_bytes()


def test_the_dataset_join_and_the_facts_stop_on_an_edited_answers_file_and_write_no_dataset(tmp_path):
    kept, edited = written(tmp_path, "kept.jsonl"), written(tmp_path, "answers.jsonl")
    edited.write_bytes(b"".join(edited.read_bytes().splitlines(keepends=True)[:-1]))
    dataset = tmp_path / "dataset.jsonl"

    with pytest.raises(ArtifactChanged, match="23 whole records where 24 were written"):
        concatenate([str(kept), str(edited)], dataset)
    with pytest.raises(ArtifactChanged, match="23 whole records where 24 were written"):
        checked_lines(edited)

    assert not dataset.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert concatenate([str(kept)], dataset) == len(RECORDS)
    assert len(checked_lines(kept)) == len(RECORDS)


def cut_at_a_line_boundary(data: bytes) -> bytes:
    return b"".join(data.splitlines(keepends=True)[:-4])


def cut_mid_line(data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    return b"".join(lines[:4]) + lines[4][:30]


@pytest.mark.parametrize(
    ("artifact", "cut", "readers"),
    [
        ("questions.jsonl", cut_at_a_line_boundary, ("answers",)),
        ("questions.jsonl", cut_mid_line, ("answers",)),
        ("answers.jsonl", cut_at_a_line_boundary, ("facts", "dataset")),
    ],
    ids=["questions-cut-at-a-line-boundary", "questions-cut-mid-line", "answers-cut-at-a-line-boundary"],
)
@pytest.mark.built
def test_a_build_stops_on_the_edited_artifact_and_the_command_it_prints_rebuilds_it_from_the_cache(
    workflow, artifact, cut, readers
):
    reference = workflow.dataset()
    assert len(reference.splitlines()) == FIRST_BUILD["answers"]
    path = f"{OPTICS}/{artifact}"
    workflow.path(path).write_bytes(cut(workflow.path(path).read_bytes()))
    workflow.server.reset()
    workflow.overlay["llm"]["preflight"] = True  # it plans the ready jobs first: it must leave this one to say so

    stopped = workflow.run(check=False)

    assert stopped.returncode != 0
    said = [line.strip() for line in stopped.stderr.splitlines() if f"{path} was changed after it was built" in line]
    assert said, stopped.stderr
    # a stage job's failure paragraph names the error; a whole-dataset script says which step failed
    assert said[0].startswith(("ArtifactChanged: ", *(f"{reader} failed: " for reader in readers)))
    assert "Traceback (most recent call last)" not in stopped.stderr and "in __onstart" not in stopped.stderr
    assert workflow.server.count == 0
    dataset = workflow.path("results/dataset.jsonl")  # a failed join's output is removed by Snakemake
    assert not dataset.exists() or dataset.read_bytes() == reference, "no dataset joined from the edited file"

    command = re.search(r"run (snakemake --forcerun \S+) with your options", said[0]).group(1).split()
    assert command[:2] == ["snakemake", "--forcerun"] and command[2] == path
    workflow.run(*command[1:])

    assert workflow.server.count == 0, "rewritten from the cache"
    assert workflow.dataset() == reference

    # Why the command is --forcerun: Snakemake does not rerun a job for a missing output while the outputs
    # downstream of it are in place, so a deleted artifact is not written again.
    workflow.path(path).unlink()
    dry = workflow.run("-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr
