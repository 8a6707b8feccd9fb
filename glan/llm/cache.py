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
under a key and returns what the cache holds, unless what it holds cannot be read (cut short, a
diskcache row damaged by hand): that is replaced, and the key is kept in `damaged` so the sender can
say so. A cache never keeps what it cannot read, and never loses what was paid for:

- A store that fails for want of room or rights (ENOSPC, EDQUOT, EROFS, SQLite's "database or disk is
  full") raises StoreFailed, which names the path, what is free and what to do, and sets `stopped`:
  the sender sends nothing more once it is set. The reply is first written to a spill file (in the
  cache directory, beside it, or in the temp folder: the first that takes it), and `prepare_cache`
  stores spilled replies into the cache on the next run, before any job.
- A cache directory that is not writable opens read-only: a replay reads it, and `stopped` is set
  from the start, so a build that needs a new reply stops before sending it.
- A cache.db that SQLite cannot read (cut short, a bad page) raises DamagedCache, one line naming
  it: `glan cache verify --repair` (glan.llm.salvage) keeps every entry still readable.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import logging
import os
import re
import shutil
import socket
import sqlite3
import sys
import tempfile
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

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
    """What both layouts implement; `put` keeps the first entry stored under a key and returns what the cache holds.

    `damaged`: keys found holding an unreadable entry since the cache was opened; `stopped`: why no
    reply can be stored now (a store failed, or the cache is read-only), or None."""

    directory: str
    damaged: set[str]
    stopped: StoreFailed | None

    def put(self, key: str, entry: Entry) -> Entry: ...

    def store_spilled(self) -> int: ...

    def keys(self) -> Iterator[str]: ...

    def __contains__(self, key: str) -> bool: ...

    def __len__(self) -> int: ...

    def close(self) -> None: ...

    def __enter__(self) -> ReplyCache: ...

    def __exit__(self, *exc) -> None: ...


LAYOUTS = ("diskcache", "files")
LAYOUT_FILE = "LAYOUT"
DATABASE = "cache.db"  # diskcache's file, in the cache directory


class CacheLayoutError(ValueError):
    """The cache directory cannot be used as it is (its layout, its database, its disk): one line that
    names the path and what to do. rules/common.smk turns it into Snakemake's error at parse time."""


class DamagedCache(CacheLayoutError):
    """SQLite cannot read cache.db: `why`, in SQLite's words or from its header."""

    def __init__(self, database: str, why: str):
        self.why = why
        super().__init__(
            f"{database} is damaged ({why}): run `glan cache verify --repair` (with no build running) to copy "
            "every entry still readable into a new cache.db; the old file is kept beside it"
        )


class StoreFailed(CacheLayoutError):
    """A reply cannot be stored: no request may go out after it, since its reply would be lost."""


def check_database(database: str) -> None:
    """A cache.db shorter than its header says (cut short by a copy, a crash, a full disk) is damaged:
    found here from its first 100 bytes, before SQLite reads a page past its end."""
    try:
        with open(database, "rb") as f:
            header = f.read(100)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        return
    if not header:
        return  # SQLite has made the file and not written it yet: an empty cache
    if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
        raise DamagedCache(database, "not an SQLite database")
    page_size = int.from_bytes(header[16:18], "big")
    pages = int.from_bytes(header[28:32], "big")
    trusted = header[24:28] == header[92:96]  # the page count is valid for this version of the file
    if trusted and size < pages * (65536 if page_size == 1 else page_size):
        raise DamagedCache(database, f"{size:,} bytes where its header says {pages:,} pages of {page_size:,}")


@contextlib.contextmanager
def _named(database: str) -> Iterator[None]:
    """SQLite's "database disk image is malformed" as one line that names the file and the fix."""
    try:
        yield
    except sqlite3.DatabaseError as error:
        if _sqlite_code(error) not in (SQLITE_CORRUPT, SQLITE_NOTADB):
            raise
        raise DamagedCache(database, str(error)) from error


_OUT_OF_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
# SQLite's primary result codes (sqlite3 names them from Python 3.11 on), and their messages for 3.10.
SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 8, 10, 11, 13, 14, 26
_SQLITE_MESSAGES = {
    "attempt to write a readonly database": SQLITE_READONLY,
    "disk I/O error": SQLITE_IOERR,
    "database disk image is malformed": SQLITE_CORRUPT,
    "database or disk is full": SQLITE_FULL,
    "unable to open database file": SQLITE_CANTOPEN,
    "file is not a database": SQLITE_NOTADB,
}
_SQLITE_OUT_OF_ROOM = {SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN}


def _sqlite_code(error: sqlite3.Error) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    return _SQLITE_MESSAGES.get(str(error)) if code is None else code & 0xFF


def out_of_room(error: BaseException) -> str | None:
    """Why a store failed, where the disk (full, over quota, read-only) is the reason; None for other errors."""
    if isinstance(error, OSError) and error.errno in _OUT_OF_ROOM:
        return error.strerror or str(error)
    if isinstance(error, sqlite3.OperationalError) and _sqlite_code(error) in _SQLITE_OUT_OF_ROOM:
        return str(error)
    return None


def free_space(path: str) -> str:
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return "free space unknown"
    return f"{free / 1024:,.0f} KB free" if free < 1024**3 else f"{free / 1024**3:,.1f} GB free"


def writable(directory: str) -> bool:
    return os.access(directory, os.W_OK)


def not_writable(directory: str) -> StoreFailed:
    return StoreFailed(
        f"{os.path.abspath(directory)} is not writable (read-only file system or permissions): a build that only "
        "replays the cache runs, but this one needs new replies and nothing is sent that could not be stored; "
        "make it writable or set cache_dir to a writable folder"
    )


def cannot_store(directory: str, reason: str, keeping: str = "") -> StoreFailed:
    return StoreFailed(
        f"{os.path.abspath(directory)}: a reply could not be stored ({reason}; {free_space(directory)} there): "
        f"no further request is sent{'; ' + keeping if keeping else ''}. Free space there (or set cache_dir to a "
        "folder with room) and run the same command again"
    )


def spill_files(directory: str) -> list[str]:
    """Every spill file of the cache in `directory` (see `_Stores.spill`)."""
    return sorted(
        found for place in _spill_places(directory) for found in glob.glob(_spill_name(place, directory, "*"))
    )


def _spill_places(directory: str) -> list[str]:
    return [directory, os.path.dirname(os.path.abspath(directory)), tempfile.gettempdir()]


def _spill_name(place: str, directory: str, writer: str) -> str:
    digest = hashlib.sha256(os.path.abspath(directory).encode()).hexdigest()[:16]
    return os.path.join(place, f"glan-cache-spill.{digest}.{writer}.jsonl")


_Layout = TypeVar("_Layout", bound="_Stores")


class _Stores:
    """What the layouts share around storing: the failures that stop sending, the spill, the damaged keys.

    Each layout's `_store` stores one entry (or raises what the disk said); `put` guards it."""

    directory: str
    damaged: set[str]
    stopped: StoreFailed | None
    _spill: str | None = None

    def _store(self, key: str, entry: Entry) -> Entry:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Layout) -> _Layout:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def put(self, key: str, entry: Entry) -> Entry:
        """Store `entry` unless the key already has a readable one; returns the entry the cache now holds for `key`."""
        try:
            return self._store(key, entry)
        except (OSError, sqlite3.OperationalError) as error:
            reason = out_of_room(error)
            if reason is None:
                raise
            kept = self.spill(key, entry)
            keeping = (
                f"this reply, and any others in flight, are kept in {kept} and stored on the next run"
                if kept
                else "there is no room anywhere to keep this reply: it is lost"
            )
            self.stopped = cannot_store(self.directory, reason, keeping)
            raise self.stopped from error

    def spill(self, key: str, entry: Entry) -> str | None:
        """Append the entry to this process's spill file, in the first place that takes it; its path, or None.

        Each line starts on a line of its own, so one cut short by the full disk spoils no other."""
        line = b"\n" + encode_entry(key, entry) + b"\n"
        writer = f"{socket.gethostname()}.{os.getpid()}"
        places = [self._spill] if self._spill else []
        places += [_spill_name(place, self.directory, writer) for place in _spill_places(self.directory)]
        for path in places:
            try:
                with open(path, "ab") as f:
                    f.write(line)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError:
                continue
            self._spill = path
            return path
        return None

    def store_spilled(self) -> int:
        """Store the replies of the cache's spill files (kept by a run a full disk stopped), and remove each
        file once all of it is stored. Returns the number of replies read back."""
        stored = 0
        for path in spill_files(self.directory):
            entries = _spilled(path)
            try:
                for key, entry in entries:
                    self._store(key, entry)
            except (OSError, sqlite3.OperationalError) as error:
                reason = out_of_room(error)
                if reason is None:
                    raise
                raise StoreFailed(
                    f"{path}: {len(entries)} paid replies a run kept there could not be stored in {self.directory} "
                    f"yet ({reason}; {free_space(self.directory)} there): free space there and run again (the file "
                    "stays until they are stored)"
                ) from error
            stored += len(entries)
            os.unlink(path)
        return stored


