"""Cached input tokens: kept in the stored usage, priced at the cached price, estimated by `glan plan`.

The loopback server reports `prompt_tokens_details.cached_tokens` as OpenAI counts them: the prompt's
prefix an earlier request of the model had, from 1,024 tokens (of 4 bytes), in 128-token steps. Optics
gets instructions long enough that each of its prompts passes 1,024 tokens in the system text (or the
subjects query) alone; the prompts of the other disciplines stay short, so nothing of theirs is cached.
"""

from __future__ import annotations

import shutil

import orjson
import pytest
from fake_llm import FakeLLM
from helpers import FIRST_BUILD_TOTAL, OPTICS, ROOT, Workflow, optics
from records import accounted, make_record
from test_batch import BATCH
from test_batch_cli import plan
from test_report import sample

from glan.cli.plan import build_plan
from glan.cli.table import format_plan
from glan.dataset.report.plots import plot_cost
from glan.llm.backends.openai_compat import reply_of
from glan.llm.cache import Entry, open_cache
from glan.llm.prices import price_of
from glan.llm.request import Reply

LONG = " ".join(f"Rule {i}: give every quantity with its SI unit." for i in range(120))  # about 1,500 tokens
OPTICS_ID = OPTICS.removeprefix("results/nodes/")
PRICES = {  # cached: a quarter of the input price, online and in batch; batch: half of every online price
    "fake-model": {
        "input_per_mtok": 1.0,
        "cached_input_per_mtok": 0.25,
        "output_per_mtok": 2.0,
        "batch_input_per_mtok": 0.5,
        "batch_cached_input_per_mtok": 0.125,
        "batch_output_per_mtok": 1.0,
    }
}
REASONING = 3


def long_instructions(workflow: Workflow) -> Workflow:
    workflow.edit_taxonomy(lambda taxonomy: optics(taxonomy).update(instructions=LONG))
    workflow.overlay["prices"] = PRICES
    return workflow


def read_json(workflow: Workflow, path: str):
    return orjson.loads(workflow.path(path).read_bytes())


def stored_usage(workflow: Workflow) -> dict[str, list[tuple[str, dict]]]:
    """Per stage, (node, usage) of every cached reply behind the dataset, each key once."""
    records = [orjson.loads(line) for line in workflow.dataset().splitlines()]
    keys = {(s, k, r["provenance"]["node"]) for r in records for s, k in r["provenance"]["keys"].items()}
    found: dict[str, list[tuple[str, dict]]] = {}
    with open_cache(workflow.path("cache")) as cache:
        for stage, key, node in sorted(keys):
            found.setdefault(stage, []).append((node, cache.get(key).reply.usage))
    return found


def cached_of(usage: dict) -> int:
    return usage["prompt_tokens_details"]["cached_tokens"]


