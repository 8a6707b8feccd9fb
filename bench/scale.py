"""Scale: `snakemake -n` on a fully built tree, and the memory of Snakemake and of one job, by taxonomy size.

A "built" tree is made without an endpoint: one discipline is really built from the loopback
server, and its artifacts are copied to every other discipline in pipeline order, so that every
output is present and newer than its inputs. Then `snakemake -n` must find nothing to do.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import yaml
from harness import Workspace, synthetic_taxonomy

from glan.fake_server import FakeLLM
from glan.taxonomy import leaves, parse_taxonomy

ARTIFACTS = [
    f"{stage}{suffix}"
    for stage, kind in [("subjects", ".json"), ("syllabus", ".json"), ("questions", ".jsonl"), ("answers", ".jsonl")]
    for suffix in (kind, ".rejects.jsonl", ".log", ".tsv")
]
FOLDERS = {".log": "logs", ".tsv": "benchmarks"}


def build_tree(workspace: Workspace, ids: list[str]) -> None:
    workspace.snakemake("--cores", "2", f"results/nodes/{ids[0]}/answers.jsonl")
    for name in ARTIFACTS:
        folder = FOLDERS.get(Path(name).suffix, "results/nodes")
        for node in ids[1:]:
            target = workspace.dir / folder / node / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(workspace.dir / folder / ids[0] / name, target)
        time.sleep(0.01)  # each stage's files strictly newer than the one before
    _, plan = workspace.snakemake("-n", "--cores", "2")
    stage_jobs = [line for line in plan.splitlines() if line.startswith(("rule subjects", "rule answers"))]
    assert not stage_jobs, "copied artifacts were not taken as built:\n" + plan[-3000:]
    workspace.snakemake("--cores", "2")  # the whole-taxonomy jobs (dataset and after)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    args = parser.parse_args()
    overlay = {"select": [], "llm": {"backend": "openai", "model": "bench", "endpoint": "bench"}}
    rows = []
    with FakeLLM() as server:
        for size in args.sizes:
            taxonomy = synthetic_taxonomy(size)
            ids = [leaf.id for leaf in leaves(parse_taxonomy(yaml.safe_dump(taxonomy)))]
            workspace = Workspace(taxonomy, overlay, server.base_url)
            try:
                build_tree(workspace, ids)
                noop, output, snakemake_rss = workspace.measure("-n", "--cores", "2")
                assert "Nothing to be done" in output, output[-2000:]
                job = Path(workspace.dir / "benchmarks" / ids[0] / "answers.tsv").read_text().splitlines()[1]
                rows.append((size, noop, snakemake_rss, float(job.split("\t")[2])))
            finally:
                workspace.cleanup()
    print("disciplines  dry-run(s)  per-1k(s)  snakemake peak RSS (MiB)  job peak RSS (MiB)")
    for size, noop, rss, job_rss in rows:
        print(f"{size:>11}  {noop:>10.1f}  {noop / size * 1000:>9.2f}  {rss:>24.0f}  {job_rss:>18.0f}")


if __name__ == "__main__":
    main()
