"""A discipline's facts: what the whole-dataset steps need of each of its records, computed once.

Why: dedup, decontamination, accounting, the export and the report each used to re-derive every
record of the dataset (its MinHash, its n-grams, the usage of its replies, its Arrow row) after any
edit, which at GLAN's ten million records spends hours after an edit of one node. A discipline's
facts are computed by its own job from its own records file and kept beside it, so an edit of one
discipline recomputes that discipline's facts, and the whole-dataset steps only join: look-ups
across disciplines, concatenation and totals (glan.dataset.clean, .export, .accounting, .report).

`results/nodes/<id>/facts.parquet` holds a row per record, in the records file's order:
- `id`; `line_bytes`: the length of its line; `exact`: the 16-byte digest of the folded question
  (null with clean.dedup.exact off); `minhash`: its MinHash signature as little-endian uint64s (null
  with clean.dedup.near off); `bands`: its LSH band keys, 8 bytes a band (what dedup's join compares);
- `node`, `path`, `models`, `question_words`, `answer_words`, `difficulty`, `strategy`: what the
  report and the dataset card count;
- `contamination`: the record's benchmark matches as JSON (null where it has none);
- `record`: the record itself, as the export's Parquet files hold it.
Its metadata holds the LSH shape the signatures were made for and the sha256 of the records file.
Beside it, `usage.json` holds the usage of the node's replies (`glan.dataset.accounting.node_usage`):
apart, so that opening a facts file does not parse it.

A whole-dataset step knows what its input file holds without reading it: glan.dataset.composition
reads these facts back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from glan.dataset.clean import Screen, answer, band_keys, exact_key, lsh_shape, minhash, question, words
from glan.dataset.composition import LSH, RECORDS
from glan.io import digest, open_atomic, write_bytes_atomic

REPORTED = ["node", "path", "question_words", "answer_words", "difficulty", "strategy"]  # what the report counts


def reported(record: dict) -> dict:
    """The facts of a record that the report counts (REPORTED)."""
    provenance = record["provenance"]
    return {
        "node": provenance["node"],
        "path": provenance["path"],
        "question_words": len(words(question(record))),
        "answer_words": len(words(answer(record))),
        "difficulty": provenance["difficulty"],
        "strategy": provenance["strategy"],
    }


TYPES = {"node": pa.string(), "path": pa.list_(pa.string()), "question_words": pa.int32(), "answer_words": pa.int32()}


def compute(lines: list[bytes], records: list[dict], settings: dict, screen: Screen) -> pa.Table:
    """The facts table of one discipline's records, `lines` their lines in its records file."""
    dedup = settings["dedup"]
    questions = [question(r) for r in records]
    signatures = [minhash(q, dedup) for q in questions] if dedup["near"] else []
    counted = [reported(r) for r in records]
    matches = [screen.matches(r) for r in records]
    columns = {
        "id": pa.array([r["id"] for r in records], pa.string()),
        "line_bytes": pa.array([len(line) for line in lines], pa.int64()),
        **{name: pa.array([c[name] for c in counted], TYPES.get(name, pa.string())) for name in REPORTED},
        "models": pa.array([r["provenance"]["models"] for r in records]),
        "exact": pa.array([digest(exact_key(q)) if dedup["exact"] else None for q in questions], pa.binary(16)),
        "minhash": pa.array(signatures if dedup["near"] else [None] * len(records), pa.binary()),
        "bands": _bands(signatures, dedup) if dedup["near"] else pa.nulls(len(records), pa.binary()),
        "contamination": pa.array([None if m is None else orjson.dumps(m).decode() for m in matches], pa.string()),
        "record": pa.array(records) if records else pa.nulls(0),
    }
    shape = {LSH: orjson.dumps(lsh_shape(dedup))} if dedup["near"] else {}
    made_from = {RECORDS: hashlib.sha256(b"".join(lines)).hexdigest().encode()}
    return pa.table(columns).replace_schema_metadata({**shape, **made_from})


def _bands(signatures: list[bytes], dedup: dict) -> pa.Array:
    """The records' LSH band keys (glan.dataset.clean.band_keys), 8 bytes a band, in one fixed-width column."""
    count, rows = lsh_shape(dedup)
    spans = [slice(band * rows, (band + 1) * rows) for band in range(count)]
    values = np.frombuffer(b"".join(signatures), dtype="<u8").reshape(len(signatures), dedup["num_perm"])
    keys = band_keys(values, spans) if len(signatures) else np.zeros((0, count), dtype="<u8")
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(8 * count), len(signatures), [None, pa.py_buffer(keys.tobytes())]
    )


def write(path: str | Path, table: pa.Table) -> None:
    with open_atomic(path) as handle:
        pq.write_table(table, handle, compression="lz4")


def write_usage(path: str | Path, usage: dict) -> None:
    write_bytes_atomic(path, orjson.dumps(usage))


def read_usage(path: str | Path) -> dict:
    return orjson.loads(Path(path).read_bytes())
