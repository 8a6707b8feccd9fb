"""Every entry still readable in a damaged diskcache `cache.db`, read page by page (`glan cache verify`).

SQLite gives up on a whole query at the first bad page (a file cut short, a page overwritten): one bad
page would make every entry unreachable. This reads the file as SQLite's file format lays it out
(https://www.sqlite.org/fileformat2.html) instead, without SQLite: each page that is a leaf of a table
b-tree holds whole rows, so every row of diskcache's Cache table on a sound page is found, whatever
became of the pages above it; pages in the write-ahead log (`cache.db-wal`) are read too, the newest
copy of a page first. A row is kept only if its value decodes as an entry of its own key (the entry
holds it), so a page that only looks like a leaf yields nothing false. Keys are also read from the
leaves of the key index, so an entry lost with its page is still named. Last, each page is searched
for entries outside any row: SQLite leaves a row's old copy in the free space of the page it moved
from (a page split), and that copy is the same entry, readable though its row is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from glan.llm.cache import DATABASE, Entry, decode_entry, encode_entry

TABLE_LEAF, INDEX_LEAF = 13, 10
CACHE_COLUMNS = 12  # diskcache's Cache table: rowid, key, raw, store_time, ..., mode, filename, value
MODE_RAW, MODE_BINARY = 1, 2  # diskcache's value modes: bytes in the row, bytes in a file beside it
MARK = b'{"key":"'  # how every stored entry begins (glan.llm.cache.encode_entry)


@dataclass
class Salvage:
    """What a damaged cache.db still holds: readable entries, and keys whose entry is unreadable or gone."""

    entries: dict[str, Entry] = field(default_factory=dict)
    keys: set[str] = field(default_factory=set)  # every key seen, in a row or in the key index

    @property
    def damaged(self) -> list[str]:
        return sorted(self.keys - set(self.entries))


class Pages:
    """The pages of a database file and of its write-ahead log, by page number (the log's copy wins)."""

    def __init__(self, database: str):
        with open(database, "rb") as f:
            self.data = f.read()
        size = int.from_bytes(self.data[16:18], "big") if len(self.data) >= 100 else 4096
        self.size = 65536 if size == 1 else size
        self.usable = self.size - (self.data[20] if len(self.data) >= 100 else 0)
        self.logged: dict[int, bytes] = {}
        try:
            with open(database + "-wal", "rb") as f:
                self._read_log(f.read())
        except FileNotFoundError:
            pass

    def _read_log(self, log: bytes) -> None:
        """Frames of the log's current generation (their salts match its header's), later frames last."""
        if len(log) < 32:
            return
        size = int.from_bytes(log[8:12], "big")
        if size != self.size:
            return
        salts = log[16:24]
        frame = 24 + size
        for start in range(32, len(log) - frame + 1, frame):
            if log[start + 8 : start + 16] == salts:
                self.logged[int.from_bytes(log[start : start + 4], "big")] = log[start + 24 : start + frame]

    @property
    def count(self) -> int:
        return max(-(-len(self.data) // self.size), max(self.logged, default=0))

    def page(self, number: int) -> bytes | None:
        """The page, or what is left of it where the file is cut (a row cut with it fails to parse)."""
        if number in self.logged:
            return self.logged[number]
        start = (number - 1) * self.size
        return self.data[start : start + self.size] or None


def salvage(directory: str) -> Salvage:
    """Every entry of the cache.db in `directory` that can still be read, and every key it names."""
    pages = Pages(os.path.join(directory, DATABASE))
    found = Salvage()
    for number in range(1, pages.count + 1):
        for kind, values in _records(pages, number):
            if kind == INDEX_LEAF and len(values) == 3 and isinstance(values[0], str) and values[1] == 1:
                found.keys.add(values[0])  # Cache_key_raw: (key, raw, rowid)
            elif kind == TABLE_LEAF and len(values) == CACHE_COLUMNS and isinstance(values[1], str):
                key = values[1]
                found.keys.add(key)
                entry = _entry(directory, key, values)
                if entry is not None and key not in found.entries:
                    found.entries[key] = entry
        for key, entry in _loose(pages, number):
            found.keys.add(key)
            found.entries.setdefault(key, entry)
    return found


def _loose(pages: Pages, number: int) -> Iterator[tuple[str, Entry]]:
    """Whole entries anywhere in page `number`, rows or not: each is JSON that begins with MARK."""
    page = pages.page(number) or b""
    start = page.find(MARK)
    while start != -1:
        text = page[start:].decode("utf-8", "surrogateescape")
        try:
            document, end = json.JSONDecoder().raw_decode(text)
            key = document["key"]
            entry = decode_entry(text[:end].encode("utf-8", "surrogateescape"), key)
        except (ValueError, KeyError, TypeError):
            entry = None
        if entry is not None:
            yield key, entry
        start = page.find(MARK, start + 1)


def _entry(directory: str, key: str, values: list) -> Entry | None:
    mode, filename, value = values[9], values[10], values[11]
    if mode == MODE_RAW and isinstance(value, bytes):
        return decode_entry(value, key)
    if mode == MODE_BINARY and isinstance(filename, str):
        try:
            with open(os.path.join(directory, filename), "rb") as f:
                return decode_entry(f.read(), key)
        except OSError:
            return None
    return None


def _records(pages: Pages, number: int) -> Iterator[tuple[int, list]]:
    """The records of page `number` if it is a b-tree leaf; nothing for a page that is not, or is cut."""
    page = pages.page(number)
    if page is None:
        return
    header = 100 if number == 1 else 0
    kind = page[header]
    if kind not in (TABLE_LEAF, INDEX_LEAF):
        return
    cells = int.from_bytes(page[header + 3 : header + 5], "big")
    for index in range(cells):
        pointer = header + 8 + 2 * index
        offset = int.from_bytes(page[pointer : pointer + 2], "big")
        try:
            payload = _payload(pages, page, offset, kind)
            if payload is not None:
                yield kind, _record(payload)
        except (IndexError, ValueError):
            continue  # a cell that is not whole: its row is lost, the page's others are not


def _payload(pages: Pages, page: bytes, offset: int, kind: int) -> bytes | None:
    size, offset = _varint(page, offset)
    if kind == TABLE_LEAF:
        _, offset = _varint(page, offset)  # the rowid
    usable = pages.usable
    most = usable - 35 if kind == TABLE_LEAF else (usable - 12) * 64 // 255 - 23
    if size <= most:
        return page[offset : offset + size]
    least = (usable - 12) * 32 // 255 - 23
    local = least + (size - least) % (usable - 4)
    local = local if local <= most else least
    parts = [page[offset : offset + local]]
    following = int.from_bytes(page[offset + local : offset + local + 4], "big")
    remaining = size - local
    seen = set()
    while remaining > 0:  # the rest of a large row, on its chain of overflow pages
        overflow = pages.page(following) if following and following not in seen else None
        if overflow is None:
            return None
        seen.add(following)
        parts.append(overflow[4 : 4 + min(remaining, usable - 4)])
        remaining -= usable - 4
        following = int.from_bytes(overflow[:4], "big")
    return b"".join(parts)


def _record(payload: bytes) -> list:
    """The values of a record: its header's serial types, then their bodies."""
    length, offset = _varint(payload, 0)
    types = []
    while offset < length:
        kind, offset = _varint(payload, offset)
        types.append(kind)
    values: list = []
    position = length
    for kind in types:
        width = _width(kind)
        body = payload[position : position + width]
        if len(body) != width:
            raise ValueError("a record cut short")
        position += width
        values.append(_value(kind, body))
    return values


def _width(kind: int) -> int:
    if kind >= 12:
        return (kind - 12) // 2 if kind % 2 == 0 else (kind - 13) // 2
    return (0, 1, 2, 3, 4, 6, 8, 8, 0, 0, 0, 0)[kind]


def _value(kind: int, body: bytes):
    if kind == 0:
        return None
    if kind in (8, 9):
        return kind - 8
    if 1 <= kind <= 6:
        return int.from_bytes(body, "big", signed=True)
    if kind == 7:
        return body  # a float: no column salvage reads is one
    if kind >= 12 and kind % 2 == 0:
        return body
    if kind >= 13:
        return body.decode("utf-8", errors="strict")
    raise ValueError(f"serial type {kind} is reserved")


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    """SQLite's varint at `offset`: the value and the offset after it."""
    value = 0
    for index in range(9):
        byte = data[offset + index]
        if index == 8:
            return (value << 8) | byte, offset + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, offset + index + 1
    raise ValueError("varint")


def repair(directory: str, found: Salvage) -> str:
    """Put the salvaged entries into a new cache.db in place of the damaged one, which is kept beside it
    (with its write-ahead log) under a name of its own: nothing paid for is deleted. The new file is
    made whole in a folder of its own first, so a repair cut short leaves the cache as it was.
    Returns where the damaged file is kept."""
    import diskcache

    database = os.path.join(directory, DATABASE)
    building = os.path.join(directory, f".repair.{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    # Every value in the rows, none in files of the building folder; then diskcache's usual threshold.
    with diskcache.Cache(building, eviction_policy="none", disk_min_file_size=2**62) as new:
        for key, entry in found.entries.items():
            new.set(key, encode_entry(key, entry))
        new.reset("disk_min_file_size", diskcache.DEFAULT_SETTINGS["disk_min_file_size"])
    built = os.path.join(building, DATABASE)
    with open(built, "rb") as f:
        os.fsync(f.fileno())
    aside = f"{database}.damaged-{time.strftime('%Y%m%dT%H%M%S')}"
    try:
        os.link(database, aside)
    except OSError:
        shutil.copy2(database, aside)
    for log in ("-wal", "-shm"):
        if os.path.exists(database + log):
            os.replace(database + log, aside + log)
    os.replace(built, database)
    shutil.rmtree(building)
    return aside
