"""Accounting, run statistics and plots; and one real build: decontamination, exports and `snakemake --report`."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local files only: never ask the Hub

import shutil
import statistics
from collections import Counter

import datasets
import orjson
from records import PATHS, make_record

from glan.dataset.accounting import account, read_summary, run_stats
from glan.dataset.report import plots
from glan.dataset.report.html import summary_html
from glan.dataset.report.numbers import median, summarise
from glan.llm.cache import Entry, open_cache
from glan.llm.request import Reply

PNG = b"\x89PNG\r\n\x1a\n"
PLOTS = ("records_per_field", "records_per_discipline", "mix", "lengths", "removed", "cost")


def fill_cache(cache_dir, records, usage=None, skip=()):
    with open_cache(cache_dir) as cache:
        for record in records:
            for stage, key in record["provenance"]["keys"].items():
                if stage not in skip:
                    tokens = (usage or {}).get(stage, {"prompt_tokens": 100, "completion_tokens": 50})
                    cache.put(key, Entry(Reply(text="x", usage={**tokens, "total_tokens": sum(tokens.values())})))


def test_accounting_counts_each_reply_once_per_stage_model_and_node(tmp_path):
    optics = [make_record(f"Optics question {i}?") for i in range(3)]  # one subjects and one syllabus reply
    genetics = [make_record("Genetics question?", node="natural-sciences/biology/genetics", model="cheap")]
    records = optics + genetics
    fill_cache(tmp_path, records)
    prices = {"test-model": {"input_per_mtok": 2.0, "output_per_mtok": 10.0}}

    result = account(iter(records), tmp_path, prices)  # read once, as a file is

    assert {s: b["requests"] for s, b in result["by_stage"].items()} == {
        "subjects": 2,
        "syllabus": 2,
        "questions": 4,
        "answers": 4,
    }
    assert result["totals"]["prompt_tokens"] == 12 * 100 and result["totals"]["completion_tokens"] == 12 * 50
    assert result["by_model"]["test-model"]["requests"] == 8 and result["by_model"]["cheap"]["requests"] == 4
    assert result["by_node"]["natural-sciences/physics/optics"]["requests"] == 8
    assert result["by_model"]["test-model"]["cost"] == round(8 * (100 * 2.0 + 50 * 10.0) / 1e6, 6)
    assert result["totals"]["cost"] == result["by_model"]["test-model"]["cost"]
    assert result["unpriced_models"] == ["cheap"]
    assert result["missing_from_cache"] == dict.fromkeys(("subjects", "syllabus", "questions", "answers"), 0)


def test_accounting_reports_replies_missing_from_the_cache(tmp_path):
    records = [make_record("Q?")]
    fill_cache(tmp_path, records, skip={"answers"})
    result = account(records, tmp_path, {})
    assert result["missing_from_cache"]["answers"] == 1 and result["by_stage"]["answers"]["requests"] == 0


def test_run_stats_read_the_last_summary_line_of_each_stage_log(tmp_path):
    first = tmp_path / "a.log"
    first.write_text(
        "2026-01-01 00:00:00,000 INFO HTTP Request: POST http://127.0.0.1/v1/chat/completions\n"
        "2026-01-01 00:00:01,000 INFO answers: planned=8 cached=0 sent=8 rejected_replies=1 failed=0\n"
        "2026-01-01 00:00:02,000 INFO answers: planned=8 cached=6 sent=2 retried=1 rejected_replies=1 failed=1\n"
    )
    second = tmp_path / "b.log"
    second.write_text("2026-01-01 00:00:00,000 INFO answers: planned=4 cached=4 sent=0 rejected_replies=0 failed=0\n")
    empty = tmp_path / "c.log"
    empty.write_text("2026-01-01 00:00:00,000 INFO subjects: nothing to count here\n")
    assert read_summary(empty) is None

    stats = run_stats([first, second, empty, tmp_path / "missing.log"])

    answers = stats["by_stage"]["answers"]
    assert (answers["jobs"], answers["cached"], answers["sent"], answers["failed"], answers["retried"]) == (
        2,
        10,
        2,
        1,
        1,
    )
    assert answers["hit_rate"] == round(10 / 12, 4)
    assert stats["by_stage"]["subjects"] == {"jobs": 0, "hit_rate": None}
    assert stats["totals"]["hit_rate"] == answers["hit_rate"]


def summary_of(records, removed=()):
    splits = {"train": records[1:], "test": records[:1]}
    accounting = {
        "totals": {"requests": 4, "prompt_tokens": 40, "completion_tokens": 80, "total_tokens": 120, "cost": 0.01},
        "by_stage": {
            s: {"requests": 1, "prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30, "cost": 0.0025}
            for s in ("answers", "questions", "subjects", "syllabus")  # as read back from JSON: sorted
        },
        "by_model": {"test-model": {"requests": 4, "total_tokens": 120, "cost": 0.01}},
        "unpriced_models": [],
    }
    contamination = {"benchmarks": [{"name": "gsm8k", "removed": 1}]}
    run = run_stats([])
    return summarise(records + list(removed), splits, list(removed), contamination, accounting, run)


def test_plots_and_summary_page_are_drawn(tmp_path):
    records = [
        make_record(f"Question number {i} " + "word " * i, node=node, difficulty=d, strategy=s)
        for i, (node, d, s) in enumerate(
            [(n, d, s) for n in PATHS for d, s in (("easy", "single-session"), ("hard", "two-sessions"))]
        )
    ]
    summary = summary_of(records, removed=[{"reason": "near-duplicate"}])
    assert summary["funnel"] == {"generated": 7, "after_dedup": 6, "after_decontamination": 6, "train": 5, "test": 1}
    assert summary["removed"] == {"exact-duplicate": 0, "near-duplicate": 1, "contamination: gsm8k": 1}
    assert summary["difficulty"] == {"easy": 3, "medium": 0, "hard": 3}
    assert summary["fields"]["Natural Sciences"] == {"test": 1, "train": 3}
    # lengths in words as [words, records] pairs: "Question number {i}" and i more words; one answer length
    assert summary["lengths"] == {"question": [[3 + i, 1] for i in range(6)], "answer": [[6, 6]]}

    paths = {name: tmp_path / f"{name}.png" for name in PLOTS}
    plots.plot_records(summary, paths["records_per_field"], paths["records_per_discipline"])
    plots.plot_mix(summary, paths["mix"])
    plots.plot_lengths(summary, paths["lengths"])
    plots.plot_removed(summary, paths["removed"])
    plots.plot_cost(summary, paths["cost"])
    summary_html(summary, tmp_path / "summary.html")
    assert all(path.read_bytes().startswith(PNG) for path in paths.values())
    page = (tmp_path / "summary.html").read_text()
    assert "records generated</td><td>7" in page and "<td>questions</td>" in page


def test_the_median_of_a_length_histogram_is_the_median_of_the_lengths():
    for lengths in ([7], [1, 2], [3, 3, 5], [2, 9, 9, 10], [4, 4, 4, 4, 8, 8]):
        histogram = sorted(map(list, Counter(lengths).items()))
        assert median(histogram) == statistics.median(lengths), lengths


def test_many_disciplines_are_drawn_as_a_distribution(tmp_path):
    summary = summary_of([make_record("Q?")])
    summary["disciplines"] = {
        f"f/d{i}": {"path": ["F", f"D{i}"], "train": i, "test": 1} for i in range(plots.MANY_DISCIPLINES + 10)
    }
    plots.plot_records(summary, tmp_path / "fields.png", tmp_path / "disciplines.png")
    assert (tmp_path / "disciplines.png").read_bytes().startswith(PNG)


def read_jsonl(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_a_build_decontaminates_exports_and_reports(workflow, tmp_path):
    """Build, leak one generated question into a benchmark file, rebuild: only that record goes, nothing is sent."""
    workflow.run()
    clean = read_jsonl(workflow.path("results/clean/dataset.jsonl"))
    assert len(clean) == len(read_jsonl(workflow.path("results/dataset.jsonl"))) == 24
    loaded = datasets.load_dataset(str(workflow.path("results/export/hf")), cache_dir=str(tmp_path / "hf-cache"))
    assert (loaded["train"].num_rows, loaded["test"].num_rows) == (12, 12)  # 8 a discipline, at most half held out

    leaked = clean[5]
    bench = workflow.path("bench/leak.jsonl")
    bench.parent.mkdir()
    rows = [
        {"problem": "An unrelated benchmark question about trains and stations."},
        {"problem": leaked["messages"][0]["content"]},
    ]
    bench.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    workflow.overlay["clean"] = {
        "decontaminate": {
            "benchmarks": [{"name": "leak", "path": "bench/leak.jsonl", "field": "problem"}],
            "min_words": 2,
        }
    }
    nodes = workflow.snapshot()
    workflow.server.reset()
    workflow.run()

    assert workflow.server.count == 0 and workflow.snapshot() == nodes
    assert [r["id"] for r in read_jsonl(workflow.path("results/clean/dataset.jsonl"))] == [
        r["id"] for r in clean if r["id"] != leaked["id"]
    ]
    (removed,) = read_jsonl(workflow.path("results/clean/contaminated.jsonl"))
    assert (removed["id"], removed["benchmark"], removed["matches"][0]["item"]) == (leaked["id"], "leak", 1)
    contamination = orjson.loads(workflow.path("results/clean/contamination.json").read_bytes())
    assert [(b["name"], b["texts"], b["removed"]) for b in contamination["benchmarks"]] == [("leak", 2, 1)]
    exported = read_jsonl(workflow.path("results/export/train.jsonl")) + read_jsonl(
        workflow.path("results/export/test.jsonl")
    )
    assert len(exported) == 23 and leaked["id"] not in {r["id"] for r in exported}
    stats = orjson.loads(workflow.path("results/report/stats.json").read_bytes())
    assert stats["removed"]["contamination: leak"] == 1
    assert stats["accounting"]["totals"]["requests"] == 66  # every reply behind the raw dataset, once
    assert stats["run"]["totals"]["sent"] == 66 and stats["run"]["totals"]["hit_rate"] == 0

    result = workflow.run("--report", "report.html")
    page = workflow.path("report.html").read_text()
    assert "Report created" in result.stdout + result.stderr
    for name in (*PLOTS, "summary"):
        assert f"results/report/{name}." in page, f"{name} missing from the report"

    # the exports are a function of the clean dataset: wiped, they come back byte for byte
    exports = workflow.snapshot("results/export")
    shutil.rmtree(workflow.path("results/export"))
    workflow.run()
    assert {p: b for p, (b, _) in workflow.snapshot("results/export").items()} == {
        p: b for p, (b, _) in exports.items()
    }
