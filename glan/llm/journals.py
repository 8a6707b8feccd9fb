"""The record of every batch under `<cache_dir>/batches/`, shared by every process that sends into the cache.

Several processes send into one cache: the stage server's senders (llm.senders > 1), the jobs of a
cluster run, a second build started by hand. Each has its own Batcher, and each must see the others'
batches, or the same lines are uploaded and billed twice. So a file is cut under the folder's lock
(`.lock`), after reading the journals written since the last look (`Journals.scan`): a key another
process has journalled already is waited for, not put into a new file. And one process at a time sees
a batch through, the one that holds its journal's lock (`<name>.lock`, `Journals.own`): the others
wait for that lock, then read the journal again; closed, their replies are in the cache. A process
that dies lets go of its locks (the kernel releases them), so another takes over where it stopped.
The locks are `flock`s: local disks and NFSv4 honour them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

import orjson

from glan.io import read_json, write_json
from glan.llm.request import CHARS_PER_TOKEN

# Of an input line, to keep under llm.batch.max_enqueued_tokens (ASCII JSON: a byte a character; JSON and roles
# make it err high).
BYTES_PER_TOKEN = CHARS_PER_TOKEN


@dataclass
class Journal:
    """One input file's record."""

    path: Path
    sha256: str
    keys: list[str]
    model: str = ""  # journals written before it was recorded have none
    endpoint: str = ""  # the backend's identity (no secret in it); journals written before it was recorded have none
    file_id: str | None = None
    creating: bool = False
    batch_id: str | None = None
    done: bool = False
    state: str = "gathered"
    reason: str = ""  # why it closed before its batch's replies were all read
    tokens: int = 0  # about the input file's tokens (journals written before it was recorded have 0)
    refused: dict[str, str] = field(default_factory=dict)  # key -> why the provider refused its line for good

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def input(self) -> Path:
        return self.path.with_suffix(".jsonl")

    @property
    def lock(self) -> Path:
        return self.path.with_suffix(".lock")

    def save(self) -> None:
        write_json(self.path, {f.name: getattr(self, f.name) for f in fields(self) if f.name != "path"})

    @classmethod
    def load(cls, path: Path) -> Journal:
        return cls(path=path, **read_json(path))

    def reload(self) -> None:
        """What another process wrote of it since."""
        for name, value in read_json(self.path).items():
            setattr(self, name, value)

    def bodies(self) -> dict[str, dict]:
        lines = (orjson.loads(line) for line in self.input.read_bytes().splitlines() if line.strip())
        return {line["custom_id"]: line["body"] for line in lines}

    def input_tokens(self) -> int:
        if self.tokens:
            return self.tokens
        try:
            return self.input.stat().st_size // BYTES_PER_TOKEN
        except FileNotFoundError:
            return 0


def open_journals(folder: Path) -> Iterator[Journal]:
    """The journals whose batch is not done: their keys are paid for, or may be."""
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        journal = Journal.load(path)
        if not journal.done:
            yield journal


class Journals:
    """The open journals of every process, each read again only when its file changes. A closed one is let go
    (it never opens again), so at 10M requests memory holds the keys of open batches only."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.open: dict[str, Journal] = {}  # name -> journal
        self.marks: dict[str, tuple[int, int, int] | None] = {}  # name -> (inode, mtime_ns, size) read; None: closed
        self.owned: set[str] = set()  # names whose lock this process holds: what it has in memory is the newest

    def add(self, journal: Journal) -> None:
        """One this process has just written."""
        self.open[journal.name] = journal
        self._mark(journal.path)

    def scan(self) -> list[Journal]:
        """The open journals new or changed since the last scan (one already known is reloaded in place)."""
        changed = []
        for path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            name = path.stem
            mark = self.marks.get(name, ())
            if mark is None or mark == self._mark(path) or name in self.owned:
                continue
            known = self.open.get(name)
            try:
                if known is None:
                    known = Journal.load(path)
                else:
                    known.reload()
            except FileNotFoundError:
                continue
            if known.done:
                self.closed(known)
            else:
                self.open[name] = known
            changed.append(known)
        return changed

    def closed(self, journal: Journal) -> None:
        self.open.pop(journal.name, None)
        self.marks[journal.name] = None

    def tokens(self, model: str, but: Callable[[str], bool]) -> int:
        """About the tokens enqueued at the provider for `model` by the batches other processes see through now,
        but those `but(name)` counts otherwise (this process's own). A batch nobody sees through may have ended
        long ago: counted, it could hold every new file for good (the provider's refusal says when it has not)."""
        return sum(
            j.input_tokens()
            for j in self.open.values()
            if j.model == model and j.batch_id and not but(j.name) and held(j.lock)
        )

    @contextlib.contextmanager
    def cutting(self) -> Iterator[None]:
        """The folder's lock, held while a file is cut and journalled: short, so taken blocking."""
        self.folder.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    async def own(self, journal: Journal, every: float, waiting: Callable[[], None]) -> int:
        """Hold the journal's lock (a descriptor for let_go), looking every `every` seconds while another
        process holds it (`waiting()` is called once then); the journal is then read again, as that one left it."""
        descriptor = os.open(journal.lock, os.O_RDWR | os.O_CREAT, 0o666)
        said = False
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not said:
                    said = True
                    waiting()
                try:
                    await asyncio.sleep(every)
                except BaseException:
                    os.close(descriptor)
                    raise
        self.owned.add(journal.name)
        with contextlib.suppress(FileNotFoundError):
            journal.reload()
        return descriptor

    def let_go(self, journal: Journal, descriptor: int) -> None:
        self.owned.discard(journal.name)
        os.close(descriptor)

    def _mark(self, path: Path) -> tuple[int, int, int] | tuple[()]:
        """A journal is replaced whole when written (a new inode), so a changed one has a new mark."""
        try:
            stat = path.stat()
        except FileNotFoundError:
            return ()
        mark = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        self.marks[path.stem] = mark
        return mark


def held(lock: Path) -> bool:
    """Whether a process holds this lock now."""
    try:
        descriptor = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
