"""Atomic file writes: a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import orjson

JSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_if_changed(path: str | os.PathLike, data: bytes) -> bool:
    """Keep bytes and mtime of an unchanged file, so Snakemake sees nothing new."""
    path = Path(path)
    if path.exists() and path.read_bytes() == data:
        return False
    write_bytes_atomic(path, data)
    return True


def dump_json(obj) -> bytes:
    return orjson.dumps(obj, option=JSON_OPTIONS) + b"\n"


def write_json(path: str | os.PathLike, obj) -> None:
    write_bytes_atomic(path, dump_json(obj))


def read_json(path: str | os.PathLike):
    return orjson.loads(Path(path).read_bytes())


def dump_jsonl(records: Iterable) -> bytes:
    return b"".join(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) + b"\n" for r in records)


def write_jsonl(path: str | os.PathLike, records: Iterable) -> None:
    write_bytes_atomic(path, dump_jsonl(records))


def read_jsonl(path: str | os.PathLike) -> list:
    return [orjson.loads(line) for line in Path(path).read_bytes().splitlines() if line.strip()]
