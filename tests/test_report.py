"""Accounting, run statistics and plots; and one real build: decontamination, exports and `snakemake --report`."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local files only: never ask the Hub

import shutil
import statistics
from collections import Counter

import datasets
import orjson
import pyarrow as pa
import pytest
from helpers import FIRST_BUILD_TOTAL
from records import PATHS, accounted, make_record

from glan.dataset.accounting import run_stats
from glan.dataset.facts import reported
from glan.dataset.report.html import summary_html
from glan.dataset.report.numbers import median, summarise
from glan.dataset.report.plots import MANY_DISCIPLINES, plot_cost, plot_lengths, plot_mix, plot_records, plot_removed
from glan.io import read_json, write_json
from glan.llm.cache import Entry, open_cache
from glan.llm.prices import price_of
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

    result = accounted(records, tmp_path, prices)

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
    totals = result["totals"]
    assert (totals["requests_online"], totals["requests_batch"], totals["unpriced_requests"]) == (12, 0, 4)
    assert totals["saved_by_batch"] == 0.0


def test_a_reply_two_disciplines_share_is_counted_once_where_it_first_appears(tmp_path):
    optics = make_record("Optics question?")
    genetics = make_record("Genetics question?", node="natural-sciences/biology/genetics")
    genetics["provenance"]["keys"]["answers"] = optics["provenance"]["keys"]["answers"]  # the same reply
    missing = make_record("Another genetics question?", node="natural-sciences/biology/genetics")
    fill_cache(tmp_path, [optics, genetics])
    fill_cache(tmp_path, [missing], skip={"answers"})
    missing["provenance"]["keys"]["answers"] = "not-in-the-cache"
    later = make_record("Optics again?", node="mathematics/number-theory")
    later["provenance"]["keys"]["answers"] = "not-in-the-cache"  # a missing reply is also counted once

    result = accounted([optics, genetics, missing, later], tmp_path, {})

    assert result["by_stage"]["answers"]["requests"] == 1 and result["missing_from_cache"]["answers"] == 1
    assert result["by_node"]["natural-sciences/physics/optics"]["requests"] == 4
    # genetics: its subjects, syllabus and two questions replies; its answers are optics' and the cache's
    assert result["by_node"]["natural-sciences/biology/genetics"]["requests"] == 4
    assert result["totals"]["requests"] == 4 + 4 and result["records"] == 4
    assert result["missing_from_cache"] == dict.fromkeys(("subjects", "syllabus", "questions", "answers"), 1)


def test_accounting_prices_each_reply_by_how_it_was_sent(tmp_path):
    """Online replies at the online price, batch ones at the batch price; a batch reply without one is unpriced."""
    both = make_record("Optics question?", model="priced")
    online_only = make_record("Genetics question?", node="natural-sciences/biology/genetics", model="online-only")
    sent = {  # how each stage's reply went, per record
        "priced": {"subjects": "online", "syllabus": "online", "questions": "batch", "answers": "batch"},
        "online-only": {"subjects": "online", "syllabus": "batch", "questions": "batch", "answers": "batch"},
    }
    usage = {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}
    with open_cache(tmp_path) as cache:
        for record in (both, online_only):
            via = sent[record["provenance"]["models"]["answers"]]
            for stage, key in record["provenance"]["keys"].items():
                cache.put(key, Entry(reply=Reply(text="x", usage=usage), via=via[stage]))
    prices = {
        "priced": {
            "input_per_mtok": 2.0,
            "output_per_mtok": 10.0,
            "batch_input_per_mtok": 1.0,
            "batch_output_per_mtok": 5.0,
        },
        "online-only": {"input_per_mtok": 4.0, "output_per_mtok": 8.0},
    }

    result = accounted([both, online_only], tmp_path, prices)

    # a reply of 1000 + 100 tokens: priced 0.003 online, 0.0015 in batch; online-only 0.0048 online, unpriced in batch
    keys = ("requests", "requests_online", "requests_batch", "unpriced_requests", "cost", "saved_by_batch")
    assert {s: tuple(b[k] for k in keys) for s, b in result["by_stage"].items()} == {
        "subjects": (2, 2, 0, 0, 0.0078, 0.0),
        "syllabus": (2, 1, 1, 1, 0.003, 0.0),
        "questions": (2, 0, 2, 1, 0.0015, 0.0015),
        "answers": (2, 0, 2, 1, 0.0015, 0.0015),
    }
    assert tuple(result["totals"][k] for k in keys) == (8, 3, 5, 3, 0.0138, 0.003)
    assert tuple(result["by_model"]["priced"][k] for k in keys) == (4, 2, 2, 0, 0.009, 0.003)
    assert tuple(result["by_model"]["online-only"][k] for k in keys) == (4, 1, 3, 3, 0.0048, 0.0)
    assert result["totals"]["total_tokens"] == 8 * 1100
    assert result["unpriced_models"] == ["online-only"]
    assert result["prices"] == prices


def test_a_batch_price_needs_both_its_prices_and_an_unknown_way_of_sending_is_refused():
    usage = {"prompt_tokens": 1000, "completion_tokens": 100}
    half = {"gpt": {"input_per_mtok": 2.0, "output_per_mtok": 10.0, "batch_input_per_mtok": 1.0}}
    assert price_of("gpt", usage, half) == 0.003
    assert price_of("gpt", usage, half, "batch") is None  # no batch output price: not guessed
    assert price_of("other", usage, half, "batch") is None
    with pytest.raises(ValueError, match="flex"):
        price_of("gpt", usage, half, "flex")


def test_accounting_reports_replies_missing_from_the_cache(tmp_path):
    records = [make_record("Q?")]
    fill_cache(tmp_path, records, skip={"answers"})
    result = accounted(records, tmp_path, {})
    assert result["missing_from_cache"]["answers"] == 1 and result["by_stage"]["answers"]["requests"] == 0


def test_run_stats_sum_the_counts_files_of_the_latest_run_of_each_job(tmp_path):
    first, second = tmp_path / "a.counts.json", tmp_path / "b.counts.json"
    write_json(first, {"stage": "answers", "planned": 8, "cached": 6, "sent": 2, "retries": 1, "rejected": 1})
    write_json(first, {**read_json(first), "failed": 1})
    write_json(second, {"stage": "answers", "planned": 4, "cached": 4, "sent": 0, "rejected": 0, "failed": 0})

    failed = tmp_path / "c.counts.json"
    failed.write_bytes(b"")  # a job that failed before counting

    stats = run_stats([first, second, failed, tmp_path / "missing.counts.json"])

    answers = stats["by_stage"]["answers"]
    assert (answers["planned"], answers["cached"], answers["sent"], answers["failed"], answers["retries"]) == (
        12,
        10,
        2,
        1,
        1,
    )
    assert answers["hit_rate"] == round(10 / 12, 4)
    assert stats["by_stage"]["subjects"] == {"jobs": 0, "hit_rate": None}
    assert stats["totals"]["hit_rate"] == answers["hit_rate"]


def summary_of(records, removed=()):
    """The summary of `records`, the first of them held out as test, with `removed` as what dedup dropped."""
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
    facts = {name: [pa.Table.from_pylist([reported(r) for r in split])] for name, split in splits.items()}
    return summarise(len(records) + len(removed), facts, list(removed), contamination, accounting, run)


def six_records():
    """Two records a discipline; question i has 3 + i words; easy 2, medium 1, hard 3 (the two-session ones)."""
    nodes = [node for node in PATHS for _ in range(2)]
    difficulties = ["easy", "hard", "medium", "hard", "easy", "hard"]
    return [
        make_record(
            f"Question number {i} " + "word " * i,
            node=node,
            difficulty=difficulty,
            strategy="two-sessions" if difficulty == "hard" else "single-session",
        )
        for i, (node, difficulty) in enumerate(zip(nodes, difficulties, strict=True))
    ]


def sample():
    """The summary the plot tests draw: six records, one of them test, and one near-duplicate removed."""
    return summary_of(six_records(), removed=[{"reason": "near-duplicate"}])


# What a figure shows, read back from its artists.


def drawn(ax) -> list[list[float]]:
    """The bars of `ax`, a list per bar(), barh() or hist() call: each bar's length (its height, or its width lying)."""
    return [
        [float(bar.get_width() if bars.orientation == "horizontal" else bar.get_height()) for bar in bars]
        for bars in ax.containers
    ]


