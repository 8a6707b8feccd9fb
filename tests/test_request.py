from dataclasses import replace

from glan.llm.request import Request

BASE = Request(
    model="m",
    messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
    params={"temperature": 1.0, "top_p": 0.95, "max_tokens": 10, "seed": 0},
    schema={"type": "object", "properties": {"a": {"type": "string"}}},
    schema_name="x",
)


def test_the_key_covers_every_part_of_the_request_and_the_endpoint():
    variants = [
        replace(BASE, model="n"),
        replace(BASE, messages=[{"role": "system", "content": "S"}, {"role": "user", "content": "u"}]),
        replace(BASE, params={**BASE.params, "top_p": 0.9}),
        replace(BASE, params={**BASE.params, "seed": 1}),
        replace(BASE, schema={"type": "object"}),
        replace(BASE, schema=None),
        replace(BASE, sample=1),
        replace(BASE, attempt=1),
    ]
    keys = {BASE.key("e")} | {v.key("e") for v in variants}
    assert len(keys) == len(variants) + 1
    assert BASE.key("e") != BASE.key("f")


def test_the_key_is_canonical():
    reordered = replace(
        BASE,
        params={"seed": 0, "max_tokens": 10, "top_p": 0.95, "temperature": 1},
        schema={"properties": {"a": {"type": "string"}}, "type": "object"},
    )
    assert reordered.key("e") == BASE.key("e")


def test_seeds_differ_per_sample_and_attempt_and_are_stable():
    seeds = {replace(BASE, sample=s, attempt=a).seed for s in range(5) for a in range(3)}
    assert len(seeds) == 15
    assert BASE.seed == replace(BASE).seed
