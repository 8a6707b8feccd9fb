"""Atomic file writes: a crash leaves either the old file or the new one, never half of one.
A written file gets the mode a plain open() would give it (0644 under umask 022), so a collaborator,
a training job under another account or a web server can read the dataset in a shared directory.
JSONL is read and written a record at a time, so whole-dataset steps need no memory for the dataset.

A summed file (`write_summed`: the stages' artifacts) has its sum beside it, `<file>.sum`: its lines
(a JSONL file's records), its size and its sha256, as its writer wrote it. A reader that reads it
checked (`read_checked`, `read_chunks`) stops on a file changed since, by hand or cut short, with
one line that names it and how to have it written again, instead of reading on with fewer records
or failing on a half line. The sum is a file of its own, not a field of the artifact, so artifacts
keep their bytes; the rules declare it as an output, so Snakemake rewrites it with its artifact.
"""

from __future__ import annotations

import hashlib
import io
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
CHUNK = 1 << 20  # what a checked read takes at a time
SUM = ".sum"  # the suffix of a summed file's sum


class ArtifactChanged(ValueError):
    """A summed file whose bytes are not those its writer recorded in its sum."""


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


def sum_path(path: str | os.PathLike) -> Path:
    return Path(f"{os.fspath(path)}{SUM}")


class Summing:
    """The lines, size and sha256 of bytes as they pass: what a summed file's sum records."""

    def __init__(self) -> None:
        self.lines = self.size = 0
        self.sha256 = hashlib.sha256()

    def add(self, data: bytes) -> None:
        self.lines += data.count(b"\n")
        self.size += len(data)
        self.sha256.update(data)

    def sum(self) -> dict:
        return {"bytes": self.size, "lines": self.lines, "sha256": self.sha256.hexdigest()}


def write_summed(path: str | os.PathLike, chunks: Iterable[bytes]) -> None:
    """Write `chunks` to `path` atomically, then its sum beside it (the sum last: a crash between the two
    leaves a file that fails its check, and Snakemake, which saw the job fail, removes it)."""
    tally = Summing()
    with open_atomic(path) as handle:
        for chunk in chunks:
            tally.add(chunk)
            handle.write(chunk)
    write_json(sum_path(path), tally.sum())


def read_chunks(path: str | os.PathLike, size: int = CHUNK) -> Iterator[bytes]:
    """The bytes of `path` a chunk at a time; past the last, ArtifactChanged if they are not what its
    sum records. A file with no sum beside it (the taxonomy's node files) is read unchecked."""
    recorded = _recorded_sum(path)
    tally = Summing()
    with open(path, "rb") as handle:
        while chunk := handle.read(size):
            tally.add(chunk)
            yield chunk
    if recorded is not None and tally.sum() != recorded:
        raise ArtifactChanged(_changed(path, tally.sum(), recorded))


def read_checked(path: str | os.PathLike) -> bytes:
    """The whole of `path`, checked against its sum (read_chunks)."""
    return b"".join(read_chunks(path))


def checked_lines(path: str | os.PathLike) -> list[bytes]:
    """The non-blank lines of a summed JSONL file, as bytes, checked against its sum."""
    return [line for line in io.BytesIO(read_checked(path)) if line.strip()]


def _recorded_sum(path: str | os.PathLike) -> dict | None:
    try:
        recorded = read_json(sum_path(path))
    except FileNotFoundError:
        return None
    except orjson.JSONDecodeError:
        recorded = {}
    if not isinstance(recorded, dict) or set(recorded) != {"bytes", "lines", "sha256"}:
        raise ArtifactChanged(f"{sum_path(path)} was changed after it was built; {_REBUILD.format(path=path)}")
    return recorded


# Deleting the file is not enough: Snakemake does not rerun a job for a missing output while the outputs
# downstream of it are in place. --forcerun reruns its job and everything downstream.
_REBUILD = (
    "to have it written anew (its replies come from the cache), run snakemake --forcerun {path} with your options"
)


def _changed(path: str | os.PathLike, found: dict, recorded: dict) -> str:
    """One line: which file changed since its writer wrote it, how, and how to have it written again."""
    unit = "whole records" if str(path).endswith(".jsonl") else "lines"
    if found["lines"] != recorded["lines"]:
        how = f"{found['lines']} {unit} where {recorded['lines']} were written"
    elif found["bytes"] != recorded["bytes"]:
        how = f"{found['bytes']} bytes where {recorded['bytes']} were written"
    else:
        how = "its bytes are not those written"
    return f"{path} was changed after it was built ({how}); {_REBUILD.format(path=path)}"


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
        yield from parse_lines(handle, path)


def parse_lines(lines: Iterable[bytes], path: str | os.PathLike) -> Iterator:
    """The records of JSONL `lines` read from `path`, blank ones skipped."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: {error}") from error


def read_jsonl(path: str | os.PathLike) -> list:
    return list(iter_jsonl(path))
