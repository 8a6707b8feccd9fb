"""Replies on disk, keyed by request hash, in one of two layouts behind one interface.

- `diskcache` (the default): one SQLite-indexed diskcache under the cache directory. Fast (about
  13x the writes and 6x the reads of the file layout here) and one file for millions of entries;
  safe for many processes on one host, not across hosts on a network filesystem.
- `files`: one file per key, for a cache shared by many hosts (NFS, Lustre, GPFS, BeeGFS).
  Layout `<cache_dir>/objects/ab/cd/<key>`. A writer stores a reply by writing a hidden temp file
  beside its final name, fsyncing it and hard-linking it into place: `link` is atomic and fails
  when the name exists, so the first reply stored under a key wins and an entry never changes
  once written. A reader just opens the file: it sees a whole entry or none, with no lock and no
  index. On NFS, close-to-open consistency makes an entry visible to every host once `put` returns.
  Each entry holds its own key, so a file cut short by a host crash reads as a miss.

A cache directory records its layout in a `LAYOUT` file when it is made (`prepare_cache`, at parse
time), and every later opener follows it, whatever `cache_layout` says then, with one exception:
a diskcache asked for as `files` (a cache made locally, then run on a cluster) is converted first,
since SQLite must not be shared across hosts. In both layouts `put` keeps the first entry stored
under a key and returns what the cache holds.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import orjson

from glan.llm.request import Reply

_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")
_HEX = re.compile(r"[0-9a-f]{8,}")


@dataclass(frozen=True)
class Entry:
    """A stored reply; `error` is set for replies that failed validation, so a re-run skips them unsent.

    `via` says how it was sent (online or batch), for accounting: it is not part of the key, so a
    reply is the same reply however it came. Entries stored before it existed were sent online."""

    reply: Reply
    error: str | None = None
    via: str = "online"

    @property
    def valid(self) -> bool:
        return self.error is None


class ReplyReader(Protocol):
    def get(self, key: str) -> Entry | None: ...


class ReplyCache(ReplyReader, Protocol):
    """What both layouts implement; `put` keeps the first entry stored under a key and returns what the cache holds."""

    def put(self, key: str, entry: Entry) -> Entry: ...

    def keys(self) -> Iterator[str]: ...

    def __contains__(self, key: str) -> bool: ...

    def __len__(self) -> int: ...

    def close(self) -> None: ...

    def __enter__(self) -> ReplyCache: ...

    def __exit__(self, *exc) -> None: ...


LAYOUTS = ("diskcache", "files")
LAYOUT_FILE = "LAYOUT"


class CacheLayoutError(ValueError):
    pass


def cache_layout(directory: str | os.PathLike) -> str | None:
    """The layout an existing cache directory was made with, or None for a new one."""
    try:
        with open(os.path.join(directory, LAYOUT_FILE)) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def prepare_cache(directory: str | os.PathLike, layout: str) -> str:
    """Make the cache directory with `layout`; an existing cache keeps its own. Returns the layout in use.

    So a cache built on a cluster (files) is read as it is by a later local run, whatever its config.
    """
    if layout not in LAYOUTS:
        raise CacheLayoutError(f"cache_layout {layout!r} is unknown; choose one of {list(LAYOUTS)}")
    existing = cache_layout(directory)
    if existing == "diskcache" and layout == "files":
        convert_to_files(directory)
        return "files"
    if existing is None:
        os.makedirs(directory, exist_ok=True)
        _write_layout(directory, layout)
    return existing or layout


def _write_layout(directory: str | os.PathLike, layout: str) -> None:
    temporary = os.path.join(directory, f".{LAYOUT_FILE}.{os.getpid()}.tmp")
    with open(temporary, "w") as f:
        f.write(layout + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, os.path.join(directory, LAYOUT_FILE))


def convert_to_files(directory: str | os.PathLike) -> int:
    """Copy every entry of a diskcache cache into the file layout beside it, then switch `LAYOUT`.

    Run by one process (Snakemake's main process, at parse time) before any job. Interrupted, it
    starts again next time and skips what it copied. The diskcache files stay, unused, until removed.
    Returns the number of entries copied.
    """
    copied = 0
    with DiskReplyCache(directory) as source:
        target = FileReplyCache(directory)
        for key in source.keys():
            entry = source.get(key)
            if entry is not None and target.get(key) is None:
                target.put(key, entry, durable=False)
                copied += 1
    os.sync()  # every copied file on disk before the layout says they are there
    _write_layout(directory, "files")
    return copied


def open_cache(directory: str | os.PathLike, layout: str | None = None) -> ReplyCache:
    """The cache in `directory`, in the layout it was made with (a new one: `layout`, else diskcache)."""
    chosen = cache_layout(directory) or layout or "diskcache"
    return FileReplyCache(directory) if chosen == "files" else DiskReplyCache(directory)


class DiskReplyCache:
    def __init__(self, directory: str | os.PathLike):
        import diskcache

        self.directory = os.fspath(directory)
        # diskcache evicts past 1 GiB by default: a build cache must never drop a paid-for reply.
        # No eviction also means no culling scan on every write.
        self._cache = diskcache.Cache(self.directory, timeout=60, eviction_policy="none")

    def get(self, key: str) -> Entry | None:
        raw = self._cache.get(key)
        return None if raw is None else _decode(raw, key)

    def put(self, key: str, entry: Entry) -> Entry:
        """Store `entry` unless the key already has one; returns the entry the cache now holds for `key`."""
        if self._cache.add(key, _encode(key, entry)):
            return entry
        return self.get(key) or entry

    def __contains__(self, key: str) -> bool:
        return key in self._cache

    def keys(self) -> Iterator[str]:
        return iter(self._cache)

    def __len__(self) -> int:
        return len(self._cache)

    def close(self) -> None:
        self._cache.close()

    def __enter__(self) -> DiskReplyCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _encode(key: str, entry: Entry) -> bytes:
    return orjson.dumps({"key": key, "reply": entry.reply.to_dict(), "error": entry.error, "via": entry.via})


def _decode(raw: bytes, key: str) -> Entry | None:
    """None for bytes that are not a whole entry for `key` (a write cut short, a misplaced file)."""
    try:
        data = orjson.loads(raw)
        if data["key"] != key:
            return None
        return Entry(reply=Reply(**data["reply"]), error=data["error"], via=data.get("via", "online"))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


class FileReplyCache:
    def __init__(self, directory: str | os.PathLike):
        self.directory = os.fspath(directory)
        self.objects = os.path.join(self.directory, "objects")
        os.makedirs(self.objects, exist_ok=True)
        self._writer = f"{socket.gethostname()}.{os.getpid()}"

    def path(self, key: str) -> str:
        """Where the entry for `key` lives (whether or not it exists yet)."""
        if not _KEY.fullmatch(key):
            raise ValueError(f"a cache key is 1-200 letters, digits, '.', '_' or '-', not {key!r}")
        fan = key if _HEX.fullmatch(key) else hashlib.sha256(key.encode()).hexdigest()
        return os.path.join(self.objects, fan[:2], fan[2:4], key)

    def get(self, key: str) -> Entry | None:
        return self._read(self.path(key), key)

    def put(self, key: str, entry: Entry, durable: bool = True) -> Entry:
        """Store `entry` unless the key already has one; returns the entry the cache now holds for `key`.

        `durable=False` skips the fsync, for bulk copies that sync once at the end."""
        path = self.path(key)
        stored = self._read(path, key)
        if stored is not None:
            return stored
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        temporary = os.path.join(folder, f".{key}.{self._writer}.{uuid.uuid4().hex}.tmp")
        data = _encode(key, entry)
        with open(temporary, "xb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        try:
            try:
                os.link(temporary, path)  # atomic, and refuses to replace: the first writer wins
            except FileExistsError:
                stored = self._read(path, key)
                if stored is not None:
                    return stored
                os.replace(temporary, path)  # the existing file is damaged (a host crashed mid-write)
            except OSError as error:
                if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                    raise
                os.replace(temporary, path)  # a filesystem without hard links: still atomic, last writer wins
            return entry
        finally:
            if os.path.lexists(temporary):
                os.unlink(temporary)

    @staticmethod
    def _read(path: str, key: str) -> Entry | None:
        try:
            with open(path, "rb") as f:
                return _decode(f.read(), key)
        except FileNotFoundError:
            return None

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def keys(self) -> Iterator[str]:
        """Every stored key (temp files of writers in progress are hidden and not counted)."""
        for top in _folders(self.objects):
            for sub in _folders(top):
                with os.scandir(sub) as entries:
                    yield from (e.name for e in entries if not e.name.startswith("."))

    def __len__(self) -> int:
        return sum(1 for _ in self.keys())

    def close(self) -> None:
        """Nothing to release: no connection, no lock, no open file between calls."""

    def __enter__(self) -> FileReplyCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _folders(path: str) -> list[str]:
    try:
        with os.scandir(path) as entries:
            return sorted(e.path for e in entries if e.is_dir() and not e.name.startswith("."))
    except FileNotFoundError:
        return []
