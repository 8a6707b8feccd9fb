"""Exports of the clean dataset: a held-out test split, JSONL and Parquet files, and a folder with a
dataset card that `datasets.load_dataset(folder)` reads as it is.

The test split follows GLAN-Test: a fixed number of questions per discipline, chosen by the sha256 of the
record id (and a salt), so the choice needs no random state, survives a rebuild byte for byte, and a
record keeps its split when others are added. Records keep dataset order within each split.

Each record's line is copied as it is in the clean dataset and its Parquet row comes from its
discipline's facts (glan.dataset.facts), so the export parses no JSON and infers no schema record by
record.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from glan.dataset.composition import Composition, NodeFacts, Part, copy_lines, record_table
from glan.dataset.shards import Piece, Shard, ShardFiles, manifest, plan
from glan.io import open_atomic, write_bytes_atomic
from glan.stages import GLAN_STAGES

SPLITS = ("train", "test")
BATCH_ROWS = 10_000  # records per Parquet row group


def _rank(record_id: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{record_id}".encode()).digest(), "big")


def held_out_count(count: int, settings: dict) -> int:
    """Questions of one discipline held out: `test_per_discipline`, never more than `max_test_share` of them."""
    return min(settings["test_per_discipline"], int(count * settings["max_test_share"]))


def held_out(part: Part, settings: dict) -> np.ndarray:
    """Which records of a discipline's part go to the test split: the best-ranked ids, a mask over the part."""
    ids = part.node.column("id").take(pa.array(part.rows, pa.int64())).to_pylist()
    seed = settings["seed"]
    chosen = heapq.nsmallest(held_out_count(len(ids), settings), range(len(ids)), key=lambda i: _rank(ids[i], seed))
    test = np.zeros(len(ids), dtype=bool)
    test[chosen] = True
    return test


def record_schema(schemas: list[pa.Schema]) -> pa.Schema:
    """The disciplines' record schemas unified, as if inferred from every record at once."""
    return pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([("id", pa.string())])


class CardCounts:
    """What the card says about the records: taxonomy paths per split (in dataset order) and models per stage."""

    def __init__(self):
        self.paths: dict[str, Counter] = {name: Counter() for name in SPLITS}
        self.models: dict[str, set[str]] = {stage: set() for stage in GLAN_STAGES}

    def add(self, name: str, node: NodeFacts, rows: np.ndarray) -> None:
        """Count a discipline's records of a split (all of a discipline's records have its path)."""
        if not len(rows):
            return
        self.paths[name][tuple(node.value("path", int(rows[0])))] += len(rows)
        models = node.column("models").take(pa.array(rows, pa.int64())).combine_chunks()
        for stage in GLAN_STAGES:
            self.models[stage].update(pc.unique(models.field(stage)).to_pylist())

    def count(self, name: str) -> int:
        return self.paths[name].total()