def texts(ax) -> list[str]:
    """The texts written on `ax`, in order: bar labels and notes."""
    return [text.get_text() for text in ax.texts]


def ticks(axis) -> list[str]:
    return [label.get_text() for label in axis.get_ticklabels()]


def is_png(path) -> bool:
    return path.read_bytes().startswith(PNG)


def test_the_summary_counts_records_by_split_field_mix_and_length():
    summary = sample()
    assert summary["funnel"] == {"generated": 7, "after_dedup": 6, "after_decontamination": 6, "train": 5, "test": 1}
    assert summary["removed"] == {"exact-duplicate": 0, "near-duplicate": 1, "contamination: gsm8k": 1}
    assert summary["difficulty"] == {"easy": 2, "medium": 1, "hard": 3}
    assert summary["strategy"] == {"single-session": 3, "two-sessions": 3}
    assert summary["fields"] == {"Natural Sciences": {"train": 3, "test": 1}, "Mathematics": {"train": 2}}
    # lengths in words as [words, records] pairs: "Question number {i}" and i more words; one answer length
    assert summary["lengths"] == {"question": [[3 + i, 1] for i in range(6)], "answer": [[6, 6]]}


def test_the_median_of_a_length_histogram_is_the_median_of_the_lengths():
    for lengths in ([7], [1, 2], [3, 3, 5], [2, 9, 9, 10], [4, 4, 4, 4, 8, 8]):
        histogram = sorted(map(list, Counter(lengths).items()))
        assert median(histogram) == statistics.median(lengths), lengths


