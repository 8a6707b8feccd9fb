"""Atomic file writes: a crash leaves either the old file or the new one, never half of one.
JSONL is read and written a record at a time, so whole-dataset steps need no memory for the dataset."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import orjson

JSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2


@contextmanager
def open_atomic(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A temp file beside `path`, written as the caller goes and renamed onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with open_atomic(path) as handle:
        handle.write(data)


def copy_atomic(source: str | os.PathLike, path: str | os.PathLike) -> None:
    with open(source, "rb") as original, open_atomic(path) as handle:
        shutil.copyfileobj(original, handle)


def write_if_changed(path: str | os.PathLike, data: bytes) -> bool:
    """Keep bytes and mtime of an unchanged file, so Snakemake sees nothing new."""
    path = Path(path)
    if path.exists() and path.read_bytes() == data:
        return False
    write_bytes_atomic(path, data)
    return True


def digest(text: str) -> bytes:
    """16 bytes that stand for `text` in a set of seen ones: a whole-dataset step keeps these, not the texts."""
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def dump_json(obj) -> bytes:
    return orjson.dumps(obj, option=JSON_OPTIONS) + b"\n"


def write_json(path: str | os.PathLike, obj) -> None:
    write_bytes_atomic(path, dump_json(obj))


def read_json(path: str | os.PathLike):
    return orjson.loads(Path(path).read_bytes())


def dump_line(record) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n"


def dump_jsonl(records: Iterable) -> bytes:
    return b"".join(map(dump_line, records))


def write_jsonl(path: str | os.PathLike, records: Iterable) -> None:
    """Write records as they come, so a generator is never held whole."""
    with open_atomic(path) as handle:
        handle.writelines(map(dump_line, records))


def iter_jsonl(path: str | os.PathLike) -> Iterator:
    """The records of a JSONL file one by one, blank lines skipped; a bad line is named by file and number."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: {error}") from error


def read_jsonl(path: str | os.PathLike) -> list:
    return list(iter_jsonl(path))