def size_category(count: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if count < limit:
            return label
    return "1M<n<10M" if count < 10_000_000 else "10M<n<100M"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def card(tally: CardCounts, facts: dict, settings: dict) -> str:
    """The dataset card (README.md): counts, fields, models, taxonomy version, cleaning, cost, licence note.

    `facts` holds what the card reports from other steps: taxonomy sha256, duplicate counts by reason,
    the decontamination report, and the accounting.
    """
    total = sum(tally.count(name) for name in SPLITS)
    front = {
        "license": settings["license"],
        "language": ["en"],
        "task_categories": ["text-generation", "question-answering"],
        "tags": ["synthetic", "instruction-tuning", "glan"],
        "size_categories": [size_category(total)],
        "pretty_name": settings["name"],
        "configs": [
            {
                "config_name": "default",
                # `datasets` cannot load an empty split: a build without test questions lists train alone
                "data_files": [
                    {"split": name, "path": f"data/{name}-*.parquet"}
                    for name in SPLITS
                    if tally.count(name) or name == "train"
                ],
            }
        ],
    }
    fields: Counter = Counter()
    disciplines: dict[tuple, Counter] = {}
    for name in SPLITS:
        for path, count in tally.paths[name].items():
            fields[path[0]] += count
            disciplines.setdefault(path, Counter())[name] += count
    models = {stage: sorted(names) for stage, names in tally.models.items()}
    duplicates, contamination, accounting = facts["duplicates"], facts["contamination"], facts["accounting"]
    per_discipline = settings["test_per_discipline"]
    saved_by_cache = sum(b.get("saved_by_cache", 0.0) for b in accounting["by_stage"].values())

    parts = [
        "---\n" + yaml.safe_dump(front, sort_keys=False) + "---",
        f"# {front['pretty_name']}",
        "Instruction–response pairs written from scratch by language models, following GLAN "
        "(Generalized Instruction Tuning, arXiv:2402.13064): a taxonomy of human knowledge → subjects per "
        "discipline → a syllabus per subject → homework questions that combine key concepts of one or two "
        "class sessions → an answer to each question. Built with the `glan` Snakemake workflow; every record "
        "carries its provenance (taxonomy path, subject, sessions, concepts, models and request hashes).",
        "## Splits\n\n"
        + _table(["split", "records"], [[name, tally.count(name)] for name in SPLITS] + [["total", total]])
        + f"\n\nThe test split holds out up to {per_discipline} questions per discipline (as GLAN-Test did), "
        f"never more than {settings['max_test_share']:.0%} of a discipline, chosen by a hash of the "
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
        *([judge_card(facts["judge"], accounting)] if "judge" in facts else []),
        "## Generation cost\n\n"
        + _table(
            ["stage", "requests", "prompt tokens", "of them cached", "completion tokens", "estimated cost"],
            [
                [
                    s,
                    b["requests"],
                    b["prompt_tokens"],
                    b.get("cached_tokens", 0),
                    b["completion_tokens"],
                    f"{b['cost']:.4f}",
                ]
                for s, b in accounting["by_stage"].items()
            ],
        )
        + "\n\nEstimated from each reply's token usage and the workflow's price table; prompt tokens the provider "
        "served from its prefix cache at its cached-input price"
        + (f" (which saved {saved_by_cache:.4f})" if saved_by_cache else "")
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


def judge_card(judge: dict, accounting: dict) -> str:
    """The card's judge section: the rubric's scale, the overall score distribution per field and per
    difficulty of every graded record, what the minimums removed, and what grading cost."""
    from glan.stages.judge import CRITERIA, SCALE

    scores = [str(score) for score in range(SCALE[0], SCALE[1] + 1)]
    counts, cost = judge["counts"], accounting["by_stage"].get("judge", {})
    minimums = [f"overall >= {judge['min_score']}"] + [f"{c} >= {m}" for c, m in judge["min_criteria"].items()]
    tables = [
        f"Overall scores per {by}:\n\n"
        + _table([by, *scores], [[g, *(c.get(score, 0) for score in scores)] for g, c in judge["overall"][by].items()])
        for by in ("field", "difficulty")
    ]
    return "\n\n".join(
        [
            "## Judge\n\n"
            f"Every pair was graded by a judge model (`provenance.models.judge`) against a rubric: "
            f"{', '.join(CRITERIA)} and an overall score, each from {SCALE[0]} (worst) to {SCALE[1]} (best), "
            "with a short reason (`provenance.judge`; `graded: false` where the judge gave no valid grade). "
            f"Kept: {', '.join(minimums)}"
            + ("" if judge["keep_ungraded"] else ", ungraded records removed")
            + f". Of {counts['records_in']} records, {counts['removed_low_score']} were below the minimums and "
            f"{counts['ungraded']} ungraded ({counts['removed_ungraded']} of them removed). Grading cost "
            f"{cost.get('requests', 0)} requests, {cost.get('prompt_tokens', 0)} prompt and "
            f"{cost.get('completion_tokens', 0)} completion tokens, {cost.get('cost', 0.0):.4f} estimated.",
            *tables,
        ]
    )


def pieces(source: Composition, settings: dict, tally: CardCounts) -> tuple[dict[str, list[Piece]], pa.Schema]:
    """Each split's records, a piece per discipline in taxonomy order, counted into `tally` for the card;
    and the Parquet schema of the records."""
    split: dict[str, list[Piece]] = {name: [] for name in SPLITS}
    schemas = []
    for part in source.parts():
        if len(part.node):
            schemas.append(part.node.record_schema())
        test = held_out(part, settings)
        node = part.node.value("node", 0) if len(part.node) else str(part.node.number)
        for name, picked in (("train", ~test), ("test", test)):
            positions = np.flatnonzero(picked)
            tally.add(name, part.node, part.rows[positions])
            piece = Piece(
                part.node.number,
                node,
                part.node.records_digest(),
                positions,
                part.rows[positions],
                part.lengths[positions],
            )
            split[name].append(piece)
    return split, record_schema(schemas)


def write_shard(source: Composition, schema: pa.Schema, shard: Shard, paths: dict[str, Path]) -> None:
    """One shard's Parquet file (a row group per BATCH_ROWS records, from the facts' rows) and JSONL file
    (byte ranges of the disciplines' records files)."""
    record_type = pa.struct(list(schema))
    with open_atomic(paths["jsonl"]) as jsonl, open_atomic(paths["parquet"]) as handle:
        with pq.ParquetWriter(handle, schema, compression="zstd") as parquet:
            pending, groups = schema.empty_table(), 0
            parts = source.parts([piece.number for piece in shard.pieces])
            for piece, part in zip(shard.pieces, parts, strict=True):
                copy_lines([(part, piece.positions)], jsonl)
                pending = pa.concat_tables([pending, record_table(part.node, piece.rows, record_type)])
                while pending.num_rows >= BATCH_ROWS:
                    parquet.write_table(pending.slice(0, BATCH_ROWS))
                    pending, groups = pending.slice(BATCH_ROWS), groups + 1
            if pending.num_rows or not groups:  # an empty shard still gets a row group, as write_table gives
                parquet.write_table(pending)


def write_exports(source: Composition, facts: dict, settings: dict, root: str | Path, card_path: str | Path) -> dict:
    """The split's shards in `root` (the export folder), written where their records changed, the dataset
    card at `card_path` (hf/README.md), and the manifest of the shards (returned; shards.json)."""
    tally = CardCounts()
    split, schema = pieces(source, settings, tally)
    most = settings["max_shard_bytes"]
    shards = [
        shard
        for name in SPLITS
        for shard in plan(name, split[name], most, schema.serialize().to_pybytes(), keep_empty=name == "train")
    ]
    written = ShardFiles(root).update(shards, lambda shard, paths: write_shard(source, schema, shard, paths))
    write_bytes_atomic(card_path, card(tally, facts, settings).encode())
    return {**manifest(shards, most), "written": [shard.path("parquet") for shard in written]}
