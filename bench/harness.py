"""What the benchmarks share: a copy of the workflow in a temp dir, synthetic taxonomies, timed runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the loopback server lives with the tests, outside the package
from fake_llm import FakeLLM  # noqa: E402

__all__ = ["FakeLLM"]  # the benchmarks take it from here, after the path above is set
WORKFLOW_PARTS = ["Snakefile", "rules", "scripts", "prompts", "config", "envs", "profiles", "report"]


def synthetic_taxonomy(disciplines: int, per_group: int = 10) -> dict:
    """Fields of ten sub-fields of `per_group` disciplines each, as many as needed."""
    fields, made = [], 0
    while made < disciplines:
        field = {"name": f"Field {len(fields)}", "children": []}
        for s in range(10):
            if made >= disciplines:
                break
            count = min(per_group, disciplines - made)
            field["children"].append(
                {
                    "name": f"Subfield {len(fields)}-{s}",
                    "children": [
                        {"name": f"Discipline {made + d}", "description": f"Synthetic discipline {made + d}."}
                        for d in range(count)
                    ],
                }
            )
            made += count
        fields.append(field)
    return {"taxonomy": fields}


# Stage settings of the throughput benchmarks, by shape. Requests per discipline:
# - small: 4 subjects queries, 20 syllabi, 160 questions, 160 answers = 344: many jobs of few requests;
# - glan: config/glan.yaml's subjects (10 queries of 20), 200 syllabi, 12 questions a subject:
#   10 + 200 + 2,400 + 2,400 = 5,010: GLAN's proportions (the paper asks for 40 a subject), where a job
#   carries thousands of requests.
WORKLOADS = {
    "small": {
        "subjects": {"queries": 4, "per_query": 5, "subtopics": 3},
        "syllabus": {"sessions": 4, "concepts_per_session": 4},
        "questions": {"per_subject": 8, "max_concepts": 4},
    },
    "glan": {
        "subjects": {"queries": 10, "per_query": 20, "subtopics": 3},
        "syllabus": {"sessions": 4, "concepts_per_session": 4},
        "questions": {"per_subject": 12, "max_concepts": 4},
    },
}


def workload(cap: int, shape: str = "small") -> dict:
    """The config overlay of the throughput benchmarks, sent to the loopback server."""
    return {
        "select": [],
        "llm": {"backend": "openai", "model": "bench", "endpoint": "bench", "concurrency": cap},
        "stages": WORKLOADS[shape],
    }


class Workspace:
    def __init__(self, taxonomy: dict, overlay: dict, base_url: str = "http://127.0.0.1:9/v1"):
        self.dir = Path(tempfile.mkdtemp(prefix="glan-bench-"))
        for part in WORKFLOW_PARTS:
            source = ROOT / part
            if source.exists():
                (shutil.copytree if source.is_dir() else shutil.copy2)(source, self.dir / part)
        (self.dir / "taxonomy.yaml").write_text(yaml.safe_dump(taxonomy, sort_keys=False))
        (self.dir / "bench.yaml").write_text(yaml.safe_dump(overlay))
        self.env = {**os.environ, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "sk-bench"}

    def snakemake(self, *args: str) -> tuple[float, str]:
        """Run snakemake; return wall seconds and its output. Raises on failure."""
        elapsed, output, _ = self.measure(*args)
        return elapsed, output

    def measure(self, *args: str) -> tuple[float, str, float]:
        """Run snakemake; return wall seconds, its output and its own peak RSS in MiB."""
        command = ["snakemake", "--configfile", "bench.yaml", *args]
        with tempfile.TemporaryFile("w+") as log:
            started = time.perf_counter()
            process = subprocess.Popen(command, cwd=self.dir, env=self.env, stdout=log, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(process.pid, 0)
            elapsed = time.perf_counter() - started
            process.returncode = os.waitstatus_to_exitcode(status)
            log.seek(0)
            output = log.read()
        if process.returncode != 0:
            raise RuntimeError(f"snakemake failed:\n{output[-5000:]}")
        return elapsed, output, usage.ru_maxrss / 1024

    def build(self, cores: int) -> tuple[float, float]:
        """Build everything; return the seconds to results/dataset.jsonl (its mtime: every request
        answered, every record joined) and to the end of the whole build."""
        started = time.time()
        wall, _ = self.snakemake("--cores", str(cores))
        return (self.dir / "results/dataset.jsonl").stat().st_mtime - started, wall

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
