"""Atomic file writes: a crash leaves either the old file or the new one, never half of one.
A written file gets the mode a plain open() would give it (0644 under umask 022), so a collaborator,
a training job under another account or a web server can read the dataset in a shared directory.
JSONL is read and written a record at a time, so whole-dataset steps need no memory for the dataset."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import orjson

JSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2
WRITE_BUFFER = 1 << 20  # a whole-dataset step writes records of a few KB each: one system call per MiB, not per 8 KB


@contextmanager
def open_atomic(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A temp file beside `path`, written as the caller goes and renamed onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb", buffering=WRITE_BUFFER) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _create_temporary(path: Path) -> tuple[int, str]:
    """A new hidden file beside `path`, created with mode 0666 as open() does, so the kernel applies the umask
    (and a directory's default ACL). tempfile.mkstemp creates 0600, and that mode would survive the rename."""
    while True:
        tmp = str(_temporary_name(path))
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with open_atomic(path) as handle:
        handle.write(data)


def copy_atomic(source: str | os.PathLike, path: str | os.PathLike) -> None:
    with open(source, "rb") as original, open_atomic(path) as handle:
        shutil.copyfileobj(original, handle)


def link_atomic(source: str | os.PathLike, path: str | os.PathLike) -> None:
    """`path` becomes a second name of the finished file `source` (a copy where the filesystem has no hard
    links or they cross devices): an export's twin files cost no second write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    try:
        os.link(source, tmp)
    except OSError:
        copy_atomic(source, path)
        return
    os.replace(tmp, path)


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


def iter_lines(path: str | os.PathLike) -> Iterator[bytes]:
    """The non-blank lines of a JSONL file as bytes, for a step that passes records through unparsed."""
    with open(path, "rb") as handle:
        for line in handle:
            if line.strip():
                yield line


def read_jsonl(path: str | os.PathLike) -> list:
    return list(iter_jsonl(path))
