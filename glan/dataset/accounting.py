"""What the dataset cost: tokens and estimated money per stage, model and node, and how the last run used the cache.

Tokens come from the cached reply behind every provenance key of the dataset's records (each key counted
once, however many records share it: a subjects reply feeds many questions). That is the cost of the
replies the dataset is made of; rejected replies and items that produced no record are not in it (the
stage logs count those). Money is tokens times the config's price table, per million tokens; a model
missing from the table is listed as unpriced rather than guessed.

Each reply is priced by how it was sent (the cache entry's `via`): the Batch API charges its own price
(OpenAI: half), so a batch reply at the online price would overstate the cost. A batch reply of a model
with no batch prices is unpriced (its model listed, the reply counted in `unpriced_requests`), not
priced online. Every bucket counts `requests_online` and `requests_batch`, and `saved_by_batch` is what
the priced batch replies would have cost online minus what they cost: `cost + saved_by_batch` is what
the priced replies would have cost all sent online.

Cached prompt tokens (`prompt_tokens_details.cached_tokens`, which providers with prefix caching report)
are priced at the cached-input price of that way (`cached_input_per_mtok`, `batch_cached_input_per_mtok`),
the rest of the prompt at the input price; a model without a cached price pays its input price for them.
`saved_by_cache` is what the cached tokens would have cost at the input price minus what they cost.
Reasoning tokens are part of the completion tokens (providers bill them as output) and counted apart too.

The cache hit rate comes from the stage jobs' counts files (`logs/<node>/<stage>.counts.json`, the counts
`glan status` shows, written by each job): summed per stage, they describe the latest run of every job,
which after an incremental build mixes old and new jobs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from glan.io import digest, read_json
from glan.llm.cache import ReplyReader
from glan.llm.prices import PRICE_KEYS, cached_tokens, price_of, reasoning_tokens, uncached
from glan.stages import GLAN_STAGES, STAGES

# An optional stage (the judge) has its bucket only where its replies are in the dataset or its jobs ran:
# a build without it reports GLAN's four stages, as before.

COUNTERS = ("requests", "prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens", "total_tokens")
MONEY = ("cost", "saved_by_batch", "saved_by_cache")


def _empty() -> dict:
    return {
        **dict.fromkeys(COUNTERS, 0),
        **{f"requests_{via}": 0 for via in PRICE_KEYS},
        "unpriced_requests": 0,
        **dict.fromkeys(MONEY, 0.0),
    }


def node_usage(records: list[dict], cache: ReplyReader) -> dict:
    """The usage of the replies behind one discipline's records, each key once: tokens summed per stage,
    model and way sent (`groups`), replies the cache lacks per stage (`missing`), and each key's share of
    those under a 16-byte digest of the key (`replies`), so the join can take back what a key an
    earlier discipline counted added here.

    This is the part that reads the cache; it runs in the discipline's facts job (glan.dataset.facts)."""
    replies: dict[str, list] = {}
    groups: dict[tuple[str, str, str], list[int]] = {}
    missing: Counter = Counter()
    for record in records:
        provenance = record["provenance"]
        for stage in STAGES:
            key = provenance["keys"].get(stage)
            if key is None or (fingerprint := digest(key).hex()) in replies:
                continue
            entry = cache.get(key)
            if entry is None:
                replies[fingerprint] = [stage, None, None]
                missing[stage] += 1
                continue
            usage = entry.reply.usage or {}
            tokens = [
                usage.get("prompt_tokens", 0),
                cached_tokens(usage),
                usage.get("completion_tokens", 0),
                reasoning_tokens(usage),
                usage.get("total_tokens", usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)),
            ]
            replies[fingerprint] = [stage, provenance["models"][stage], entry.via, *tokens]
            _add(groups.setdefault((stage, provenance["models"][stage], entry.via), [0] * (1 + len(TOKENS))), tokens)
    return {
        "node": records[0]["provenance"]["node"] if records else None,
        "records": len(records),
        "groups": [[*group, *sums] for group, sums in groups.items()],
        "missing": dict(missing),
        "replies": replies,
    }


TOKENS = COUNTERS[1:]  # what a reply's usage adds to a bucket, in node_usage's order


def _add(sums: list[int], tokens: list[int], sign: int = 1) -> None:
    sums[0] += sign
    for position, value in enumerate(tokens, 1):
        sums[position] += sign * value


