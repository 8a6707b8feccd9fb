"""What tests share: the workflow copied into a temp dir and run with snakemake, and a small taxonomy."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from glan.fake_server import FakeLLM

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW_PARTS = ["Snakefile", "rules", "scripts", "prompts", "config", "envs", "profiles", "report"]
API_KEY = "sk-test-SECRET-do-not-store-0123456789"

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


class Workflow:
    """A copy of the workflow in a temp dir, run with `snakemake` as a subprocess against a server."""

    def __init__(self, directory: Path, server: FakeLLM):
        self.dir = directory
        self.server = server
        for part in WORKFLOW_PARTS:
            source = ROOT / part
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, directory / part)
        # A fixed endpoint identity, so that runs against different servers share cache keys.
        self.overlay = {"select": [], "llm": {"backend": "openai", "model": "fake-model", "endpoint": "fake"}}
        self.write_taxonomy(THREE_DISCIPLINES)

    def write_taxonomy(self, document: dict) -> None:
        (self.dir / "taxonomy.yaml").write_text(yaml.safe_dump(document, sort_keys=False))

    def command(self, *args: str) -> tuple[list[str], dict]:
        (self.dir / "test.yaml").write_text(yaml.safe_dump(self.overlay))
        env = {**os.environ, "OPENAI_BASE_URL": self.server.base_url, "OPENAI_API_KEY": API_KEY}
        return ["snakemake", "--cores", "2", "--configfile", "config/tiny.yaml", "test.yaml", *args], env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command, env = self.command(*args)
        result = subprocess.run(command, cwd=self.dir, env=env, capture_output=True, text=True, timeout=600)
        if check and result.returncode != 0:
            raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

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