def test_records_per_field_and_discipline_are_train_bars_with_test_stacked_and_the_total_written(tmp_path):
    fields, disciplines = plot_records(sample(), tmp_path / "fields.png", tmp_path / "disciplines.png")
    assert is_png(tmp_path / "fields.png") and is_png(tmp_path / "disciplines.png")

    (ax,) = fields.axes
    assert ax.get_title() == "Records per field (2 fields)"
    assert ticks(ax.yaxis) == ["Natural Sciences", "Mathematics"]
    train, test = drawn(ax)
    assert (train, test) == ([3, 2], [1, 0])
    assert [bar.get_x() for bar in ax.containers[1]] == train  # test bars start where train bars end
    assert texts(ax) == ["4", "2"]

    (ax,) = disciplines.axes
    assert ax.get_title() == "Records per discipline (3 disciplines)"
    assert ticks(ax.yaxis) == [
        "Optics  (Natural Sciences)",
        "Genetics  (Natural Sciences)",
        "Number Theory  (Mathematics)",
    ]
    assert drawn(ax) == [[1, 2, 2], [1, 0, 0]]
    assert texts(ax) == ["2", "2", "2"]


def test_many_disciplines_are_drawn_as_a_distribution(tmp_path):
    summary = sample()
    sizes = [100] * 5 + [10] * 45  # records in each discipline: five large ones first, then 45 small
    assert len(sizes) > MANY_DISCIPLINES
    summary["disciplines"] = {
        f"f/d{i}": {"path": ["F", f"D{i}"], "train": size - 1, "test": 1} for i, size in enumerate(sizes)
    }
    _, disciplines = plot_records(summary, tmp_path / "fields.png", tmp_path / "disciplines.png")
    assert is_png(tmp_path / "disciplines.png")

    (ax,) = disciplines.axes
    assert ax.get_title() == "Records per discipline (50 disciplines)"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("records in a discipline", "disciplines")
    assert not any(label.startswith("D") for label in ticks(ax.yaxis))  # no bar of its own for a discipline
    (histogram,) = drawn(ax)
    assert (len(histogram), sum(histogram)) == (30, 50)
    assert (histogram[0], histogram[-1]) == (45, 5) and not any(histogram[1:-1])
    assert texts(ax) == ["min 10, median 10, max 100\nfewest: D5 10; D6 10; D7 10; D8 10; D9 10"]

    summary["disciplines"] = dict(list(summary["disciplines"].items())[:MANY_DISCIPLINES])
    _, disciplines = plot_records(summary, tmp_path / "fields.png", tmp_path / "disciplines.png")
    assert len(ticks(disciplines.axes[0].yaxis)) == MANY_DISCIPLINES  # up to the limit, a bar each


def test_the_mix_counts_records_per_difficulty_and_strategy_with_their_share(tmp_path):
    difficulty, strategy = plot_mix(sample(), tmp_path / "mix.png").axes
    assert is_png(tmp_path / "mix.png")
    assert ticks(difficulty.xaxis) == ["easy", "medium", "hard"]
    assert drawn(difficulty) == [[2, 1, 3]]
    assert texts(difficulty) == ["2 (33%)", "1 (17%)", "3 (50%)"]
    assert ticks(strategy.xaxis) == ["single-session", "two-sessions"]
    assert drawn(strategy) == [[3, 3]]
    assert texts(strategy) == ["3 (50%)", "3 (50%)"]


