"""The train/test split and the exports, loaded back with Hugging Face `datasets`."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local files only: never ask the Hub

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from helpers import DEFAULTS
from records import PATHS, facts_of, make_record

from glan.dataset import export as exporting
from glan.dataset.export import held_out_count, size_category, survey, write_exports
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
        test_ids = survey(facts(records, folder), settings).test_ids
    return {
        "train": [r for r in records if r["id"] not in test_ids],
        "test": [r for r in records if r["id"] in test_ids],
    }


def export(tmp_path, records, settings=SETTINGS):
    out = {
        "train": tmp_path / "train.jsonl",
        "test": tmp_path / "test.jsonl",
        "train_parquet": tmp_path / "train.parquet",
        "test_parquet": tmp_path / "test.parquet",
        "hf_train": tmp_path / "hf" / "data" / "train.parquet",
        "hf_test": tmp_path / "hf" / "data" / "test.parquet",
        "hf_card": tmp_path / "hf" / "README.md",
    }
    source = facts(records, tmp_path / "facts")
    write_exports(source, survey(source, settings), FACTS, settings, out)
    return split(records, settings), out


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
    splits, out = export(tmp_path / "a", records)
    cache = str(tmp_path / "hf-cache")

    loaded = datasets.load_dataset(str(tmp_path / "a" / "hf"), cache_dir=cache)
    assert set(loaded) == {"train", "test"}
    assert (loaded["train"].num_rows, loaded["test"].num_rows) == (len(splits["train"]), len(splits["test"]))
    row = loaded["train"][0]
    assert row["id"] == splits["train"][0]["id"]
    assert row["messages"] == splits["train"][0]["messages"]
    assert row["provenance"]["path"] == ["Natural Sciences", "Physics", "Optics"]
    assert row["provenance"]["keys"]["answers"] == splits["train"][0]["provenance"]["keys"]["answers"]

    parquet = datasets.load_dataset(
        "parquet", data_files={k: str(tmp_path / "a" / f"{k}.parquet") for k in ("train", "test")}, cache_dir=cache
    )
    assert parquet["test"]["id"] == [r["id"] for r in splits["test"]]

    export(tmp_path / "b", records)
    for path in out.values():
        twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
        assert twin.read_bytes() == path.read_bytes(), f"{path.name} differs between two exports"


def test_without_test_questions_the_folder_loads_train_alone(tmp_path):
    export(tmp_path, dataset(), {**SETTINGS, "test_per_discipline": 0})
    loaded = datasets.load_dataset(str(tmp_path / "hf"), cache_dir=str(tmp_path / "hf-cache"))
    assert set(loaded) == {"train"} and loaded["train"].num_rows == 15
    # the empty Parquet file keeps the schema, for tools that read it directly
    assert pq.read_table(tmp_path / "test.parquet").schema == pq.read_table(tmp_path / "train.parquet").schema


def test_each_split_is_written_in_dataset_order_a_row_group_per_batch(tmp_path, monkeypatch):
    records = dataset()
    records[-1]["provenance"]["subject"] = None  # a null in the first batch, strings after it
    records.insert(0, records.pop())
    splits, out = export(tmp_path / "whole", records)
    monkeypatch.setattr(exporting, "BATCH_ROWS", 4)
    export(tmp_path / "batched", records)
    for name in ("train", "test"):
        assert out[name].read_bytes() == dump_jsonl(splits[name])
        whole = pq.ParquetFile(out[f"{name}_parquet"])
        batched = pq.ParquetFile(tmp_path / "batched" / f"{name}.parquet")
        assert batched.metadata.num_row_groups == -(-len(splits[name]) // 4) > whole.metadata.num_row_groups == 1
        assert batched.schema_arrow == whole.schema_arrow == pa.Table.from_pylist(records).schema
        assert batched.read().to_pylist() == whole.read().to_pylist() == splits[name]


def test_the_card_tells_counts_fields_models_taxonomy_cleaning_cost_and_licence(tmp_path):
    _, out = export(tmp_path, dataset())
    text = out["hf_card"].read_text()
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["license"] == "other" and front["size_categories"] == ["n<1K"]
    assert front["configs"][0]["data_files"] == [
        {"split": "train", "path": "data/train.parquet"},
        {"split": "test", "path": "data/test.parquet"},
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
