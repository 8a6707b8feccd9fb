"""Written files get the mode a plain open() would give them under the user's umask.

Every artifact is written through a temp file and a rename (glan.io); a temp file made by
tempfile.mkstemp is 0600 and keeps that mode after the rename, so a collaborator, a training job
under another account or a web server could not read the dataset in a shared directory.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from glan.io import copy_atomic, open_atomic, write_if_changed, write_json, write_jsonl


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def plain_open_mode(path: Path) -> int:
    """What open(path, "w") gives under the current umask: the reference every writer must match."""
    with open(path, "w"):
        pass
    return mode(path)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664), (0o077, 0o600)])
def test_every_atomic_writer_gives_the_mode_of_a_plain_open(tmp_path, mask, expected):
    with umask(mask):
        assert plain_open_mode(tmp_path / "plain") == expected
        write_json(tmp_path / "a.json", {"a": 1})
        write_jsonl(tmp_path / "a.jsonl", iter([{"a": 1}, {"b": 2}]))
        write_if_changed(tmp_path / "nodes" / "x" / "node.json", b"{}\n")
        copy_atomic(tmp_path / "a.json", tmp_path / "copy.json")
        with open_atomic(tmp_path / "stream.bin") as handle:
            handle.write(b"bytes")
    for name in ("a.json", "a.jsonl", "nodes/x/node.json", "copy.json", "stream.bin"):
        assert mode(tmp_path / name) == expected, name
    assert not list(tmp_path.rglob(".*.tmp")), "no temp file is left behind"


def test_a_rewrite_takes_the_umask_of_its_own_run(tmp_path):
    """The mode comes from the writing run, as with open(): a file first written 0600 is 0644 once rewritten."""
    target = tmp_path / "dataset.jsonl"
    with umask(0o077):
        write_jsonl(target, [{"n": 1}])
    assert mode(target) == 0o600
    with umask(0o022):
        write_jsonl(target, [{"n": 2}])
    assert mode(target) == 0o644


def test_a_failed_write_leaves_no_file_and_the_old_one(tmp_path):
    target = tmp_path / "kept.json"
    write_json(target, {"old": True})
    with pytest.raises(RuntimeError), open_atomic(target) as handle:
        handle.write(b"half")
        raise RuntimeError("crash")
    assert target.read_bytes() == b'{\n  "old": true\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["kept.json"]


def test_a_build_writes_every_artifact_as_the_umask_says(workflow):
    """A real build under umask 027 (group-readable, others shut out): per-node files, the dataset, the
    cleaned and exported files and the report's are all 0640, as open() would make them."""
    with umask(0o027):
        workflow.run()
    written = [p for folder in ("results",) for p in sorted(workflow.path(folder).rglob("*")) if p.is_file()]
    names = {str(p.relative_to(workflow.dir)) for p in written}
    for expected in (
        "results/nodes/natural-sciences/physics/optics/node.json",
        "results/nodes/natural-sciences/physics/optics/answers.jsonl",
        "results/dataset.jsonl",
        "results/clean/duplicates.jsonl",
        "results/export/hf/data/train-00000-of-00001.parquet",
        "results/export/jsonl/train-00000-of-00001.jsonl",
        "results/export/hf/README.md",
        "results/report/accounting.json",
        "results/report/summary.html",
    ):
        assert expected in names
    wrong = {str(p.relative_to(workflow.dir)): oct(mode(p)) for p in written if mode(p) != 0o640}
    assert not wrong
