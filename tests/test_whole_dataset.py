"""The whole-dataset steps after an edit join per-discipline facts, and give what a full pass gives.

Real Snakemake runs against the loopback server, three disciplines at the tiny scale: an edit of one
discipline recomputes that discipline's facts only, and every whole-dataset output (the dataset, the
cleaning, accounting, exports and the report's numbers and plots) is byte-identical to a build of the
same taxonomy from a wiped results/ folder.
"""

from __future__ import annotations

import shutil

import orjson
from helpers import OPTICS, optics

# What the report takes from the run's stage logs (how many requests were sent or cached this time) is
# about the runs, not the dataset: an edit and a rebuild from the cache rightly differ there.
RUN_HISTORY = {"results/report/summary.html", "results/report/removed.png", "results/report/stats.json"}


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
    return {path: data for path, data in found.items() if path not in RUN_HISTORY}


def facts_files(workflow) -> dict[str, bytes]:
    return {str(p.relative_to(workflow.dir)): p.read_bytes() for p in workflow.path("results").rglob("facts.parquet")}


def test_an_edit_recomputes_one_disciplines_facts_and_the_outputs_equal_a_full_pass(workflow):
    benchmark = workflow.path("benchmark.jsonl")
    benchmark.write_text('{"question": "A benchmark question that no homework question of the build contains."}\n')
    workflow.overlay["clean"] = {"decontaminate": {"benchmarks": [{"path": str(benchmark), "field": "question"}]}}
    workflow.run()
    facts_before, outputs_before = facts_files(workflow), outputs(workflow)
    assert len(facts_before) == 3

    workflow.edit_taxonomy(lambda taxonomy: optics(taxonomy).update(description="Geometric and wave optics, lasers."))
    edit = workflow.run()
    changed = {path for path, data in facts_files(workflow).items() if facts_before[path] != data}
    assert changed == {f"{OPTICS}/facts.parquet"}
    assert edit.stderr.count("rule facts:") == 1
    incremental = outputs(workflow)
    assert incremental["results/dataset.jsonl"] != outputs_before["results/dataset.jsonl"]

    shutil.rmtree(workflow.path("results"))
    workflow.server.reset()
    workflow.run()
    assert workflow.server.count == 0
    full = outputs(workflow)
    assert sorted(full) == sorted(incremental)
    assert [path for path in full if full[path] != incremental[path]] == []
