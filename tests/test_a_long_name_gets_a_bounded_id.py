"""A long name is cut to a bounded id made unique by a hash; an id too long as a whole is refused, naming
its line. A path component holds 255 bytes: before, a 266-character name stopped the run with a raw
`OSError: [Errno 36] File name too long` that named no taxonomy line."""

from __future__ import annotations

import pytest

from glan.taxonomy import ID_BYTES, ID_TOTAL, TaxonomyError, iter_nodes, parse_taxonomy, slugify, write_node_files


def taxonomy(*names: str) -> str:
    """One field holding a discipline of each name."""
    children = "".join(f"      - name: {name}\n" for name in names)
    return f"taxonomy:\n  - name: Field\n    children:\n{children}"


@pytest.mark.parametrize("letter", ["x", "ж", "字", "ع"])
def test_a_long_name_is_cut_to_a_bounded_id_that_writes_its_files(tmp_path, letter):
    name = letter * 266
    roots = parse_taxonomy(taxonomy(name))
    part = slugify(name)
    assert len(part.encode()) <= ID_BYTES
    assert part.startswith(letter * 8) and len(part.rsplit("-", 1)[1]) == 8  # readable, then the hash
    assert write_node_files(roots, tmp_path) == [f"field/{part}"]
    assert (tmp_path / "field" / part / "node.json").is_file()


def test_two_long_names_alike_in_their_first_bytes_get_two_ids():
    common = "Theory of " * 20
    roots = parse_taxonomy(taxonomy(common + "Groups", common + "Rings"))
    first, second = (node.id for node in iter_nodes(roots) if node.children == [] and node.name != "Field")
    assert first != second and len(first.encode()) <= len("field/") + ID_BYTES


def test_a_cut_id_is_the_same_on_every_run():
    assert slugify("Химия " * 40) == slugify("Химия " * 40)


def test_a_name_within_the_bound_is_not_cut():
    name = "a" * ID_BYTES
    assert slugify(name) == name


def test_an_id_too_long_as_a_whole_is_refused_naming_the_line_and_the_limit():
    four_levels = [f"{'    ' * level}  - name: {'Ж' * 60} {level}" for level in range(4)]
    text = "taxonomy:\n" + "".join(f"{line}\n{' ' * (line.index('-') + 2)}children:\n" for line in four_levels[:3])
    text += four_levels[3] + "\n"
    with pytest.raises(TaxonomyError) as error:
        parse_taxonomy(text)
    message = str(error.value)
    assert message.startswith("taxonomy.yaml:8: node ")
    assert f"bytes of UTF-8, and an id may have {ID_TOTAL} (a folder is named after it); shorten its name" in message