def test_a_usage_keeps_cached_and_reasoning_tokens_nested_and_a_usage_without_them_as_before():
    def usage(given: dict | None) -> dict:
        line_body = {"model": "m", "choices": [{"message": {"content": "{}"}, "finish_reason": "stop"}]}
        return reply_of({**line_body, **({} if given is None else {"usage": given})}).usage

    counts = {"prompt_tokens": 1200, "completion_tokens": 80, "total_tokens": 1280}
    assert usage(counts) == counts  # a server that gives no details: stored exactly as before
    assert usage(None) == {}
    detailed = {
        **counts,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 64, "accepted_prediction_tokens": 0},
    }
    assert usage(detailed) == {
        **counts,
        "prompt_tokens_details": {"cached_tokens": 1024},
        "completion_tokens_details": {"reasoning_tokens": 64},
    }
    sparse = {**counts, "prompt_tokens_details": {"cached_tokens": None}, "completion_tokens_details": None}
    assert usage(sparse) == counts  # null sub-fields dropped, and the details dicts they leave empty
    assert usage({**counts, "prompt_tokens_details": {"cached_tokens": 0}}) == {
        **counts,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def test_cached_prompt_tokens_cost_the_cached_price_and_without_one_the_input_price(tmp_path):
    """docs/exports.md's example: gpt-4o at OpenAI's prices, 2,000 prompt tokens (1,024 cached) and 100 completion."""
    gpt_4o = {
        "input_per_mtok": 2.50,
        "cached_input_per_mtok": 1.25,
        "output_per_mtok": 10.00,
        "batch_input_per_mtok": 1.25,
        "batch_cached_input_per_mtok": 0.625,
        "batch_output_per_mtok": 5.00,
    }
    usage = {"prompt_tokens": 2000, "completion_tokens": 100, "prompt_tokens_details": {"cached_tokens": 1024}}
    prices = {"gpt-4o": gpt_4o}
    assert price_of("gpt-4o", usage, prices) == pytest.approx((976 * 2.50 + 1024 * 1.25 + 100 * 10.00) / 1e6)
    assert price_of("gpt-4o", usage, prices) == pytest.approx(0.00472)
    assert price_of("gpt-4o", usage, prices, "batch") == pytest.approx(0.00236)
    uncached_prices = {"gpt-4o": {k: v for k, v in gpt_4o.items() if "cached" not in k}}
    assert price_of("gpt-4o", usage, uncached_prices) == pytest.approx(0.006)

    record = make_record("Q?", model="gpt-4o")
    with open_cache(tmp_path) as cache:
        for key in record["provenance"]["keys"].values():
            cache.put(key, Entry(Reply(text="x", usage=usage)))
    answers = accounted([record], tmp_path, prices)["by_stage"]["answers"]
    assert (answers["cached_tokens"], answers["cost"], answers["saved_by_cache"]) == (1024, 0.00472, 0.00128)
    assert accounted([record], tmp_path, uncached_prices)["by_stage"]["answers"]["saved_by_cache"] == 0.0


def test_the_cost_plot_names_what_the_prefix_cache_saved_when_it_saved_anything(tmp_path):
    summary = sample()
    _, cost_ax = plot_cost(summary, tmp_path / "cost.png").axes
    assert cost_ax.get_title() == "Estimated cost per stage (total 0.0100)"
    summary["accounting"]["totals"]["saved_by_cache"] = 0.004
    _, cost_ax = plot_cost(summary, tmp_path / "cost.png").axes
    assert cost_ax.get_title() == "Estimated cost per stage (total 0.0100; the prefix cache saved 0.0040)"


def test_a_build_stores_cached_tokens_and_accounting_prices_them_at_the_cached_price(tmp_path):
    with FakeLLM(reasoning_tokens=REASONING) as server:
        workflow = long_instructions(Workflow(tmp_path, server))
        workflow.run()
        usages = stored_usage(workflow)

        # Stored as the server nests them, on every reply; only Optics's prompts are long enough to cache.
        every = [(node, u) for found in usages.values() for node, u in found]
        assert len(every) == FIRST_BUILD_TOTAL
        assert all(u["completion_tokens_details"] == {"reasoning_tokens": REASONING} for _, u in every)
        assert all(cached_of(u) == 0 for node, u in every if node != OPTICS_ID)
        assert all(u["prompt_tokens"] >= 1024 for node, u in every if node == OPTICS_ID)
        for stage, found in usages.items():
            cached = sorted(cached_of(u) for node, u in found if node == OPTICS_ID)
            assert cached[0] == 0 and cached[1] >= 1024, stage  # the first of a stage is sent cold, then cached
            assert all(c % 128 == 0 for c in cached), stage
        # The two subjects queries of Optics are one prompt: the second is cached up to its last whole step.
        (first, second) = sorted((u for node, u in usages["subjects"] if node == OPTICS_ID), key=cached_of)
        assert first["prompt_tokens"] == second["prompt_tokens"]
        assert cached_of(second) == second["prompt_tokens"] // 128 * 128

        # Accounting: the cached tokens at 0.25, the rest of the prompt at 1.0, completions at 2.0 a million.
        prompt = sum(u["prompt_tokens"] for _, u in every)
        cached = sum(cached_of(u) for _, u in every)
        completion = sum(u["completion_tokens"] for _, u in every)
        totals = read_json(workflow, "results/report/accounting.json")["totals"]
        assert (totals["prompt_tokens"], totals["cached_tokens"], totals["completion_tokens"]) == (
            prompt,
            cached,
            completion,
        )
        assert totals["reasoning_tokens"] == REASONING * FIRST_BUILD_TOTAL
        cost = ((prompt - cached) * 1.0 + cached * 0.25 + completion * 2.0) / 1e6
        assert totals["cost"] == round(cost, 6) and totals["saved_by_cache"] == round(cached * 0.75 / 1e6, 6) > 0
        assert read_json(workflow, "results/report/stats.json")["accounting"]["totals"] == totals
        page = workflow.path("results/report/summary.html").read_text()
        assert (
            f"prompt tokens from the provider&#x27;s prefix cache (saved)</td><td>{cached:,} "
            f"({totals['saved_by_cache']:,.4f})" in page
        )
        card = workflow.path("results/export/hf/README.md").read_text()
        assert f"at its cached-input price (which saved {totals['saved_by_cache']:.4f})" in card

        # A third question a subject: the plan measures its share on the questions it knows, cached or not.
        workflow.overlay["stages"] = {"questions": {"per_subject": 3}}
        questions = plan(workflow)["totals"]["questions"]
        assert questions["send"] > 0 and questions["cached_share"] > 0
        assert questions["cached_tokens"] == round(questions["prompt_tokens"] * questions["cached_share"])
        saving = questions["cached_tokens"] * (1.0 - 0.25) / 1e6
        assert questions["cost_with_cache"] == pytest.approx(questions["cost"] - saving)


def test_the_plan_prices_the_share_of_prompt_tokens_in_a_prefix_already_sent_at_the_cached_price(workflow):
    document = plan(long_instructions(workflow))

    # Before a build it knows the subjects queries only. Optics's two are one prompt of `length` tokens:
    # the second is in a prefix already sent, to its last 128-token step; the others are under 1,024 tokens.
    totals = document["totals"]
    subjects = totals["subjects"]
    length = document["nodes"][OPTICS_ID]["stages"]["subjects"]["prompt_tokens"] // 2
    assert length >= 1024 and subjects["cached_tokens"] == length // 128 * 128
    assert subjects["cached_share"] == pytest.approx(subjects["cached_tokens"] / subjects["prompt_tokens"])
    saved = subjects["cached_tokens"] * (1.0 - 0.25) / 1e6
    assert subjects["cost_with_cache"] == pytest.approx(subjects["cost"] - saved)
    saved_in_batch = subjects["cached_tokens"] * (0.5 - 0.125) / 1e6
    assert subjects["batch_cost_with_cache"] == pytest.approx(subjects["batch_cost"] - saved_in_batch)
    # The later stages wait on replies: no request of theirs is known to measure, so none is priced as cached.
    for stage in ("syllabus", "questions", "answers"):
        assert totals[stage]["cached_share"] is None and totals[stage]["cached_tokens"] == 0
        assert totals[stage]["cost_with_cache"] == totals[stage]["cost"]
    prompt = sum(t["prompt_tokens"] for t in totals.values())
    assert document["cached_share"] == pytest.approx(subjects["cached_tokens"] / prompt)
    assert document["cost_with_cache"] == pytest.approx(document["cost"] - saved)
    assert document["batch_cost_with_cache"] == pytest.approx(document["batch_cost"] - saved_in_batch)
    table = format_plan(document, all_nodes=False)
    with_cache = f"{document['cost_with_cache']:.4f} online, {document['batch_cost_with_cache']:.4f} in batch."
    assert any(line.startswith("With prefix caching (") and line.endswith(with_cache) for line in table)


def test_a_batch_build_keeps_the_lines_usage_details_and_prices_them_at_the_batch_cached_price(tmp_path):
    with FakeLLM(batch_seconds=0.3) as server:
        workflow = long_instructions(Workflow(tmp_path, server))
        workflow.overlay["llm"] |= {"mode": "batch", "batch": BATCH}
        workflow.run()
        assert server.count == 0, "a request went out online"
        every = [u for found in stored_usage(workflow).values() for _, u in found]
        assert all("prompt_tokens_details" in u and "completion_tokens_details" not in u for u in every)
        prompt = sum(u["prompt_tokens"] for u in every)
        cached = sum(cached_of(u) for u in every)
        completion = sum(u["completion_tokens"] for u in every)
        totals = read_json(workflow, "results/report/accounting.json")["totals"]
        assert totals["requests_batch"] == FIRST_BUILD_TOTAL and totals["cached_tokens"] == cached > 0
        cost = ((prompt - cached) * 0.5 + cached * 0.125 + completion * 1.0) / 1e6
        assert totals["cost"] == round(cost, 6) and totals["saved_by_cache"] == round(cached * (0.5 - 0.125) / 1e6, 6)
        assert totals["saved_by_batch"] == round(cost, 6)  # online, every price is twice the batch one


def test_at_the_paper_scale_no_shared_prefix_reaches_openais_minimum(workflow):
    """config/glan.yaml's subjects prompts are short, and nothing later is known before a build: no cached share."""
    shutil.copy(ROOT / "taxonomy.yaml", workflow.path("taxonomy.yaml"))
    document = build_plan(workflow.dir, ["config/glan.yaml"])
    totals = document["totals"]
    assert totals["subjects"]["cached_share"] == 0.0 and totals["subjects"]["send"] == 1260
    assert all(totals[stage]["cached_share"] is None for stage in ("syllabus", "questions", "answers"))
    assert document["cached_share"] == 0.0 and document["cost_with_cache"] == document["cost"]
    assert document["batch_cost_with_cache"] == document["batch_cost"]
