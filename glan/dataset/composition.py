"""What a whole-dataset step's input holds, read from the disciplines' facts (glan.dataset.facts) a discipline
at a time: the disciplines' records files in taxonomy order, less what earlier steps removed (`Composition`),
and the lines it keeps copied as byte ranges of those files, so its memory does not grow with the dataset
and no step writes a whole copy of it for the next.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from glan.io import iter_jsonl

LSH = b"glan.lsh"  # the facts' metadata: the LSH bands and rows for the dedup threshold they were made for
RECORDS = b"glan.records"  # and the sha256 of the records file they were made from


class Columns(dict):
    """A discipline's facts columns as Python lists, each made when first asked for."""

    def __init__(self, node: NodeFacts):
        super().__init__()
        self.node = node

    def __missing__(self, name: str) -> list:
        self[name] = values = self.node.column(name).to_pylist()
        return values


class NodeFacts:
    """One discipline's facts, open while a step is inside it. A column is read when first asked for:
    dedup reads the signatures of the few disciplines that hold a record sharing a band, not of all."""

    def __init__(self, number: int, path: str):
        self.number = number  # its place in the taxonomy order of the facts files
        self.path = path
        self.file = pq.ParquetFile(path)
        self.arrow: dict[str, pa.ChunkedArray] = {}
        self.columns = Columns(self)

    def column(self, name: str) -> pa.ChunkedArray:
        if name not in self.arrow:
            self.arrow[name] = self.file.read(columns=[name]).column(name)
        return self.arrow[name]

    def record_schema(self) -> pa.Schema:
        """The export's columns as this discipline's records have them."""
        return pa.schema(list(self.file.schema_arrow.field("record").type))

    def records_digest(self) -> str:
        """The sha256 of the records file these facts were made from: what the export's shards are keyed by."""
        return self.file.schema_arrow.metadata[RECORDS].decode()

    def table(self, names: Iterable[str], rows: np.ndarray) -> pa.Table:
        """The columns `names` of the records of `rows`."""
        taken = pa.array(rows, pa.int64())
        return pa.table({name: self.column(name).take(taken) for name in names})

    def value(self, name: str, row: int):
        """One value, for a step that reads a few rows of a column (the whole column: `columns`)."""
        return self.column(name)[row].as_py()

    def __len__(self) -> int:
        return self.file.metadata.num_rows


@dataclass
class Part:
    """The records of one discipline that a whole-dataset step reads: their rows in the discipline's facts,
    and where their lines are in its records file."""

    node: NodeFacts
    rows: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    source: int  # the records file's descriptor, open while the step is inside the part

    def __len__(self) -> int:
        return len(self.rows)

    def record(self, i: int) -> dict:
        return orjson.loads(os.pread(self.source, int(self.lengths[i]), int(self.starts[i])))


class Composition:
    """What a whole-dataset step's input is made of, known without reading the records: each discipline's
    records file (results/dataset.jsonl is their concatenation) in taxonomy order, less the records that
    earlier steps removed (their removal files name them by id). A step reads the facts of those records a
    discipline at a time and copies the lines it keeps as byte ranges of the discipline's file; the file's
    size, checked against the lines' lengths in the facts, tells a stale file from a good one."""

    def __init__(
        self,
        facts: Iterable[str | Path],
        records: Iterable[str | Path],
        removed: Iterable[str] = (),
    ):
        """`records` are the disciplines' records files, in the order of their `facts`."""
        self.facts = [str(p) for p in facts]
        self.records = [str(p) for p in records]
        if len(self.records) != len(self.facts):
            raise ValueError(f"{len(self.facts)} facts files for {len(self.records)} records files")
        self.removed = pa.array(sorted(set(removed)), pa.string())

    def parts(self, numbers: Iterable[int] | None = None) -> Iterator[Part]:
        """Each discipline's part of the input (or those of the disciplines `numbers` gives, in that order);
        its records file is open until the next part is asked for."""
        for number in range(len(self.facts)) if numbers is None else numbers:
            node = NodeFacts(number, self.facts[number])
            kept = pc.invert(pc.is_in(node.column("id"), value_set=self.removed))
            rows = np.flatnonzero(kept.to_numpy(zero_copy_only=False))
            every = np.asarray(node.column("line_bytes").to_numpy(), dtype=np.int64)
            starts = np.concatenate(([0], np.cumsum(every)[:-1])).astype(np.int64)
            with open(self.records[number], "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size != int(every.sum()):
                    raise FactsMismatch(
                        f"{self.records[number]} has {size} bytes, but its records' lines in {node.path} add up to "
                        f"{int(every.sum())}: the file and its facts are not of the same build; run snakemake again"
                    )
                yield Part(node, rows, starts[rows], every[rows], handle.fileno())

    def bands(self) -> list[slice]:
        """The LSH bands of a signature, as the facts were made for (none without facts)."""
        if not self.facts:
            return []
        count, rows = orjson.loads(pq.read_schema(self.facts[0]).metadata[LSH])
        return [slice(band * rows, (band + 1) * rows) for band in range(count)]

    def nodes(self) -> Iterator[NodeFacts]:
        """Every discipline's facts, removed records included."""
        for number, path in enumerate(self.facts):
            yield NodeFacts(number, path)


class FactsMismatch(RuntimeError):
    pass


def removed_ids(paths: Iterable[str | Path]) -> set[str]:
    """The ids of the records that the removal files (duplicates.jsonl and the like) name."""
    return {entry["id"] for path in paths for entry in iter_jsonl(path)}


def copy_lines(parts: Iterable[tuple[Part, np.ndarray]], out: BinaryIO) -> int:
    """Copy the lines of the records each mask picks in its part to `out`, as coalesced byte ranges of the
    part's file (os.copy_file_range: the kernel copies, no line passes through Python); return how many."""
    copied = 0
    out.flush()
    for part, picked in parts:  # each part copied before the next is asked for: the file closes after the last
        starts, lengths = part.starts[picked], part.lengths[picked]
        if not len(starts):
            continue
        ends = starts + lengths
        breaks = np.flatnonzero(starts[1:] != ends[:-1]) + 1  # where a range does not go on from the one before
        for first, last in zip(
            np.concatenate(([0], breaks)).tolist(), np.concatenate((breaks, [len(starts)])).tolist(), strict=True
        ):
            _copy(part.source, out, int(starts[first]), int(ends[last - 1] - starts[first]))
        copied += len(starts)
    return copied


def _copy(source: int, out: BinaryIO, start: int, count: int) -> None:
    while count > 0:
        try:
            done = os.copy_file_range(source, out.fileno(), count, start)
        except OSError:  # a filesystem or kernel without it
            out.write(os.pread(source, count, start))
            out.flush()
            done = count
        if done == 0:
            raise FactsMismatch(f"the file being copied ended {count} bytes early")
        start, count = start + done, count - done


def record_table(node: NodeFacts, rows: np.ndarray, schema: pa.DataType) -> pa.Table:
    """The records of `rows` as a table whose one struct column is spread into the export's columns."""
    column = node.column("record").take(pa.array(rows, pa.int64())).cast(schema)
    return pa.Table.from_struct_array(column.combine_chunks())