def test_lengths_are_histograms_of_words_per_record_with_the_median_marked(tmp_path):
    question, answer = plot_lengths(sample(), tmp_path / "lengths.png").axes
    assert is_png(tmp_path / "lengths.png")
    (bars,) = question.containers  # a short span of lengths: one bar per number of words, centred on it
    assert {bar.get_x() + bar.get_width() / 2: bar.get_height() for bar in bars} == {n: 1 for n in range(3, 9)}
    assert [list(line.get_xdata()) for line in question.lines] == [[5.5, 5.5]]
    assert texts(question) == [" median 5.5"]
    assert drawn(answer) == [[6]] and texts(answer) == [" median 6"]

    summary = sample()
    summary["lengths"] = {"question": [[3, 2], [5, 1], [120, 1]], "answer": []}
    question, answer = plot_lengths(summary, tmp_path / "lengths.png").axes
    (histogram,) = drawn(question)  # a long span: 40 bins
    assert (len(histogram), histogram[0], histogram[-1], sum(histogram)) == (40, 3, 1, 4)
    assert texts(question) == [" median 4"]
    assert drawn(answer) == [] and texts(answer) == []  # no answers, no bars and no median


def tokens(prompt: int, completion: int, cost: float) -> dict:
    return {"requests": 1, "prompt_tokens": prompt, "completion_tokens": completion, "cost": cost}


def test_cost_stacks_prompt_and_completion_tokens_and_prices_each_stage_in_pipeline_order(tmp_path):
    summary = sample()
    summary["accounting"]["by_stage"] = {  # sorted, as read back from JSON
        "answers": tokens(400_000, 1_450_000, 12.5),
        "questions": tokens(20_000, 30_000, 0.5),
        "subjects": tokens(100, 50, 0.0),
        "syllabus": tokens(1_000, 500, 0.0025),
    }
    summary["accounting"]["totals"]["cost"] = 13.0025
    tokens_ax, cost_ax = plot_cost(summary, tmp_path / "cost.png").axes
    assert is_png(tmp_path / "cost.png")

    assert ticks(tokens_ax.xaxis) == ["subjects", "syllabus", "questions", "answers"]
    prompt, completion = drawn(tokens_ax)
    assert (prompt, completion) == ([100, 1_000, 20_000, 400_000], [50, 500, 30_000, 1_450_000])
    assert [bar.get_y() for bar in tokens_ax.containers[1]] == prompt  # completion stacked on prompt
    assert texts(tokens_ax) == ["150", "1.5k", "50k", "1.85M"]

    assert ticks(cost_ax.xaxis) == ["subjects", "syllabus", "questions", "answers"]
    assert drawn(cost_ax) == [[0.0, 0.0025, 0.5, 12.5]]
    assert texts(cost_ax) == ["0.0025", "0.5000", "12.50"]  # a stage that cost nothing has no label
    assert cost_ax.get_title() == "Estimated cost per stage (total 13.00)"


def test_a_cost_without_prices_says_which_models_have_none_or_that_none_cost_anything(tmp_path):
    summary = sample()
    for stage in summary["accounting"]["by_stage"].values():
        stage["cost"] = 0.0
    summary["accounting"]["unpriced_models"] = ["cheap"]
    _, cost_ax = plot_cost(summary, tmp_path / "cost.png").axes
    assert texts(cost_ax) == ["no price for: cheap"] and cost_ax.get_yticks().size == 0

    summary["accounting"]["unpriced_models"] = []
    _, cost_ax = plot_cost(summary, tmp_path / "cost.png").axes
    assert texts(cost_ax) == ["the price table gives these models no cost"]


def test_removed_shows_the_funnel_the_reasons_and_the_rejected_replies_per_stage(tmp_path):
    summary = sample()
    summary["run"]["by_stage"]["questions"] = {"rejected": 2}
    summary["run"]["by_stage"]["answers"] = {"rejected": 3, "failed": 1}
    funnel, reasons, rejected = plot_removed(summary, tmp_path / "removed.png").axes
    assert is_png(tmp_path / "removed.png")

    assert ticks(funnel.xaxis) == ["generated", "after dedup", "after\ndecontamination"]
    assert drawn(funnel) == [[7, 6, 6]] and texts(funnel) == ["7", "6", "6"]
    assert funnel.get_title() == "Records kept (train 5, test 1)"

    assert ticks(reasons.yaxis) == ["exact-duplicate", "near-duplicate", "contamination: gsm8k"]
    assert drawn(reasons) == [[0, 1, 1]] and texts(reasons) == ["1", "1"]  # the empty bar has no label

    assert ticks(rejected.xaxis) == ["subjects", "syllabus", "questions", "answers"]
    assert drawn(rejected) == [[0, 0, 2, 3], [0, 0, 0, 1]]  # re-asked, and given up
    assert [bar.get_y() for bar in rejected.containers[1]] == [0, 0, 2, 3]  # given up on top of re-asked
    assert texts(rejected) == []


