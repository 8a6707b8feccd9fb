"""The export's shards: each split cut into files in the Hub's layout (`hf/data/train-00000-of-00042.parquet`,
and `jsonl/train-00000-of-00042.jsonl` with the same records), bounded in bytes and cut so that an edit of one
discipline rewrites the shards that hold it and no other.

Why a discipline's shard does not move when another changes: a shard is a run of whole disciplines in taxonomy
order (a discipline larger than a shard is cut into runs of its records), and runs start where a discipline's
id hashes to a boundary, not where the bytes before it add up to a shard. A discipline that grows or shrinks
moves the cuts inside its own run. How many disciplines a run holds on average is a power of two chosen from
the split's mean bytes a discipline, so it stays put unless that mean doubles or halves.

Each shard is keyed by what its bytes are made of (its disciplines' records files, the rows it takes of each,
the schema). A shard whose key is that of a file already written is kept, renamed if the count of shards
moved. `.shards.json` in the export folder remembers which file has which key, with its size and mtime, so a
file changed by hand is written again; it is no output of the rule, since Snakemake deletes a rule's outputs
before the rule runs.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from glan.io import write_bytes_atomic

FORMAT = "glan-shards-1"  # in every key: a change of how shards are written must not keep an old file
KINDS = {"parquet": "hf/data", "jsonl": "jsonl"}  # each kind of shard file and its folder in the export folder
STATE = ".shards.json"


@dataclass(frozen=True)
class Piece:
    """The records of one discipline that go to one shard of one split."""

    number: int  # the discipline's place in the facts (glan.dataset.composition.Composition.parts)
    node: str
    digest: str  # the sha256 of its records file
    positions: np.ndarray  # which of the records its part keeps go here
    rows: np.ndarray  # their rows in its facts
    lengths: np.ndarray  # and their lines' bytes

    @property
    def size(self) -> int:
        return int(self.lengths.sum())

    def cut(self, start: int, stop: int) -> Piece:
        return Piece(
            self.number,
            self.node,
            self.digest,
            self.positions[start:stop],
            self.rows[start:stop],
            self.lengths[start:stop],
        )


@dataclass(frozen=True)
class Shard:
    split: str
    index: int
    count: int
    pieces: tuple[Piece, ...]
    key: str

    def path(self, kind: str) -> str:
        """The file's path in the export folder."""
        return f"{KINDS[kind]}/{self.split}-{self.index:05d}-of-{self.count:05d}.{kind}"

    @property
    def records(self) -> int:
        return sum(len(piece.rows) for piece in self.pieces)

    @property
    def size(self) -> int:
        return sum(piece.size for piece in self.pieces)


def runs_per_shard(pieces: list[Piece], max_bytes: int) -> int:
    """How many disciplines a run holds on average: a power of two, so that runs fill about half a shard."""
    sizes = [piece.size for piece in pieces if piece.size]
    if not sizes:
        return 1
    fits = max_bytes / (2 * sum(sizes) / len(sizes))
    return 2 ** max(0, math.floor(math.log2(fits))) if fits >= 1 else 1


def _starts_run(node: str, per_run: int) -> bool:
    return int.from_bytes(hashlib.sha256(node.encode()).digest()[:8], "big") % per_run == 0


def group(pieces: list[Piece], max_bytes: int) -> list[list[Piece]]:
    """The split's pieces (one a discipline, in taxonomy order) cut into shards of at most `max_bytes` of
    lines: runs that start at disciplines whose id hashes to a boundary, each packed in order."""
    per_run = runs_per_shard(pieces, max_bytes)
    runs: list[list[Piece]] = []
    for piece in pieces:
        if not runs or _starts_run(piece.node, per_run):
            runs.append([])
        runs[-1].append(piece)
    shards: list[list[Piece]] = []
    for run in runs:
        open_shard: list[Piece] = []
        for piece in run:
            for part in _fitting(piece, max_bytes):
                if open_shard and sum(p.size for p in open_shard) + part.size > max_bytes:
                    shards.append(open_shard)
                    open_shard = []
                open_shard.append(part)
        if open_shard:
            shards.append(open_shard)
    return shards


