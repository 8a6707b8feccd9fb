"""The whole-dataset steps stream: their peak memory does not grow with the dataset (ten times as many
disciplines of the same size), and bad input is named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import DEFAULTS
from records import PATHS, facts_of, make_record

from glan.io import dump_line, iter_jsonl

SMALL = 2_000  # records; the large file has ten times as many
DISCIPLINE = 200  # records a discipline, in both
FILLER = "Show each step of the derivation and state the units of every quantity you use along the way. " * 3

# Each step reads `path` (a dataset file) as the workflow's script does; `out` is a scratch folder.
PRELUDE = """
import json
import sys
from pathlib import Path
from glan.dataset.facts import read_usage
from glan.dataset.composition import Composition
path, out = map(Path, sys.argv[1:3])
DEFAULTS = json.loads(sys.argv[3])  # the config's defaults, passed in: loading the config would weigh on the peak
folder = path.parent / (path.stem + "-facts")
source = Composition(sorted(folder.glob("facts-*.parquet")), sorted(folder.glob("records-*.jsonl")))
"""
STEPS = {
    "concatenate": """
from glan.dataset.join import concatenate
concatenate([path, path], out / "dataset.jsonl")
""",
    "accounting": """
from glan.dataset.accounting import account
account(map(read_usage, sorted(path.parent.glob(path.stem + "-facts/usage-*.json"))), {})
""",
    "summary": """
from glan.dataset.facts import REPORTED
from glan.dataset.report.numbers import summarise
accounting = dict.fromkeys(("totals", "by_stage", "by_model", "unpriced_models"))
splits = {"train": (part.node.table(REPORTED, part.rows) for part in source.parts()), "test": iter(())}
summarise(0, splits, iter(()), DEFAULTS["clean"]["decontaminate"], accounting, {})
""",
    "dedup-exact": """
from glan.dataset.clean import deduplicate, sift
dedup = {**DEFAULTS["clean"]["dedup"], "near": False}
sift(deduplicate(source, dedup), out / "removed.jsonl")
""",
    "decontaminate": """
from glan.dataset.clean import decontaminate, sift
removals, _ = decontaminate(source, DEFAULTS["clean"]["decontaminate"])
sift(removals, out / "removed.jsonl")
""",
    "export": """
from glan.dataset import export
export.BATCH_ROWS = 200  # a row group is the part of the dataset the export holds; keep it below SMALL
settings = {**DEFAULTS["export"], "test_per_discipline": 50}
about = {
    "taxonomy": {"path": "taxonomy.yaml", "sha256": ""},
    "duplicates": {},
    "contamination": {"ngram": 13, "threshold": 0.5, "fields": ["question"], "benchmarks": []},
    "accounting": {"by_stage": {}, "unpriced_models": []},
}
export.write_exports(source, about, settings, out, out / "hf" / "README.md")
""",
}

PEAK = """
from glan.logs import peak_rss_mib
print(peak_rss_mib())
"""


def write_dataset(path: Path, count: int) -> Path:
    """Disciplines of DISCIPLINE records, every fifth one an exact duplicate of the one before it; and their
    facts files, as the facts jobs write them, in the folder `<name>-facts` beside it."""
    records = []
    for i in range(count):
        number = i - 1 if i % 5 == 4 else i
        record = make_record(f"Question {number}: {FILLER}", node=list(PATHS)[0], answer=f"Answer {number}: {FILLER}")
        discipline = f"field/discipline-{i // DISCIPLINE:04d}"
        record["provenance"].update(node=discipline, path=["Field", discipline])
        records.append(record)
    path.write_bytes(b"".join(map(dump_line, records)))
    dedup, decontaminate = DEFAULTS["clean"]["dedup"], DEFAULTS["clean"]["decontaminate"]
    facts_of(records, path.parent / f"{path.stem}-facts", dedup, decontaminate)
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
