"""Replies on disk, keyed by request hash, in diskcache (SQLite index, safe for many local processes)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import diskcache
import orjson

from glan.llm.request import Reply


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
        self._cache = diskcache.Cache(self.directory, timeout=60)

    def get(self, key: str) -> Entry | None:
        raw = self._cache.get(key)
        if raw is None:
            return None
        data = orjson.loads(raw)
        return Entry(reply=Reply(**data["reply"]), error=data["error"])

    def put(self, key: str, entry: Entry) -> None:
        self._cache.set(key, orjson.dumps({"reply": entry.reply.to_dict(), "error": entry.error}))

    def __contains__(self, key: str) -> bool:
        return key in self._cache

    def __len__(self) -> int:
        return len(self._cache)

    def close(self) -> None:
        self._cache.close()

    def __enter__(self) -> ReplyCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