def test_removed_says_so_when_nothing_was_removed_or_rejected(tmp_path):
    summary = sample()
    summary["removed"] = dict.fromkeys(summary["removed"], 0)
    _, reasons, rejected = plot_removed(summary, tmp_path / "removed.png").axes
    assert texts(reasons) == ["no duplicates or benchmark texts found"]
    assert texts(rejected) == ["every reply passed validation"]


def test_the_summary_page_opens_with_the_key_numbers(tmp_path):
    summary_html(sample(), tmp_path / "summary.html")
    page = (tmp_path / "summary.html").read_text()
    assert "records generated</td><td>7" in page and "train / test</td><td>5 / 1" in page
    assert "<td>questions</td>" in page and "<td>test-model</td>" in page


def without_facts(snapshot: dict) -> dict:
    return {path: state for path, state in snapshot.items() if not path.endswith(("/facts.parquet", "/usage.json"))}


def read_jsonl(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def clean_records(workflow) -> list[dict]:
    """The raw dataset less what the cleaning steps removed (their removal files), in order."""
    removals = ("results/clean/duplicates.jsonl", "results/clean/contaminated.jsonl")
    removed = {entry["id"] for path in removals for entry in read_jsonl(workflow.path(path))}
    return [r for r in read_jsonl(workflow.path("results/dataset.jsonl")) if r["id"] not in removed]


def exported(workflow) -> list[dict]:
    return [r for path in sorted(workflow.path("results/export/jsonl").iterdir()) for r in read_jsonl(path)]


@pytest.mark.built
def test_a_build_decontaminates_exports_and_reports(workflow, tmp_path):
    """Build, leak one generated question into a benchmark file, rebuild: only that record goes, nothing is sent."""
    clean = clean_records(workflow)
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

    # the stages' files stay; each discipline's facts (benchmark matches among them) are computed again
    assert workflow.server.count == 0 and without_facts(workflow.snapshot()) == without_facts(nodes)
    assert [r["id"] for r in clean_records(workflow)] == [r["id"] for r in clean if r["id"] != leaked["id"]]
    (removed,) = read_jsonl(workflow.path("results/clean/contaminated.jsonl"))
    assert (removed["id"], removed["benchmark"], removed["matches"][0]["item"]) == (leaked["id"], "leak", 1)
    contamination = orjson.loads(workflow.path("results/clean/contamination.json").read_bytes())
    assert [(b["name"], b["texts"], b["removed"]) for b in contamination["benchmarks"]] == [("leak", 2, 1)]
    assert len(exported(workflow)) == 23 and leaked["id"] not in {r["id"] for r in exported(workflow)}
    stats = orjson.loads(workflow.path("results/report/stats.json").read_bytes())
    assert stats["removed"]["contamination: leak"] == 1
    assert stats["accounting"]["totals"]["requests"] == FIRST_BUILD_TOTAL  # every reply behind the raw dataset, once
    assert stats["run"]["totals"]["sent"] == FIRST_BUILD_TOTAL and stats["run"]["totals"]["hit_rate"] == 0

    result = workflow.run("--report", "report.html")
    page = workflow.path("report.html").read_text()
    assert "Report created" in result.stdout + result.stderr
    for name in (*PLOTS, "summary", "browser"):
        assert f"results/report/{name}." in page, f"{name} missing from the report"

    # the exports are a function of the clean dataset: wiped, they come back byte for byte (but the export's
    # note of which file it wrote when)
    exports = workflow.snapshot("results/export")
    shutil.rmtree(workflow.path("results/export"))
    workflow.run()
    assert {p: b for p, (b, _) in workflow.snapshot("results/export").items() if not p.endswith(".shards.json")} == {
        p: b for p, (b, _) in exports.items() if not p.endswith(".shards.json")
    }
