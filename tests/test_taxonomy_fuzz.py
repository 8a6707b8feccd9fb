"""Any document at all gives either a taxonomy or a TaxonomyError that names the file: never a traceback."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from glan.taxonomy import TaxonomyError, leaves, parse_taxonomy

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12))
names = st.one_of(
    st.sampled_from(["Physics", "physics", "Art & Design", "!!", ""]), st.text(max_size=10), st.integers()
)


def nodes(children):
    keys = st.sampled_from(["name", "description", "children", "colour"])
    return st.one_of(
        st.fixed_dictionaries({"name": names}, optional={"description": scalars, "children": children}),
        st.dictionaries(keys, st.one_of(scalars, children), max_size=3),
        scalars,
    )


trees = st.recursive(
    st.lists(nodes(st.nothing()), max_size=3), lambda inner: st.lists(nodes(inner), max_size=3), max_leaves=12
)
documents = st.one_of(
    st.fixed_dictionaries({"taxonomy": trees}), st.dictionaries(st.text(max_size=8), trees, max_size=2), scalars
)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_every_document_gives_a_taxonomy_or_a_clear_error(document):
    text = yaml.safe_dump(document)
    try:
        roots = parse_taxonomy(text, "fuzz.yaml")
    except TaxonomyError as error:
        assert str(error).startswith("fuzz.yaml")
        return
    ids = [leaf.id for leaf in leaves(roots)]
    assert roots and ids and len(set(ids)) == len(ids)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_gives_a_taxonomy_or_a_clear_error(text):
    try:
        parse_taxonomy(text, "fuzz.yaml")
    except TaxonomyError as error:
        assert str(error).startswith("fuzz.yaml")
