"""Exports of the clean dataset: a held-out test split, JSONL and Parquet files, and a folder with a
dataset card that `datasets.load_dataset(folder)` reads as it is.

The test split follows GLAN-Test: a fixed number of questions per discipline, chosen by the sha256 of the
record id (and a salt), so the choice needs no random state, survives a rebuild byte for byte, and a
record keeps its split when others are added. Records keep dataset order within each split.
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter

import yaml

from glan.config import STAGES
from glan.io import write_bytes_atomic

SPLITS = ("train", "test")


def _rank(record: dict, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{record['id']}".encode()).hexdigest()


def held_out_count(count: int, settings: dict) -> int:
    """Questions of one discipline held out: `test_per_discipline`, never more than `max_test_share` of them."""
    return min(settings["test_per_discipline"], int(count * settings.get("max_test_share", 0.5)))


def split(records: list[dict], settings: dict) -> dict[str, list[dict]]:
    by_node: dict[str, list[dict]] = {}
    for record in records:
        by_node.setdefault(record["provenance"]["node"], []).append(record)
    held_out = set()
    for group in by_node.values():
        ranked = sorted(group, key=lambda r: _rank(r, settings.get("seed", 0)))
        held_out.update(r["id"] for r in ranked[: held_out_count(len(group), settings)])
    return {
        "train": [r for r in records if r["id"] not in held_out],
        "test": [r for r in records if r["id"] in held_out],
    }


def parquet_bytes(splits: dict[str, list[dict]]) -> dict[str, bytes]:
    """One Parquet file per split, all with the schema inferred from every record (so an empty split loads too)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    everything = [r for name in SPLITS for r in splits[name]]
    schema = pa.Table.from_pylist(everything).schema if everything else pa.schema([("id", pa.string())])
    files = {}
    for name in SPLITS:
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(splits[name], schema=schema), buffer, compression="zstd")
        files[name] = buffer.getvalue()
    return files


