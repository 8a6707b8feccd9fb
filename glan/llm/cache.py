"""Replies on disk, keyed by request hash: one file per key, written once and atomically, read without locks.

Layout: `<cache_dir>/objects/ab/cd/<key>` (the first four hex digits of the key fan the files out; keys
that are not hex use their sha256). A writer stores a reply by writing a hidden temp file beside its
final name, fsyncing it and hard-linking it into place: `link` is atomic and fails when the name
exists, so the first reply stored under a key wins and an entry never changes once written. A reader
just opens the file: it sees a whole entry or none, and needs no lock and no index.

That makes one cache safe for many processes on many hosts at once, on a local disk or a shared
filesystem (NFS, Lustre, GPFS, BeeGFS): no SQLite, no lock files, no merge step. On NFS, close-to-open
consistency makes an entry visible to every host as soon as `put` returns. Each entry holds its own
key, so a file cut short by a host crash reads as a miss and is replaced by the next `put`.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import socket
import uuid
from dataclasses import dataclass

import orjson

from glan.llm.request import Reply

_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")
_HEX = re.compile(r"[0-9a-f]{8,}")


@dataclass(frozen=True)
class Entry:
    """A stored reply; `error` is set for replies that failed validation, so a re-run skips them unsent."""

    reply: Reply
    error: str | None = None

    @property
    def valid(self) -> bool:
        return self.error is None


class ReplyCache:
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

    def put(self, key: str, entry: Entry) -> Entry:
        """Store `entry` unless the key already has one; returns the entry the cache now holds for `key`."""
        path = self.path(key)
        stored = self._read(path, key)
        if stored is not None:
            return stored
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        temporary = os.path.join(folder, f".{key}.{self._writer}.{uuid.uuid4().hex}.tmp")
        data = orjson.dumps({"key": key, "reply": entry.reply.to_dict(), "error": entry.error})
        with open(temporary, "xb") as f:
            f.write(data)
            f.flush()
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
                data = orjson.loads(f.read())
            if data["key"] != key:
                return None
            return Entry(reply=Reply(**data["reply"]), error=data["error"])
        except FileNotFoundError:
            return None
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None  # cut short by a crash: a miss, replaced by the next put

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def keys(self):
        """Every stored key (temp files of writers in progress are hidden and not counted)."""
        for top in _folders(self.objects):
            for sub in _folders(top):
                with os.scandir(sub) as entries:
                    yield from (e.name for e in entries if not e.name.startswith("."))

    def __len__(self) -> int:
        return sum(1 for _ in self.keys())

    def close(self) -> None:
        """Nothing to release: no connection, no lock, no open file between calls."""

    def __enter__(self) -> ReplyCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _folders(path: str) -> list[str]:
    try:
        with os.scandir(path) as entries:
            return sorted(e.path for e in entries if e.is_dir() and not e.name.startswith("."))
    except FileNotFoundError:
        return []