def account(usages: Iterable[dict], prices: dict) -> dict:
    """Totals per stage, model and node of the replies behind the records, with estimated cost, joined
    from each discipline's `node_usage` in taxonomy order (a reply two disciplines share is counted
    where it first appears).

    Money is priced per (stage, model, way sent) from summed tokens: every price is per token, so that
    is each reply priced and summed, without walking the replies again."""
    count = 0
    seen: set[str] = set()
    totals = _empty()
    by_stage = {stage: _empty() for stage in GLAN_STAGES}
    by_model: dict[str, dict] = {}
    by_node: dict[str, dict] = {}
    missing: dict[str, int] = dict.fromkeys(GLAN_STAGES, 0)
    unpriced: set[str] = set()
    for usage in usages:
        count += usage["records"]
        groups = {(stage, model, via): sums for stage, model, via, *sums in usage["groups"]}
        absent = Counter(usage["missing"])
        for fingerprint in seen.intersection(usage["replies"]):
            stage, model, via, *tokens = usage["replies"][fingerprint]
            if via is None:
                absent[stage] -= 1
            else:
                _add(groups[(stage, model, via)], tokens, -1)
        seen.update(usage["replies"])
        for stage in [*(group[0] for group in groups), *absent]:
            if stage not in by_stage:
                by_stage[stage] = _empty()
            missing[stage] = missing.get(stage, 0) + absent.pop(stage, 0)
        for (stage, model, via), (requests, *tokens) in groups.items():
            if not requests:
                continue
            summed = dict(zip(TOKENS, tokens, strict=True))
            reply = {
                "prompt_tokens": summed["prompt_tokens"],
                "completion_tokens": summed["completion_tokens"],
                "prompt_tokens_details": {"cached_tokens": summed["cached_tokens"]},
            }
            cost = price_of(model, reply, prices, via)
            saved = by_cache = 0.0
            if cost is None:
                unpriced.add(model)
            else:
                by_cache = (price_of(model, uncached(reply), prices, via) or 0.0) - cost
                if via == "batch" and (online := price_of(model, reply, prices)) is not None:
                    saved = online - cost
            if model not in by_model:
                by_model[model] = _empty()
            if usage["node"] not in by_node:
                by_node[usage["node"]] = _empty()
            for bucket in (totals, by_stage[stage], by_model[model], by_node[usage["node"]]):
                bucket["requests"] += requests
                bucket[f"requests_{via}"] += requests
                bucket["unpriced_requests"] += requests if cost is None else 0
                for name, value in summed.items():
                    bucket[name] += value
                bucket["cost"] += cost or 0.0
                bucket["saved_by_batch"] += saved
                bucket["saved_by_cache"] += by_cache
    for bucket in (totals, *by_stage.values(), *by_model.values(), *by_node.values()):
        for money in MONEY:
            bucket[money] = round(bucket[money], 6)
    return {
        "records": count,
        "totals": totals,
        "by_stage": by_stage,
        "by_model": dict(sorted(by_model.items())),
        "by_node": by_node,
        "prices": {model: prices[model] for model in sorted(by_model) if model in prices},
        "unpriced_models": sorted(unpriced),
        "missing_from_cache": missing,
    }


def run_stats(counts_paths: list[str | Path]) -> dict:
    """The stage jobs' counts (their counts files, glan.llm.meter.Tally) summed per stage over the latest run
    of every job, with the cache hit rate: the share of the planned requests the cache answered."""
    by_stage: dict[str, dict[str, Any]] = {stage: {"jobs": 0} for stage in GLAN_STAGES}
    for path in counts_paths:
        if not Path(path).exists() or not Path(path).stat().st_size:
            continue  # a job that failed before it counted (Snakemake leaves its log files, empty)
        counts = read_json(path)
        bucket = by_stage.setdefault(counts.pop("stage"), {"jobs": 0})
        for key, value in counts.items():
            bucket[key] = bucket.get(key, 0) + value
    totals: dict[str, Any] = {}
    for bucket in by_stage.values():
        for key, value in bucket.items():
            totals[key] = totals.get(key, 0) + value
    for bucket in (*by_stage.values(), totals):
        planned = bucket.get("planned", 0)
        bucket["hit_rate"] = round(bucket.get("cached", 0) / planned, 4) if planned else None
    return {"by_stage": by_stage, "totals": totals}
