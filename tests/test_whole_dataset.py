"""The whole-dataset steps after an edit join per-discipline facts, and give what a full pass gives.

Real Snakemake runs against the loopback server, three disciplines at the tiny scale: an edit of one
discipline recomputes that discipline's facts only, and every whole-dataset output (the dataset, the
cleaning, accounting, exports and the report's numbers and plots) is byte-identical to a build of the
same taxonomy from a wiped results/ folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local files only: never ask the Hub

import datasets
import orjson
from helpers import OPTICS, optics

# What the report takes from the run's stage logs (how many requests were sent or cached this time) is
# about the runs, not the dataset: an edit and a rebuild from the cache rightly differ there.
RUN_HISTORY = {"results/report/summary.html", "results/report/removed.png", "results/report/stats.json"}
# The export's note of which shard file it wrote when (their mtimes) is about the run too.
EXPORT_STATE = "results/export/.shards.json"


def outputs(workflow) -> dict[str, bytes]:
    """Every whole-dataset output: what is under results/ but the disciplines' own files."""
    found = {
        str(path.relative_to(workflow.dir)): path.read_bytes()
        for path in sorted(workflow.path("results").rglob("*"))
        if path.is_file() and "nodes" not in path.relative_to(workflow.path("results")).parts
    }
    found["stats.json without the run"] = orjson.dumps(
        {k: v for k, v in orjson.loads(found["results/report/stats.json"]).items() if k != "run"}
    )
    return {path: data for path, data in found.items() if path not in RUN_HISTORY | {EXPORT_STATE}}


def facts_files(workflow) -> dict[str, bytes]:
    return {str(p.relative_to(workflow.dir)): p.read_bytes() for p in workflow.path("results").rglob("facts.parquet")}


def shards(workflow) -> dict[str, list[tuple[bytes, int]]]:
    """Per discipline, the content hash and mtime of each export shard file that holds it."""
    held: dict[str, list[tuple[bytes, int]]] = {}
    for shard in orjson.loads(workflow.path("results/export/shards.json").read_bytes())["shards"]:
        for kind in ("parquet", "jsonl"):
            path = workflow.path("results/export") / shard[kind]
            for node in shard["disciplines"]:
                held.setdefault(node, []).append((hashlib.sha256(path.read_bytes()).digest(), path.stat().st_mtime_ns))
    return held


def test_an_edit_recomputes_one_disciplines_facts_and_the_outputs_equal_a_full_pass(workflow, tmp_path):
    benchmark = workflow.path("benchmark.jsonl")
    benchmark.write_text('{"question": "A benchmark question that no homework question of the build contains."}\n')
    workflow.overlay["clean"] = {"decontaminate": {"benchmarks": [{"path": str(benchmark), "field": "question"}]}}
    workflow.overlay["export"] = {"max_shard_bytes": 4000}  # a few shards a discipline, none shared
    workflow.run()
    facts_before, outputs_before, shards_before = facts_files(workflow), outputs(workflow), shards(workflow)
    assert len(facts_before) == 3 and all(len(files) >= 4 for files in shards_before.values())

    workflow.edit_taxonomy(lambda taxonomy: optics(taxonomy).update(description="Geometric and wave optics, lasers."))
    edit = workflow.run()
    changed = {path for path, data in facts_files(workflow).items() if facts_before[path] != data}
    assert changed == {f"{OPTICS}/facts.parquet"}
    assert edit.stderr.count("rule facts:") == 1
    incremental = outputs(workflow)
    assert incremental["results/dataset.jsonl"] != outputs_before["results/dataset.jsonl"]
    # only the edited discipline's shards were written: the others' files are as they were, to the mtime
    shards_after = shards(workflow)
    optics_id = OPTICS.removeprefix("results/nodes/")
    assert {node for node in shards_after if shards_after[node] != shards_before[node]} == {optics_id}
    assert not {h for h, _ in shards_after[optics_id]} & {h for h, _ in shards_before[optics_id]}
    # and `datasets` reads every split of the folder, as many rows as the report counts
    loaded = datasets.load_dataset(str(workflow.path("results/export/hf")), cache_dir=str(tmp_path / "hf-cache"))
    funnel = orjson.loads(workflow.path("results/report/stats.json").read_bytes())["funnel"]
    assert {split: loaded[split].num_rows for split in loaded} == {"train": funnel["train"], "test": funnel["test"]}

    shutil.rmtree(workflow.path("results"))
    workflow.server.reset()
    workflow.run()
    assert workflow.server.count == 0
    full = outputs(workflow)
    assert sorted(full) == sorted(incremental)
    assert [path for path in full if full[path] != incremental[path]] == []
