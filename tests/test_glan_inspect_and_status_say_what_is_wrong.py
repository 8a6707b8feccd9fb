"""`glan inspect --depth -1` is refused in one line (it printed the fields as if asked for them), and
`glan status` names the parts under logs/progress/ it cannot read (it said the folder was empty)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import orjson
import pytest
from helpers import ROOT


def glan(folder, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glan.cli", *args], cwd=folder, capture_output=True, text=True)


@pytest.fixture
def folder(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    (tmp_path / "taxonomy.yaml").write_text("taxonomy:\n  - name: A\n    children:\n      - name: B\n")
    return tmp_path


@pytest.mark.parametrize("depth", ["-1", "0"])
def test_inspect_refuses_a_depth_below_one_in_one_line(folder, depth):
    result = glan(folder, "inspect", "--depth", depth)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"glan inspect: --depth {depth}: give 1 or more levels (1: the fields alone)\n"


def test_inspect_at_depth_one_prints_the_fields(folder):
    result = glan(folder, "inspect", "--depth", "1")
    assert result.returncode == 0 and result.stdout.startswith("`-- A  (a; 1 disciplines")
    assert "B  (a/b" not in result.stdout


def test_status_names_the_parts_it_cannot_read(folder):
    progress = folder / "logs/progress"
    progress.mkdir(parents=True)
    (progress / "run.json").write_bytes(b'{"started": 1')
    (progress / "server.json").write_bytes(b"[]")
    result = glan(folder, "status", "--once")
    assert result.returncode == 0
    assert result.stdout == (
        "no run can be read here: logs/progress/run.json, logs/progress/server.json: not readable as JSON; "
        "the next snakemake run replaces them\n"
    )


def test_status_of_a_run_says_which_part_it_left_out(folder):
    progress = folder / "logs/progress"
    progress.mkdir(parents=True)
    run = {"started": 1.0, "expected_jobs": {}, "interval": 10, "finished": True, "success": True}
    (progress / "run.json").write_bytes(orjson.dumps(run))
    (progress / "server.json").write_bytes(b"\x00\x00")
    lines = glan(folder, "status", "--once").stdout.splitlines()
    assert lines[0].startswith("run finished: ")
    damaged = "logs/progress/server.json: not readable as JSON; the next snakemake run replaces them"
    assert lines[-1] == f"  left out: {damaged}"


def test_status_of_an_empty_folder_says_it_is_empty(folder):
    result = glan(folder, "status", "--once")
    assert result.stdout == "no run has started here (logs/progress/ is empty): start one with snakemake\n"
