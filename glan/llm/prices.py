"""What a reply costs: its usage times the config's `prices` (per million tokens, per model), by how it was sent.

One place for the price table's meaning, below both its users: the live meter and budget (glan.llm.meter),
the plan (glan.cli.plan) and the dataset's accounting (glan.dataset.accounting).
"""

from __future__ import annotations

# How a reply was sent (`Entry.via`) -> the price table's input, output and cached-input price of that way.
PRICE_KEYS = {
    "online": ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok"),
    "batch": ("batch_input_per_mtok", "batch_output_per_mtok", "batch_cached_input_per_mtok"),
}


def cached_tokens(usage: dict) -> int:
    return (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)


def uncached(usage: dict) -> dict:
    """The usage as it would be had no prompt token been cached."""
    return {k: v for k, v in usage.items() if k != "prompt_tokens_details"}


def reasoning_tokens(usage: dict) -> int:
    return (usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0)


def price_of(model: str, usage: dict, prices: dict, via: str = "online") -> float | None:
    """The cost of one reply of `model` sent `via` online or batch; None if the table has no such price.

    Both prices of that way are needed: a model with online prices only has no batch price. Its cached
    prompt tokens are at that way's cached price, or at its input price where the model has none."""
    if via not in PRICE_KEYS:
        raise ValueError(f"a reply sent via {via!r}: accounting knows {list(PRICE_KEYS)}")
    input_key, output_key, cached_key = PRICE_KEYS[via]
    price = prices.get(model) or {}
    if input_key not in price or output_key not in price:
        return None
    cached = cached_tokens(usage)
    return (
        (usage.get("prompt_tokens", 0) - cached) * price[input_key]
        + cached * price.get(cached_key, price[input_key])
        + usage.get("completion_tokens", 0) * price[output_key]
    ) / 1e6
