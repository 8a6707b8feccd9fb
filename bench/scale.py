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
from harness import FakeLLM, Workspace, synthetic_taxonomy

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


def logged_rss(log: Path) -> int:
    """The last peak RSS a job logged (glan.runtime.run), in MiB."""
    return int(
        next(line for line in log.read_text().splitlines()[::-1] if "peak RSS" in line).split("peak RSS ")[1].split()[0]
    )


def dataset_rules_rss(workspace: Workspace) -> dict[str, int]:
    """Peak RSS of each rule that reads the whole dataset."""
    return {
        log.stem: logged_rss(log)
        for log in sorted((workspace.dir / "logs").glob("**/*.log"))
        if log.parent.name in ("logs", "clean", "report")
    }


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
                rows.append(
                    (
                        size,
                        noop,
                        snakemake_rss,
                        logged_rss(workspace.dir / "logs" / ids[0] / "answers.log"),
                        dataset_rules_rss(workspace),
                    )
                )
            finally:
                workspace.cleanup()
    print("disciplines  dry-run(s)  per-1k(s)  peak RSS (MiB): snakemake  stage server  whole-dataset rules")
    for size, noop, rss, server_rss, dataset_rss in rows:
        rules = ", ".join(f"{rule} {value:.0f}" for rule, value in dataset_rss.items())
        print(f"{size:>11}  {noop:>10.1f}  {noop / size * 1000:>9.2f}  {rss:>26.0f}  {server_rss:>12}  {rules}")


if __name__ == "__main__":
    main()
