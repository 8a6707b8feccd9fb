"""What the benchmarks share: a copy of the workflow in a temp dir, synthetic taxonomies, timed runs."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
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
        command = ["snakemake", "--configfile", "bench.yaml", *args]
        started = time.perf_counter()
        result = subprocess.run(command, cwd=self.dir, env=self.env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"snakemake failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return elapsed, result.stdout + result.stderr

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def children_peak_rss_mb() -> float:
    """Peak resident memory of the largest child process waited for so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