def size_category(count: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if count < limit:
            return label
    return "1M<n<10M" if count < 10_000_000 else "10M<n<100M"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def card(splits: dict[str, list[dict]], facts: dict, settings: dict) -> str:
    """The dataset card (README.md): counts, fields, models, taxonomy version, cleaning, cost, licence note.

    `facts` holds what the card reports from other steps: taxonomy sha256, duplicate counts by reason,
    the decontamination report, and the accounting.
    """
    total = sum(len(s) for s in splits.values())
    front = {
        "license": settings.get("license", "other"),
        "language": ["en"],
        "task_categories": ["text-generation", "question-answering"],
        "tags": ["synthetic", "instruction-tuning", "glan"],
        "size_categories": [size_category(total)],
        "pretty_name": settings.get("name", "GLAN synthetic instructions"),
        "configs": [
            {
                "config_name": "default",
                # `datasets` cannot load an empty split: a build without test questions lists train alone
                "data_files": [
                    {"split": name, "path": f"data/{name}.parquet"}
                    for name in SPLITS
                    if splits[name] or name == "train"
                ],
            }
        ],
    }
    records = [r for name in SPLITS for r in splits[name]]
    fields = Counter(r["provenance"]["path"][0] for r in records)
    disciplines: dict[tuple, Counter] = {}
    for name in SPLITS:
        for r in splits[name]:
            disciplines.setdefault(tuple(r["provenance"]["path"]), Counter())[name] += 1
    models = {stage: sorted({r["provenance"]["models"][stage] for r in records}) for stage in STAGES}
    duplicates, contamination, accounting = facts["duplicates"], facts["contamination"], facts["accounting"]
    per_discipline = settings["test_per_discipline"]

    parts = [
        "---\n" + yaml.safe_dump(front, sort_keys=False) + "---",
        f"# {front['pretty_name']}",
        "Instruction–response pairs written from scratch by language models, following GLAN "
        "(Generalized Instruction Tuning, arXiv:2402.13064): a taxonomy of human knowledge → subjects per "
        "discipline → a syllabus per subject → homework questions that combine key concepts of one or two "
        "class sessions → an answer to each question. Built with the `glan` Snakemake workflow; every record "
        "carries its provenance (taxonomy path, subject, sessions, concepts, models and request hashes).",
        "## Splits\n\n"
        + _table(["split", "records"], [[name, len(splits[name])] for name in SPLITS] + [["total", total]])
        + f"\n\nThe test split holds out up to {per_discipline} questions per discipline (as GLAN-Test did), "
        f"never more than {settings.get('max_test_share', 0.5):.0%} of a discipline, chosen by a hash of the "
        "record id: stable across rebuilds.",
        "## Records per field\n\n" + _table(["field", "records"], [[f, c] for f, c in fields.items()]),
        "## Records per discipline\n\n"
        + _table(
            ["field", "sub-field / discipline", "train", "test"],
            [[path[0], " / ".join(path[1:]), c["train"], c["test"]] for path, c in disciplines.items()],
        ),
        "## Fields\n\n"
        + _table(
            ["column", "content"],
            [
                ["`id`", "the question's request hash: unique and stable"],
                ["`messages`", "chat format: a `user` question and the `assistant` answer"],
                ["`provenance.node`, `.path`", "taxonomy node id and its path (field, sub-field, discipline)"],
                ["`provenance.subject`, `.level`", "the subject the question comes from and its level"],
                ["`provenance.sessions`, `.concepts`", "the class sessions and key concepts the question combines"],
                ["`provenance.strategy`, `.difficulty`", "single-session (easy/medium) or two-sessions (hard)"],
                ["`provenance.models`, `.keys`", "model and request hash per stage (look-ups in the reply cache)"],
            ],
        ),
        "## Models\n\n" + _table(["stage", "model"], [[s, ", ".join(m)] for s, m in models.items()]),
        "## Taxonomy\n\n"
        f"`{facts['taxonomy']['path']}` sha256 `{facts['taxonomy']['sha256']}`; "
        f"{len(disciplines)} disciplines in {len(fields)} fields are in this build.",
        "## Cleaning\n\n"
        + _table(
            ["step", "removed"],
            [
                ["exact duplicate questions", duplicates.get("exact-duplicate", 0)],
                ["near-duplicate questions (MinHash)", duplicates.get("near-duplicate", 0)],
            ]
            + [[f"contaminated: {b['name']} ({b['texts']} texts)", b["removed"]] for b in contamination["benchmarks"]],
        )
        + f"\n\nDecontamination: a record is removed when a benchmark text has at least "
        f"{contamination['threshold']:.0%} of its {contamination['ngram']}-word n-grams in the record's "
        f"{' or '.join(contamination['fields'])}."
        + ("" if contamination["benchmarks"] else " No benchmark files were configured for this build."),
        "## Generation cost\n\n"
        + _table(
            ["stage", "requests", "prompt tokens", "completion tokens", "estimated cost"],
            [
                [s, b["requests"], b["prompt_tokens"], b["completion_tokens"], f"{b['cost']:.4f}"]
                for s, b in accounting["by_stage"].items()
            ],
        )
        + "\n\nEstimated from each reply's token usage and the workflow's price table"
        + (f"; unpriced models: {', '.join(accounting['unpriced_models'])}." if accounting["unpriced_models"] else "."),
        "## Use\n\n```python\nfrom datasets import load_dataset\n\n"
        'dataset = load_dataset("path/to/this/folder")  # splits: train, test\n```\n\n'
        "The `messages` column is in the chat format that fine-tuning libraries (e.g. TRL's SFTTrainer) take as is.",
        "## Licence\n\n"
        + settings.get(
            "license_note",
            "The texts were generated by the models listed above; their use is subject to those models' terms "
            "of use. The workflow's own code is MIT-licensed. Check both before redistributing or training.",
        ),
    ]
    return "\n\n".join(parts) + "\n"


def write_exports(splits: dict[str, list[dict]], facts: dict, settings: dict, out: dict[str, str]) -> None:
    """Write the Parquet files, and the same files with a card into the folder `datasets` loads.

    `out` maps train_parquet, test_parquet, hf_train, hf_test, hf_card to paths; the card's `configs`
    name the data files as data/train.parquet and data/test.parquet beside it.
    """
    files = parquet_bytes(splits)
    for name in SPLITS:
        write_bytes_atomic(out[f"{name}_parquet"], files[name])
        write_bytes_atomic(out[f"hf_{name}"], files[name])
    write_bytes_atomic(out["hf_card"], card(splits, facts, settings).encode())
