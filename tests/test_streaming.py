"""The whole-dataset steps stream: their peak memory does not grow with the dataset, and bad input is named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import DEFAULTS
from records import PATHS, make_record

from glan.io import dump_line, iter_jsonl

SMALL = 2_000  # records; the large file has ten times as many
FILLER = "Show each step of the derivation and state the units of every quantity you use along the way. " * 3

# Each step reads `path` (a dataset file) as the workflow's script does; `out` is a scratch folder.
PRELUDE = """
import json
import sys
from pathlib import Path
from glan.io import iter_jsonl
path, out = map(Path, sys.argv[1:3])
DEFAULTS = json.loads(sys.argv[3])  # the config's defaults, passed in: loading the config would weigh on the peak
"""
STEPS = {
    "concatenate": """
from glan.dataset.join import concatenate
concatenate([path, path], out / "dataset.jsonl")
""",
    "accounting": """
from glan.dataset.accounting import account
account(iter_jsonl(path), out / "cache", {})
""",
    "summary": """
from glan.dataset.report.numbers import summarise
accounting = dict.fromkeys(("totals", "by_stage", "by_model", "unpriced_models"))
splits = {"train": iter_jsonl(path), "test": iter_jsonl(path)}
summarise(iter_jsonl(path), splits, iter(()), DEFAULTS["clean"]["decontaminate"], accounting, {})
""",
    "dedup-exact": """
from glan.dataset.clean import deduplicate, sift
dedup = {**DEFAULTS["clean"]["dedup"], "near": False}
sift(deduplicate(iter_jsonl(path), dedup), out / "kept.jsonl", out / "removed.jsonl")
""",
    "decontaminate": """
from glan.dataset.clean import decontaminate, sift
pairs, _ = decontaminate(iter_jsonl(path), DEFAULTS["clean"]["decontaminate"])
sift(pairs, out / "kept.jsonl", out / "removed.jsonl")
""",
    "export": """
from glan.dataset import export
export.BATCH_ROWS = 200  # a row group is the part of the dataset the export holds; keep it below SMALL
settings = {**DEFAULTS["export"], "test_per_discipline": 50}
facts = {
    "taxonomy": {"path": "taxonomy.yaml", "sha256": ""},
    "duplicates": {},
    "contamination": {"ngram": 13, "threshold": 0.5, "fields": ["question"], "benchmarks": []},
    "accounting": {"by_stage": {}, "unpriced_models": []},
}
names = ("train", "test", "train_parquet", "test_parquet", "hf_train", "hf_test", "hf_card")
found = export.survey(iter_jsonl(path), settings)
export.write_exports(iter_jsonl(path), found, facts, settings, {name: out / name for name in names})
""",
}

PEAK = """
from glan.logs import peak_rss_mib
print(peak_rss_mib())
"""


def write_dataset(path: Path, count: int) -> Path:
    """Records of three disciplines, every fifth one an exact duplicate of the one before it."""
    with open(path, "wb") as handle:
        for i in range(count):
            number = i - 1 if i % 5 == 4 else i
            node = list(PATHS)[number % len(PATHS)]
            answer = f"Answer {number}: {FILLER}"
            handle.write(dump_line(make_record(f"Question {number}: {FILLER}", node=node, answer=answer)))
    return path


def peak_mib(step: str, path: Path, out: Path) -> int:
    """Peak RSS of a fresh interpreter that runs one step on `path`."""
    out.mkdir()
    command = [sys.executable, "-c", PRELUDE + STEPS[step] + PEAK, str(path), str(out), json.dumps(DEFAULTS)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("datasets")
    return {size: write_dataset(folder / f"{size}.jsonl", size) for size in (SMALL, 10 * SMALL)}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS (VmHWM) from /proc")
@pytest.mark.parametrize("step", list(STEPS))
def test_peak_memory_does_not_grow_with_the_dataset(step, datasets, tmp_path):
    small = peak_mib(step, datasets[SMALL], tmp_path / "small")
    large = peak_mib(step, datasets[10 * SMALL], tmp_path / "large")
    assert large < 1.5 * small + 8, f"{step}: {small} MiB for {SMALL} records, {large} MiB for ten times as many"


def test_a_bad_line_is_named_by_file_and_number(tmp_path):
    path = tmp_path / "dataset.jsonl"
    path.write_bytes(b'{"id": "a"}\n\n{"id": \n')
    with pytest.raises(ValueError, match=r"dataset.jsonl:3: "):
        list(iter_jsonl(path))
