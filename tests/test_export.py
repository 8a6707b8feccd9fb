"""The train/test split and the exports, loaded back with Hugging Face `datasets`."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local files only: never ask the Hub

import datasets
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from helpers import DEFAULTS
from records import PATHS, facts_of, make_record

from glan.dataset import export as exporting
from glan.dataset.export import held_out, held_out_count, size_category, write_exports
from glan.io import dump_jsonl

SETTINGS = {**DEFAULTS["export"], "test_per_discipline": 3}
FACTS = {
    "taxonomy": {"path": "taxonomy.yaml", "sha256": "ab" * 32},
    "duplicates": {"exact-duplicate": 2, "near-duplicate": 1},
    "contamination": {
        "ngram": 13,
        "threshold": 0.5,
        "fields": ["question"],
        "benchmarks": [{"name": "gsm8k", "texts": 1319, "removed": 4}],
    },
    "accounting": {
        "by_stage": {
            s: {"requests": 2, "prompt_tokens": 10, "completion_tokens": 20, "cost": 0.5}
            for s in ("subjects", "syllabus", "questions", "answers")
        },
        "unpriced_models": [],
    },
}


def dataset(per_node=(10, 4, 1)) -> list[dict]:
    records = []
    for node, count in zip(PATHS, per_node, strict=True):
        for i in range(count):
            records.append(make_record(f"Question {i} about {node}?", node=node, difficulty=["easy", "hard"][i % 2]))
    return records


def facts(records, folder):
    return facts_of(records, folder, DEFAULTS["clean"]["dedup"], DEFAULTS["clean"]["decontaminate"])


def split(records, settings=SETTINGS) -> dict[str, list[dict]]:
    with tempfile.TemporaryDirectory() as folder:
        parts = facts(records, folder).parts()
        test_ids = {part.record(int(i))["id"] for part in parts for i in np.flatnonzero(held_out(part, settings))}
    return {
        "train": [r for r in records if r["id"] not in test_ids],
        "test": [r for r in records if r["id"] in test_ids],
    }


def export(folder, records, settings=SETTINGS) -> dict:
    """Export `records` (their facts and records files in folder/facts) to `folder`; the manifest."""
    return write_exports(facts(records, folder / "facts"), FACTS, settings, folder, folder / "hf" / "README.md")


def shard_files(folder) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for kind in ("hf/data", "jsonl")
        for path in sorted((folder / kind).iterdir())
    }


def read_split(folder, name, kind="jsonl") -> list[dict]:
    paths = sorted((folder / ("jsonl" if kind == "jsonl" else "hf/data")).glob(f"{name}-*.{kind}"))
    if kind == "jsonl":
        return [orjson.loads(line) for path in paths for line in path.read_bytes().splitlines()]
    return [row for path in paths for row in pq.read_table(path).to_pylist()]


def test_the_test_split_holds_a_fixed_number_per_discipline_never_more_than_the_share():
    records = dataset()
    splits = split(records, SETTINGS)
    held = {node: sum(r["provenance"]["node"] == node for r in splits["test"]) for node in PATHS}
    assert list(held.values()) == [3, 2, 0]  # 10 records: 3; 4 records: half is 2; 1 record: none
    assert held_out_count(1000, {**SETTINGS, "test_per_discipline": 50}) == 50
    assert len(splits["train"]) + len(splits["test"]) == len(records)
    assert not {r["id"] for r in splits["train"]} & {r["id"] for r in splits["test"]}
    # dataset order within each split
    assert splits["test"] == [r for r in records if r in splits["test"]]


def test_the_split_depends_on_record_ids_only():
    records = dataset()
    splits = split(records, SETTINGS)
    shuffled = split(list(reversed(records)), SETTINGS)
    assert {r["id"] for r in shuffled["test"]} == {r["id"] for r in splits["test"]}
    # growing a discipline keeps most earlier test picks (a new record can only displace one by hash rank)
    grown = split(dataset((12, 4, 1)), SETTINGS)
    assert len({r["id"] for r in grown["test"]} & {r["id"] for r in splits["test"]}) >= 3 + 2 - 2
    salted = split(records, {**SETTINGS, "seed": 1})
    assert {r["id"] for r in salted["test"]} != {r["id"] for r in splits["test"]}


def test_exports_load_with_datasets_and_rebuild_byte_identical(tmp_path):
    records = dataset()
    splits = split(records)
    manifest = export(tmp_path / "a", records)
    cache = str(tmp_path / "hf-cache")

    loaded = datasets.load_dataset(str(tmp_path / "a" / "hf"), cache_dir=cache)
    assert set(loaded) == {"train", "test"}
    assert (loaded["train"].num_rows, loaded["test"].num_rows) == (len(splits["train"]), len(splits["test"]))
    row = loaded["train"][0]
    assert row["id"] == splits["train"][0]["id"]
    assert row["messages"] == splits["train"][0]["messages"]
    assert row["provenance"]["path"] == ["Natural Sciences", "Physics", "Optics"]
    assert row["provenance"]["keys"]["answers"] == splits["train"][0]["provenance"]["keys"]["answers"]
    assert [shard["parquet"] for shard in manifest["shards"]] == [
        "hf/data/train-00000-of-00001.parquet",
        "hf/data/test-00000-of-00001.parquet",
    ]

    export(tmp_path / "b", records)
    assert shard_files(tmp_path / "b") == shard_files(tmp_path / "a")
    assert (tmp_path / "b/hf/README.md").read_bytes() == (tmp_path / "a/hf/README.md").read_bytes()


def test_without_test_questions_the_folder_loads_train_alone(tmp_path):
    export(tmp_path, dataset(), {**SETTINGS, "test_per_discipline": 0})
    loaded = datasets.load_dataset(str(tmp_path / "hf"), cache_dir=str(tmp_path / "hf-cache"))
    assert set(loaded) == {"train"} and loaded["train"].num_rows == 15
    assert sorted(shard_files(tmp_path)) == ["hf/data/train-00000-of-00001.parquet", "jsonl/train-00000-of-00001.jsonl"]


def test_each_split_is_written_in_dataset_order_a_row_group_per_batch(tmp_path, monkeypatch):
    records = dataset()
    records[-1]["provenance"]["subject"] = None  # a null in the first batch, strings after it
    records.insert(0, records.pop())
    splits = split(records)
    export(tmp_path / "whole", records)
    monkeypatch.setattr(exporting, "BATCH_ROWS", 4)
    export(tmp_path / "batched", records)
    for name in ("train", "test"):
        assert read_split(tmp_path / "whole", name) == splits[name]
        whole = pq.ParquetFile(tmp_path / f"whole/hf/data/{name}-00000-of-00001.parquet")
        batched = pq.ParquetFile(tmp_path / f"batched/hf/data/{name}-00000-of-00001.parquet")
        assert batched.metadata.num_row_groups == -(-len(splits[name]) // 4) > whole.metadata.num_row_groups == 1
        assert batched.schema_arrow == whole.schema_arrow == pa.Table.from_pylist(records).schema
        assert batched.read().to_pylist() == whole.read().to_pylist() == splits[name]


def many_disciplines(count: int, per_node: int, answer: str = "An answer.") -> list[dict]:
    records = []
    for number in range(count):
        for i in range(per_node):
            record = make_record(f"Question {i} of discipline {number}?", answer=answer)
            record["provenance"].update(node=f"field/discipline-{number:03d}", path=["Field", f"D{number}"])
            records.append(record)
    return records


def test_shards_are_bounded_in_bytes_and_whole_disciplines_in_taxonomy_order(tmp_path):
    records = many_disciplines(40, 5)
    line = len(dump_jsonl(records[:1]))
    settings = {**SETTINGS, "max_shard_bytes": 12 * line}
    manifest = export(tmp_path, records, settings)
    train = [shard for shard in manifest["shards"] if shard["split"] == "train"]
    assert len(train) > 4
    assert all(0 < shard["jsonl_bytes"] <= 12 * line for shard in train)
    assert [d for shard in train for d in shard["disciplines"]] == [f"field/discipline-{n:03d}" for n in range(40)]
    assert read_split(tmp_path, "train") == read_split(tmp_path, "train", "parquet") == split(records)["train"]
    # a discipline larger than a shard is cut into runs of its records
    big = export(tmp_path / "big", many_disciplines(2, 30), {**SETTINGS, "max_shard_bytes": 7 * line})
    assert {shard["records"] for shard in big["shards"] if shard["split"] == "train"} <= set(range(1, 8))


def test_an_edit_of_one_discipline_rewrites_only_the_shards_that_hold_it(tmp_path):
    records = many_disciplines(40, 5)
    settings = {**SETTINGS, "max_shard_bytes": 12 * len(dump_jsonl(records[:1]))}
    before = export(tmp_path, records, settings)
    files = {path: (tmp_path / path).stat() for path in shard_files(tmp_path)}
    edited = "field/discipline-017"
    for record in records:
        if record["provenance"]["node"] == edited:
            record["messages"][1]["content"] = "A better answer."
    after = export(tmp_path, records, settings)
    holding = {
        path
        for shard in after["shards"]
        if edited in shard["disciplines"]
        for path in (shard["parquet"], shard["jsonl"])
    }
    assert set(after["written"]) == {shard["parquet"] for shard in after["shards"] if edited in shard["disciplines"]}
    assert [s["parquet"] for s in before["shards"]] == [s["parquet"] for s in after["shards"]]
    for path, stat in files.items():
        now = (tmp_path / path).stat()
        assert (now.st_ino == stat.st_ino and now.st_mtime_ns == stat.st_mtime_ns) == (path not in holding), path
    assert read_split(tmp_path, "train", "parquet") == split(records)["train"]

    # a shard changed by hand is written again; a file that no shard names goes
    (tmp_path / "jsonl/train-00000-of-00001.jsonl").write_text("stray\n")
    victim = after["shards"][0]["jsonl"]
    (tmp_path / victim).write_bytes(b"edited by hand\n")
    again = export(tmp_path, records, settings)
    assert again["written"] == [after["shards"][0]["parquet"]]
    assert not (tmp_path / "jsonl/train-00000-of-00001.jsonl").exists()
    assert read_split(tmp_path, "train") == split(records)["train"]


def test_shards_renamed_when_their_count_moves_are_not_written_again(tmp_path):
    records = many_disciplines(40, 5)
    settings = {**SETTINGS, "max_shard_bytes": 12 * len(dump_jsonl(records[:1]))}
    before = export(tmp_path, records, settings)
    grown = records + many_disciplines(41, 5)[-5:]  # one more discipline at the end: one more shard at least
    after = export(tmp_path, grown, settings)
    count = sum(shard["split"] == "train" for shard in after["shards"])
    assert count > sum(shard["split"] == "train" for shard in before["shards"])
    new = {shard["parquet"] for shard in after["shards"] if "field/discipline-040" in shard["disciplines"]}
    assert set(after["written"]) <= new
    assert all(f"-of-{count:05d}." in name for name in shard_files(tmp_path) if "train-" in name)
    assert read_split(tmp_path, "train", "parquet") == split(grown)["train"]


def test_the_card_tells_counts_fields_models_taxonomy_cleaning_cost_and_licence(tmp_path):
    export(tmp_path, dataset())
    text = (tmp_path / "hf/README.md").read_text()
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["license"] == "other" and front["size_categories"] == ["n<1K"]
    assert front["configs"][0]["data_files"] == [
        {"split": "train", "path": "data/train-*.parquet"},
        {"split": "test", "path": "data/test-*.parquet"},
    ]
    for expected in (
        "| train | 10 |",
        "| test | 5 |",
        "| Natural Sciences | 14 |",
        "| Mathematics | Number Theory | 1 | 0 |",
        "`provenance.strategy`",
        "| answers | test-model |",
        f"sha256 `{'ab' * 32}`",
        "| exact duplicate questions | 2 |",
        "| contaminated: gsm8k (1319 texts) | 4 |",
        "| answers | 2 | 10 | 0 | 20 | 0.5000 |",
        "## Licence",
    ):
        assert expected in text, expected


@pytest.mark.parametrize(("count", "label"), [(0, "n<1K"), (5_000, "1K<n<10K"), (2_000_000, "1M<n<10M")])
def test_the_card_labels_the_size_as_the_hub_does(count, label):
    assert size_category(count) == label