def _spilled(path: str) -> list[tuple[str, Entry]]:
    entries = []
    with open(path, "rb") as f:
        lines = f.read().splitlines()
    for line in lines:
        try:
            key = orjson.loads(line)["key"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue  # an empty line, or one the full disk cut short
        entry = decode_entry(line, key)
        if entry is not None:
            entries.append((key, entry))
    return entries


def say(log: logging.Logger, message: str) -> None:
    """A warning in the run's output and in the job's log."""
    print(message, file=sys.stderr, flush=True)
    log.warning("%s", message)


def say_resent(log: logging.Logger, stage: str, directory: str, keys: list[str]) -> None:
    """The damaged entries a job sent again (once: the new replies replace them)."""
    shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
    say(
        log,
        f"{stage}: {len(keys)} cache entr{'y' if len(keys) == 1 else 'ies'} in {directory} could not be read "
        f"(damaged) and {'was' if len(keys) == 1 else 'were'} sent again; the new replies replace them ({shown})",
    )


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
    chosen = existing or layout
    if chosen == "diskcache":
        check_database(os.path.join(directory, DATABASE))
    if spill_files(os.fspath(directory)):
        with open_cache(directory) as cache:
            cache.store_spilled()
    return chosen


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
                target._write(key, entry, durable=False)
                copied += 1
    os.sync()  # every copied file on disk before the layout says they are there
    _write_layout(directory, "files")
    return copied


def open_cache(directory: str | os.PathLike, layout: str | None = None) -> ReplyCache:
    """The cache in `directory`, in the layout it was made with (a new one: `layout`, else diskcache).

    A diskcache in a directory this process cannot write (or on a full disk) opens read-only."""
    chosen = cache_layout(directory) or layout or "diskcache"
    if chosen == "files":
        return FileReplyCache(directory)
    if os.path.isdir(directory) and not writable(os.fspath(directory)):
        return ReadOnlyDiskCache(directory)
    try:
        return DiskReplyCache(directory)
    except StoreFailed as refusal:  # a full disk: diskcache writes its settings whenever it opens
        return ReadOnlyDiskCache(directory, refusal)


class DiskReplyCache(_Stores):
    def __init__(self, directory: str | os.PathLike):
        import diskcache

        self.directory = os.fspath(directory)
        self.database = os.path.join(self.directory, DATABASE)
        self.damaged: set[str] = set()
        self.stopped: StoreFailed | None = None
        check_database(self.database)
        # diskcache evicts past 1 GiB by default: a build cache must never drop a paid-for reply.
        # No eviction also means no culling scan on every write.
        with _named(self.database):
            try:
                self._cache = diskcache.Cache(self.directory, timeout=60, eviction_policy="none")
            except sqlite3.OperationalError as error:
                reason = out_of_room(error)
                if reason is None:
                    raise
                raise cannot_store(self.directory, reason) from error

    def get(self, key: str) -> Entry | None:
        with _named(self.database):
            raw = self._cache.get(key)
        if raw is None:
            return None
        entry = decode_entry(raw, key)
        if entry is None:
            self.damaged.add(key)
        return entry

    def _store(self, key: str, entry: Entry) -> Entry:
        value = encode_entry(key, entry)
        with _named(self.database):
            if self._cache.add(key, value):
                return entry
            with self._cache.transact():  # no other writer between finding the entry damaged and replacing it
                stored = self.get(key)
                if stored is not None:
                    return stored
                self.damaged.add(key)  # a row whose value is cut short, or whose value file is gone
                self._cache.set(key, value)
        return entry

    def __contains__(self, key: str) -> bool:
        with _named(self.database):
            return key in self._cache

    def keys(self) -> Iterator[str]:
        with _named(self.database):
            yield from self._cache

    def __len__(self) -> int:
        with _named(self.database):
            return len(self._cache)

    def close(self) -> None:
        self._cache.close()


_VALUE = "SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1"


class ReadOnlyDiskCache(_Stores):
    """A diskcache this process cannot write (a read-only mount, another account's folder, a full disk),
    read with SQLite alone: diskcache itself writes its settings whenever it opens. `stopped` from the start."""

    def __init__(self, directory: str | os.PathLike, refusal: StoreFailed | None = None):
        import diskcache

        self.directory = os.fspath(directory)
        self.database = os.path.join(self.directory, DATABASE)
        self.damaged: set[str] = set()
        self.stopped: StoreFailed | None = refusal or not_writable(self.directory)
        check_database(self.database)
        self._disk = diskcache.Disk(self.directory)
        uri = "file:" + urllib.parse.quote(os.path.abspath(self.database))
        if not os.path.exists(self.database):  # a cache never written, where it cannot be: empty
            self._db = sqlite3.connect(":memory:")
            self._db.execute("CREATE TABLE Cache (key, raw, mode, filename, value)")
            return
        with _named(self.database):
            try:  # a WAL database opens read-only only where SQLite may make its -shm file...
                self._db = sqlite3.connect(uri + "?mode=ro", uri=True)
                self._db.execute("SELECT 1 FROM Cache LIMIT 1").fetchall()
            except sqlite3.OperationalError:  # ...or as immutable: nothing can write it meanwhile
                self._db = sqlite3.connect(uri + "?immutable=1", uri=True)

    def get(self, key: str) -> Entry | None:
        with _named(self.database):
            row = self._db.execute(
                "SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1", (key,)
            ).fetchone()
        if row is None:
            return None
        try:
            raw = self._disk.fetch(*row, False)
        except OSError:
            raw = None
        entry = None if raw is None else decode_entry(raw, key)
        if entry is None:
            self.damaged.add(key)
        return entry

    def _store(self, key: str, entry: Entry) -> Entry:
        """Never stores: the sender sends nothing while `stopped` is set; a reply that comes anyway is spilled."""
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def keys(self) -> Iterator[str]:
        with _named(self.database):
            yield from (key for (key,) in self._db.execute("SELECT key FROM Cache WHERE raw = 1 ORDER BY rowid"))

    def __len__(self) -> int:
        with _named(self.database):
            return self._db.execute("SELECT COUNT(*) FROM Cache").fetchone()[0]

    def close(self) -> None:
        self._db.close()


def encode_entry(key: str, entry: Entry) -> bytes:
    return orjson.dumps({"key": key, "reply": entry.reply.to_dict(), "error": entry.error, "via": entry.via})


def decode_entry(raw: bytes, key: str) -> Entry | None:
    """None for bytes that are not a whole entry for `key` (a write cut short, a misplaced file)."""
    try:
        data = orjson.loads(raw)
        if data["key"] != key:
            return None
        return Entry(reply=Reply(**data["reply"]), error=data["error"], via=data.get("via", "online"))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


class FileReplyCache(_Stores):
    def __init__(self, directory: str | os.PathLike):
        self.directory = os.fspath(directory)
        self.objects = os.path.join(self.directory, "objects")
        self.damaged: set[str] = set()
        self.stopped: StoreFailed | None = None
        try:
            os.makedirs(self.objects, exist_ok=True)
        except OSError as error:
            if out_of_room(error) is None:
                raise
        if not writable(self.objects if os.path.isdir(self.objects) else self.directory):
            self.stopped = not_writable(self.directory)
        self._writer = f"{socket.gethostname()}.{os.getpid()}"

    def path(self, key: str) -> str:
        """Where the entry for `key` lives (whether or not it exists yet)."""
        if not _KEY.fullmatch(key):
            raise ValueError(f"a cache key is 1-200 letters, digits, '.', '_' or '-', not {key!r}")
        fan = key if _HEX.fullmatch(key) else hashlib.sha256(key.encode()).hexdigest()
        return os.path.join(self.objects, fan[:2], fan[2:4], key)

    def get(self, key: str) -> Entry | None:
        return self._read(self.path(key), key)

    def _store(self, key: str, entry: Entry) -> Entry:
        return self._write(key, entry, durable=True)

    def _write(self, key: str, entry: Entry, durable: bool) -> Entry:
        """`durable=False` skips the fsync, for bulk copies that sync once at the end."""
        path = self.path(key)
        stored = self._read(path, key)
        if stored is not None:
            return stored
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        temporary = os.path.join(folder, f".{key}.{self._writer}.{uuid.uuid4().hex}.tmp")
        data = encode_entry(key, entry)
        try:
            with open(temporary, "xb") as f:
                f.write(data)
                f.flush()
                if durable:
                    os.fsync(f.fileno())
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

    def _read(self, path: str, key: str) -> Entry | None:
        try:
            with open(path, "rb") as f:
                entry = decode_entry(f.read(), key)
        except FileNotFoundError:
            return None
        if entry is None:
            self.damaged.add(key)
        return entry

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


def _folders(path: str) -> list[str]:
    try:
        with os.scandir(path) as entries:
            return sorted(e.path for e in entries if e.is_dir() and not e.name.startswith("."))
    except FileNotFoundError:
        return []
