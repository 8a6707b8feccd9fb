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
from contextlib import ExitStack
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from glan.dataset.composition import Composition, NodeFacts, copy_lines, record_table
from glan.io import link_atomic, open_atomic, write_bytes_atomic
from glan.stages import GLAN_STAGES

SPLITS = ("train", "test")
BATCH_ROWS = 10_000  # records per Parquet row group: what the export holds in memory per split


class Survey(NamedTuple):
    """What the first pass over the dataset finds: the ids of the test questions and the Parquet schema."""

    test_ids: set[str]
    schema: pa.Schema


def _rank(record_id: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{record_id}".encode()).digest(), "big")


def held_out_count(count: int, settings: dict) -> int:
    """Questions of one discipline held out: `test_per_discipline`, never more than `max_test_share` of them."""
    return min(settings["test_per_discipline"], int(count * settings["max_test_share"]))


def survey(source: Composition, settings: dict) -> Survey:
    """The first pass: per discipline only the `test_per_discipline` best-ranked ids are kept (a heap),
    and the schema is the disciplines' record schemas unified, as if inferred from every record at once."""
    seed, most = settings["seed"], settings["test_per_discipline"]
    best: dict[str, list[tuple[int, str]]] = {}  # node -> max-heap of (-rank, id), the `most` best ranks
    counts: Counter = Counter()
    schemas = []
    for part in source.parts():
        if len(part):
            schemas.append(part.node.record_schema())
        for row in part.rows.tolist():
            node, record_id = part.node.columns["node"][row], part.node.columns["id"][row]
            counts[node] += 1
            heap = best.setdefault(node, [])
            entry = (-_rank(record_id, seed), record_id)
            if len(heap) < most:
                heapq.heappush(heap, entry)
            else:
                heapq.heappushpop(heap, entry)
    test_ids = {
        record_id
        for node, heap in best.items()
        for _, record_id in sorted(heap, reverse=True)[: held_out_count(counts[node], settings)]
    }
    schema = pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([("id", pa.string())])
    return Survey(test_ids, schema)


class CardCounts:
    """What the card says about the records: taxonomy paths per split (in dataset order) and models per stage."""

    def __init__(self):
        self.paths: dict[str, Counter] = {name: Counter() for name in SPLITS}
        self.models: dict[str, set[str]] = {stage: set() for stage in GLAN_STAGES}

    def add(self, name: str, node: NodeFacts, rows: np.ndarray) -> None:
        paths, models = node.columns["path"], node.columns["models"]
        for row in rows.tolist():
            self.paths[name][tuple(paths[row])] += 1
            for stage in GLAN_STAGES:
                self.models[stage].add(models[row][stage])

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
                    {"split": name, "path": f"data/{name}.parquet"}
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


def write_exports(source: Composition, found: Survey, facts: dict, settings: dict, out: dict) -> CardCounts:
    """The second pass, a discipline at a time: each split's records go to its JSONL file as byte ranges of
    the source file and to its Parquet file from the discipline's facts (a row group per BATCH_ROWS
    records); then the same Parquet files and a card go into the folder `datasets` loads.

    `out` maps train, test, train_parquet, test_parquet, hf_train, hf_test, hf_card to paths; the card's
    `configs` name the data files as data/train.parquet and data/test.parquet beside it.
    """
    tally = CardCounts()
    record_type = pa.struct(list(found.schema))
    with ExitStack() as files:
        jsonl = {split: files.enter_context(open_atomic(out[split])) for split in SPLITS}
        parquet = {
            split: files.enter_context(
                pq.ParquetWriter(
                    files.enter_context(open_atomic(out[f"{split}_parquet"])), found.schema, compression="zstd"
                )
            )
            for split in SPLITS
        }
        batches: dict[str, list[pa.Table]] = {split: [] for split in SPLITS}
        sizes: Counter = Counter()

        def flush(split: str, last: bool = False) -> None:
            """Write the split's whole row groups (and, `last`, what is left, even nothing: an empty split
            still gets a row group, as write_table gives)."""
            table = pa.concat_tables(batches[split]) if batches[split] else found.schema.empty_table()
            whole = table.num_rows - (0 if last else table.num_rows % BATCH_ROWS)
            for start in range(0, max(whole, int(last)), BATCH_ROWS):
                parquet[split].write_table(table.slice(start, BATCH_ROWS))
            rest = table.slice(whole)
            batches[split], sizes[split] = ([rest] if rest.num_rows else []), rest.num_rows

        for part in source.parts():
            ids = [part.node.columns["id"][row] for row in part.rows.tolist()]
            test = np.fromiter((i in found.test_ids for i in ids), dtype=bool, count=len(ids))
            for split, picked in (("train", ~test), ("test", test)):
                if not picked.any():
                    continue
                copy_lines([(part, picked)], jsonl[split])
                rows = part.rows[picked]
                tally.add(split, part.node, rows)
                batches[split].append(record_table(part.node, rows, record_type))
                sizes[split] += len(rows)
                if sizes[split] >= BATCH_ROWS:
                    flush(split)
        for split in SPLITS:
            if sizes[split] or not tally.count(split):
                flush(split, last=True)
    for name in SPLITS:
        link_atomic(out[f"{name}_parquet"], out[f"hf_{name}"])
    write_bytes_atomic(out["hf_card"], card(tally, facts, settings).encode())
    return tally
