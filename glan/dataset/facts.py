"""A discipline's facts: what the whole-dataset steps need of each of its records, computed once.

Why: dedup, decontamination, accounting, the export and the report each used to re-derive every
record of the dataset (its MinHash, its n-grams, the usage of its replies, its Arrow row) after any
edit, which at GLAN's ten million records spends hours after an edit of one node. A discipline's
facts are computed by its own job from its own records file and kept beside it, so an edit of one
discipline recomputes that discipline's facts, and the whole-dataset steps only join: look-ups
across disciplines, concatenation and totals (glan.dataset.clean, .export, .accounting, .report).

`results/nodes/<id>/facts.parquet` holds a row per record, in the records file's order:
- `id`; `exact`: the 16-byte digest of the folded question (null with clean.dedup.exact off);
  `minhash`: its MinHash signature as little-endian uint64s (null with clean.dedup.near off);
- `node`, `path`, `models`, `question_words`, `answer_words`, `difficulty`, `strategy`: what the
  report and the dataset card count;
- `contamination`: the record's benchmark matches as JSON (null where it has none);
- `record`: the record itself, as the export's Parquet files hold it.
Beside it, `usage.json` holds the usage of the node's replies (`glan.dataset.accounting.node_usage`):
apart, so that opening a facts file does not parse it.

A whole-dataset step reads its input file (a subsequence of the records files in taxonomy order)
and walks the facts alongside (`FactsCursor`), a discipline at a time, so its memory does not grow
with the dataset.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from glan.dataset.clean import Screen, answer, exact_key, minhash, question, words
from glan.io import digest, open_atomic, write_bytes_atomic

REPORTED = ["node", "path", "question_words", "answer_words", "difficulty", "strategy"]  # what the report counts
PREFIX = b'{"id":"'


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


def compute(records: list[dict], settings: dict, screen: Screen) -> pa.Table:
    """The facts table of one discipline's records."""
    dedup = settings["dedup"]
    questions = [question(r) for r in records]
    counted = [reported(r) for r in records]
    matches = [screen.matches(r) for r in records]
    columns = {
        "id": pa.array([r["id"] for r in records], pa.string()),
        **{name: pa.array([c[name] for c in counted], TYPES.get(name, pa.string())) for name in REPORTED},
        "models": pa.array([r["provenance"]["models"] for r in records]),
        "exact": pa.array([digest(exact_key(q)) if dedup["exact"] else None for q in questions], pa.binary(16)),
        "minhash": pa.array([minhash(q, dedup) if dedup["near"] else None for q in questions], pa.binary()),
        "contamination": pa.array([None if m is None else orjson.dumps(m).decode() for m in matches], pa.string()),
        "record": pa.array(records) if records else pa.nulls(0),
    }
    return pa.table(columns)


def write(path: str | Path, table: pa.Table) -> None:
    with open_atomic(path) as handle:
        pq.write_table(table, handle, compression="lz4")


def write_usage(path: str | Path, usage: dict) -> None:
    write_bytes_atomic(path, orjson.dumps(usage))


def read_usage(path: str | Path) -> dict:
    return orjson.loads(Path(path).read_bytes())


def record_schema(path: str | Path) -> pa.DataType:
    return pq.read_schema(path).field("record").type


def record_id(line: bytes) -> str:
    """A record line's id without parsing the line: dump_line sorts keys, and "id" comes first."""
    if line.startswith(PREFIX):
        return line[len(PREFIX) : line.index(b'"', len(PREFIX))].decode()
    return orjson.loads(line)["id"]


@dataclass
class Node:
    """One discipline's facts, loaded while the cursor is inside it."""

    number: int  # its place in the taxonomy order of the facts files
    path: str
    table: pa.Table
    columns: dict[str, list]

    @classmethod
    def load(cls, number: int, path: str, columns: list[str], records: bool) -> Node:
        columns = list(dict.fromkeys(columns))
        table = pq.ParquetFile(path).read(columns=columns + (["record"] if records else []))
        return cls(number, path, table, {name: table.column(name).to_pylist() for name in columns})

    def __len__(self) -> int:
        return self.table.num_rows


class RecordFacts(Protocol):
    """A record's facts by column name: a Fact, or a plain dict in tests."""

    def __getitem__(self, name: str) -> Any: ...


@dataclass(frozen=True)
class Fact:
    """Where a record's facts are: its discipline and its row there."""

    node: Node
    row: int

    def __getitem__(self, name: str):
        return self.node.columns[name][self.row]


class FactsCursor:
    """The facts files of the disciplines, in taxonomy order, read a discipline at a time.

    A step asks for the `columns` it needs as Python values; `records` adds the Arrow `record` column."""

    def __init__(self, paths: Iterable[str | Path]):
        self.paths = [str(p) for p in paths]

    def walk(
        self, source: Iterable[bytes], name: str, columns: list[str], records: bool = False
    ) -> Iterator[tuple[bytes, Fact]]:
        """Each line of `source` (the file `name`, whose records are, in order, some of the facts'
        records) with its facts."""
        paths = enumerate(self.paths)
        node: Node | None = None
        row = 0
        for number, line in enumerate(source, 1):
            wanted = record_id(line)
            while node is None or row == len(node) or node.columns["id"][row] != wanted:
                if node is not None and row < len(node):
                    row += 1
                    continue
                following = next(paths, None)
                if following is None:
                    raise FactsMismatch(
                        f"{name}:{number}: record {wanted} is in no discipline's facts after the ones before it: "
                        "the facts files are older than the records; run snakemake again"
                    )
                node, row = Node.load(*following, ["id", *columns], records), 0
            yield line, Fact(node, row)
            row += 1

    def nodes(self, columns: list[str]) -> Iterator[Node]:
        for number, path in enumerate(self.paths):
            yield Node.load(number, path, columns, False)


class FactsMismatch(RuntimeError):
    pass


def record_table(node: Node, rows: list[int], schema: pa.DataType) -> pa.Table:
    """The records of `rows` as a table whose one struct column is spread into the export's columns."""
    column = node.table.column("record").take(pa.array(rows, pa.int64())).cast(schema)
    return pa.Table.from_struct_array(column.combine_chunks()) if rows else pa.table({})
