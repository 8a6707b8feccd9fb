"""What tests share: the workflow copied into a temp dir and run with snakemake, a small taxonomy,
and what a build of it at the tiny scale sends."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import yaml
from fake_llm import FakeLLM

from glan.config import load_config
from glan.taxonomy import leaves, parse_taxonomy

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW_PARTS = ["Snakefile", "rules", "scripts", "prompts", "config", "envs", "profiles", "report"]
API_KEY = "sk-test-SECRET-do-not-store-0123456789"
CORES = 2  # snakemake --cores of every Workflow run (jobs the stage server runs take no core)
# Workflow.targets of a test whose property ends at the dataset (its requests, its records): the
# whole-dataset steps after it (export, plots, report) take about half of a tiny build's 9 s on an idle
# machine, and have tests of their own.
DATASET = ["results/dataset.jsonl"]

THREE_DISCIPLINES = {
    "taxonomy": [
        {
            "name": "Natural Sciences",
            "description": "The physical and living world.",
            "children": [
                {"name": "Physics", "children": [{"name": "Optics", "description": "Light and its behaviour."}]},
                {"name": "Biology", "children": [{"name": "Genetics", "description": "Heredity and genes."}]},
            ],
        },
        {"name": "Mathematics", "children": [{"name": "Number Theory", "description": "Properties of integers."}]},
    ]
}
DISCIPLINES = len(leaves(parse_taxonomy(yaml.safe_dump(THREE_DISCIPLINES))))
OPTICS = "results/nodes/natural-sciences/physics/optics"
GENETICS = "results/nodes/natural-sciences/biology/genetics"


def optics(taxonomy: list) -> dict:
    """The Optics discipline in the `taxonomy` list of a copy of THREE_DISCIPLINES."""
    return taxonomy[0]["children"][0]["children"][0]


def genetics(taxonomy: list) -> dict:
    return taxonomy[0]["children"][1]["children"][0]


# The defaults, as a run with no overlay sees them: the settings unit tests start from.
DEFAULTS = load_config(ROOT)

# The config every Workflow run builds with (config/tiny.yaml over config/config.yaml), and the requests
# it sends, derived from its fan-outs so that an edit of tiny.yaml moves every count the tests expect.
TINY = load_config(ROOT, ["config/tiny.yaml"])
SUBJECT_QUERIES = TINY["stages"]["subjects"]["queries"]
# The fake server fills every array to its maxItems and names every item differently: no subjects merge.
SUBJECTS_PER_DISCIPLINE = SUBJECT_QUERIES * TINY["stages"]["subjects"]["per_query"]
SESSIONS_PER_SYLLABUS = TINY["stages"]["syllabus"]["sessions"]
QUESTIONS_PER_SUBJECT = TINY["stages"]["questions"]["per_subject"]
QUESTIONS_PER_DISCIPLINE = SUBJECTS_PER_DISCIPLINE * QUESTIONS_PER_SUBJECT
MAX_ATTEMPTS = TINY["llm"]["max_attempts"]

# Requests per stage for one discipline: the subject queries, a syllabus per subject, the questions of
# every subject, an answer per question (2, 4, 8 and 8 with tiny.yaml as shipped).
PER_DISCIPLINE = {
    "subjects": SUBJECT_QUERIES,
    "syllabus": SUBJECTS_PER_DISCIPLINE,
    "questions": QUESTIONS_PER_DISCIPLINE,
    "answers": QUESTIONS_PER_DISCIPLINE,
}
PER_DISCIPLINE_TOTAL = sum(PER_DISCIPLINE.values())
# What a first build of THREE_DISCIPLINES sends, per stage and in all; one record per answer.
FIRST_BUILD = {stage: DISCIPLINES * count for stage, count in PER_DISCIPLINE.items()}
FIRST_BUILD_TOTAL = DISCIPLINES * PER_DISCIPLINE_TOTAL


def all_disciplines(*stages: str) -> dict[str, int]:
    """What a rebuild sends when every discipline asks again in these stages only (and in no other)."""
    return {stage: FIRST_BUILD[stage] for stage in stages}


def stage_counts(requests: list[dict]) -> Counter:
    """The requests a server received, counted by stage (told apart by the reply schema they ask for)."""
    names = {"subjects": "subjects", "syllabus": "syllabus", "question": "questions", "judge": "judge"}
    counts = Counter()
    for body in requests:
        schema = (body.get("response_format") or {}).get("json_schema")
        counts[names[schema["name"]] if schema else "answers"] += 1
    return counts


def changed_files(before: dict, after: dict) -> set[str]:
    """The paths of `after` (a Workflow.snapshot) that are new or differ from `before`."""
    return {path for path in after if before.get(path) != after[path]}


class Workflow:
    """A copy of the workflow in a temp dir, run with `snakemake` as a subprocess against a server."""

    def __init__(self, directory: Path, server: FakeLLM, built: Path | None = None):
        """`built`: start from a copy of that built workflow (its files, their mtimes, its cache and Snakemake's
        records), as if it had been built here; else from the bare workflow on THREE_DISCIPLINES."""
        self.dir = directory
        self.server = server
        self.targets: list[str] = []  # what `run` builds: the default target (all), or DATASET
        if built is not None:
            shutil.copytree(built, directory, symlinks=True, dirs_exist_ok=True)
        for part in WORKFLOW_PARTS if built is None else ():
            source = ROOT / part
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, directory / part)
        # A fixed endpoint identity, so that runs against different servers share cache keys.
        # No preflight: its probe would add a request to every count (tests/test_endpoints.py runs it).
        self.overlay = {
            "select": [],
            "llm": {"backend": "openai", "model": "fake-model", "endpoint": "fake", "preflight": False},
        }
        if built is None:
            self.write_taxonomy(THREE_DISCIPLINES)

    def write_taxonomy(self, document: dict) -> None:
        (self.dir / "taxonomy.yaml").write_text(yaml.safe_dump(document, sort_keys=False))

    def edit_taxonomy(self, change: Callable[[list], object]) -> None:
        """Write THREE_DISCIPLINES as `change` leaves it: it edits the `taxonomy` list of a copy in place."""
        document = orjson.loads(orjson.dumps(THREE_DISCIPLINES))
        change(document["taxonomy"])
        self.write_taxonomy(document)

    def environment(self) -> dict:
        """Write the config overlay (test.yaml); the environment a command in the copy runs with, against the server."""
        (self.dir / "test.yaml").write_text(yaml.safe_dump(self.overlay))
        return {**os.environ, "OPENAI_BASE_URL": self.server.base_url, "OPENAI_API_KEY": API_KEY}

    def command(self, *args: str) -> tuple[list[str], dict]:
        command = ["snakemake", *self.targets, "--cores", str(CORES), "--configfile", "config/tiny.yaml", "test.yaml"]
        command += args
        return command, self.environment()

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command, env = self.command(*args)
        result = subprocess.run(command, cwd=self.dir, env=env, capture_output=True, text=True, timeout=600)
        if check and result.returncode != 0:
            raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def glan(self, *args: str) -> subprocess.CompletedProcess:
        """A `glan` command in the copy, with the same config as `run`."""
        command = [sys.executable, "-m", "glan.cli", *args, "--configfile", "config/tiny.yaml", "test.yaml"]
        return subprocess.run(command, cwd=self.dir, env=self.environment(), capture_output=True, text=True)

    def dataset(self) -> bytes:
        return self.path("results/dataset.jsonl").read_bytes()

    def path(self, relative: str) -> Path:
        return self.dir / relative

    def snapshot(self, folder: str = "results/nodes") -> dict[str, tuple[bytes, int]]:
        """Bytes and mtime of every file under `folder`, to prove what a run left alone."""
        return {
            str(p.relative_to(self.dir)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(self.path(folder).rglob("*"))
            if p.is_file()
        }


@dataclass(frozen=True)
class Build:
    """A finished build of a Workflow, kept as a template to copy (`Workflow(..., built=build.dir)`), never run in."""

    dir: Path
    requests: list[dict]  # the bodies its server received

    def dataset(self) -> bytes:
        return (self.dir / "results/dataset.jsonl").read_bytes()


def shared_build(root: Path, name: str) -> Build:
    """The first build of a default Workflow against a default FakeLLM, made under `root` once by whichever
    process asks first (a file lock: pytest-xdist's workers share `root`) and read by every later one."""
    folder, sent = root / name, root / f"{name}.requests.json"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not sent.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            with FakeLLM() as server:
                Workflow(folder, server).run()
                sent.write_bytes(orjson.dumps(server.requests))
    return Build(folder, orjson.loads(sent.read_bytes()))


@contextlib.contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    """A real filesystem of `size` (tmpfs: the tests run as root) mounted at `path`, for full and read-only disks."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)  # lazy: a failed test may hold a file open


def read_only(path: Path) -> None:
    """Remount the small filesystem at `path` read-only (root ignores a chmod)."""
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