def _fitting(piece: Piece, max_bytes: int) -> Iterable[Piece]:
    """A piece, or runs of its records of at most `max_bytes` each (a record larger than that alone)."""
    if piece.size <= max_bytes:
        yield piece
        return
    start, ends = 0, np.cumsum(piece.lengths)
    while start < len(piece.rows):
        done = int(ends[start - 1]) if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, done + max_bytes, side="right")))
        yield piece.cut(start, stop)
        start = stop


def plan(split: str, pieces: list[Piece], max_bytes: int, schema: bytes, keep_empty: bool = False) -> list[Shard]:
    """The split's shards, each keyed by what its files are made of. A split without records has none, or
    with `keep_empty` one empty shard (`datasets` loads no split from a pattern that matches no file)."""
    groups = group([piece for piece in pieces if len(piece.rows)], max_bytes) or ([[]] if keep_empty else [])
    shards = []
    for index, members in enumerate(groups):
        made_of = hashlib.sha256(f"{FORMAT}\0{split}\0".encode() + hashlib.sha256(schema).digest())
        for piece in members:
            made_of.update(f"{piece.node}\0{piece.digest}\0".encode())
            made_of.update(piece.rows.astype("<i8").tobytes())
        shards.append(Shard(split, index, len(groups), tuple(members), made_of.hexdigest()))
    return shards


class ShardFiles:
    """The shard files of an export folder: which are still good, and putting the planned ones in place."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _known(self) -> dict[str, str]:
        """The key of each file the last export wrote that is still as it left it."""
        try:
            state = orjson.loads((self.root / STATE).read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return {}
        known = {}
        for path, entry in state.items():
            try:
                now = os.stat(self.root / path)
            except FileNotFoundError:
                continue
            if [now.st_size, now.st_mtime_ns] == [entry["size"], entry["mtime_ns"]]:
                known[path] = entry["key"]
        return known

    def update(self, shards: list[Shard], write: Callable[[Shard, dict[str, Path]], None]) -> list[Shard]:
        """Keep, rename or write (`write(shard, {kind: path})`) each planned shard's files, and delete every
        other file in the shard folders; return the shards written."""
        known = self._known()
        where = {(key, Path(path).suffix): path for path, key in known.items()}
        kept: set[str] = set()
        moves: list[tuple[Path, Path]] = []  # (a name to park a reused file under, its planned path)
        written: list[Shard] = []
        for shard in shards:
            paths = {kind: shard.path(kind) for kind in KINDS}
            found = {kind: where.get((shard.key, f".{kind}")) for kind in KINDS}
            if any(path is None for path in found.values()):
                written.append(shard)
                continue
            for kind, path in paths.items():
                if found[kind] == path:
                    kept.add(path)
                else:
                    parked = self.root / KINDS[kind] / f".{shard.key}.{kind}.moving"
                    os.replace(self.root / str(found[kind]), parked)
                    moves.append((parked, self.root / path))
        parked_names = {parked for parked, _ in moves}
        for folder in KINDS.values():
            (self.root / folder).mkdir(parents=True, exist_ok=True)
            for entry in (self.root / folder).iterdir():
                if f"{folder}/{entry.name}" not in kept and entry not in parked_names:
                    entry.unlink()
        for parked, planned in moves:
            os.replace(parked, planned)
        for shard in written:
            write(shard, {kind: self.root / shard.path(kind) for kind in KINDS})
        state = {}
        for shard in shards:
            for kind in KINDS:
                done = os.stat(self.root / shard.path(kind))
                state[shard.path(kind)] = {"key": shard.key, "size": done.st_size, "mtime_ns": done.st_mtime_ns}
        write_bytes_atomic(self.root / STATE, orjson.dumps(state, option=orjson.OPT_INDENT_2))
        return written


def manifest(shards: list[Shard], max_bytes: int) -> dict:
    """What results/export/shards.json says: every shard's files, records, bytes of JSONL and disciplines."""
    return {
        "max_shard_bytes": max_bytes,
        "shards": [
            {
                "split": shard.split,
                **{kind: shard.path(kind) for kind in KINDS},
                "records": shard.records,
                "jsonl_bytes": shard.size,
                "disciplines": list(dict.fromkeys(piece.node for piece in shard.pieces)),
                "key": shard.key,
            }
            for shard in shards
        ],
    }
