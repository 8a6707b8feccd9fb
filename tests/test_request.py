"""A request's cache key and seed: every part of the request counts, spelling does not, and both stay put."""

from dataclasses import fields, replace

from glan.llm.request import Request

BASE = Request(
    model="m",
    messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
    params={"temperature": 1.0, "top_p": 0.95, "max_tokens": 10, "seed": 0},
    schema={"type": "object", "properties": {"a": {"type": "string"}}},
    schema_name="x",
)

# Computed once, from the code as it was when they were pinned. The key names a reply in every user's
# cache: a change to it invalidates every cache there is, and every build would pay for all its requests
# again. The seed is what a backend is sent: a change to it makes the same request ask for another reply
# than the one its cache holds, so a build no longer reproduces one made before.
BASE_KEY = "cf805c2ae8c559173e2d493ed52681ea366a124bceeb15ddbd4bf3fc5d139749"
BASE_SEED = 705206174
SEED_OF_SAMPLE_1_ATTEMPT_2 = 1128277693


def test_the_key_covers_every_field_of_the_request_and_the_endpoint():
    variants = {
        "model": replace(BASE, model="n"),
        "messages": replace(BASE, messages=[{"role": "system", "content": "S"}, {"role": "user", "content": "u"}]),
        "params": replace(BASE, params={**BASE.params, "top_p": 0.9}),
        "schema": replace(BASE, schema={"type": "object"}),
        "schema_name": replace(BASE, schema_name="y"),
        "sample": replace(BASE, sample=1),
        "attempt": replace(BASE, attempt=1),
        "structured_output": replace(BASE, structured_output="json_object"),
    }
    assert variants.keys() == {f.name for f in fields(Request)}, "a field of Request has no variant here"
    others = [
        replace(BASE, params={**BASE.params, "seed": 1}),
        replace(BASE, schema=None),
    ]
    keys = {BASE.key("e")} | {v.key("e") for v in [*variants.values(), *others]}
    assert len(keys) == 1 + len(variants) + len(others)
    assert BASE.key("e") != BASE.key("f")


def test_the_key_is_canonical():
    reordered = replace(
        BASE,
        params={"seed": 0, "max_tokens": 10, "top_p": 0.95, "temperature": 1},
        schema={"properties": {"a": {"type": "string"}}, "type": "object"},
    )
    assert reordered.key("e") == BASE.key("e")


def test_the_key_is_the_one_every_existing_cache_holds():
    assert BASE.key("e") == BASE_KEY


def test_structured_output_keys_only_where_it_changes_what_is_sent():
    assert replace(BASE, structured_output="json_schema").key("e") == BASE_KEY  # the default, as before it existed
    free_text = replace(BASE, schema=None)
    assert replace(free_text, structured_output="prompt").key("e") == free_text.key("e")  # no schema: nothing differs
    modes = ("json_schema", "json_object", "prompt")
    assert len({replace(BASE, structured_output=mode).key("e") for mode in modes}) == 3


def test_seeds_differ_per_run_seed_sample_and_attempt_and_never_change():
    seeds = {replace(BASE, sample=s, attempt=a).seed for s in range(5) for a in range(3)}
    assert len(seeds) == 5 * 3
    assert replace(BASE, params={**BASE.params, "seed": 1}).seed not in seeds
    assert BASE.seed == BASE_SEED
    assert replace(BASE, sample=1, attempt=2).seed == SEED_OF_SAMPLE_1_ATTEMPT_2
