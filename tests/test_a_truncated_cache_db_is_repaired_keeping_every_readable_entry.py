"""A cache.db cut short (a copy that stopped, a full disk, a crash of the disk) was unusable: SQLite's
`database disk image is malformed` with diskcache's frames from every command (`glan plan`: 41 lines),
and deleting it pays for everything again. Now every opener says in one line which file is damaged and
to run `glan cache verify --repair`, which puts every entry still readable into a new cache.db and keeps
the old file: a rebuild sends only what was lost with the cut pages."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from glan.llm.cache import DamagedCache, Entry, open_cache, prepare_cache
from glan.llm.request import Reply
from glan.llm.salvage import salvage

pytestmark = pytest.mark.dataset_only  # `workflow` builds DATASET: the property ends at the dataset


def stored_values(database) -> dict[str, bytes]:
    """The bytes of each row's value, as SQLite reads them from the whole file."""
    with sqlite3.connect(database) as db:
        return dict(db.execute("SELECT key, value FROM Cache"))


def cut(database, share: float) -> bytes:
    data = database.read_bytes()
    database.write_bytes(data[: int(len(data) * share)])
    return database.read_bytes()


def test_salvage_reads_every_entry_on_the_pages_left_of_a_cut_cache_db(tmp_path):
    prepare_cache(tmp_path, "diskcache")
    with open_cache(tmp_path) as cache:
        for i in range(300):  # small rows, rows over a page (overflow pages), rows over 32 KB (a file each)
            cache.put(f"k{i}", Entry(Reply(text=f"{i} " + "x" * (10, 3000, 6000, 40000)[i % 4])))
    values = stored_values(tmp_path / "cache.db")
    left = cut(tmp_path / "cache.db", 0.5)
    try:
        open_cache(tmp_path)
        raise AssertionError("a cut cache.db opened")
    except DamagedCache as error:
        assert str(error).startswith(f"{tmp_path}/cache.db is damaged (")
        assert "run `glan cache verify --repair`" in str(error)
    found = salvage(str(tmp_path))
    whole = {key for key, value in values.items() if value is not None and value in left}
    assert whole and whole <= set(found.entries)
    assert all(found.entries[key].reply.text.startswith(f"{key[1:]} ") for key in found.entries)
    assert len(found.entries) < 300


@pytest.mark.built
def test_a_cut_cache_db_is_named_in_one_line_and_the_repair_keeps_every_readable_entry(workflow):
    database = workflow.path("cache/cache.db")
    with open_cache(workflow.path("cache")) as cache:
        before = {key: cache.get(key) for key in cache.keys()}
    values = stored_values(database)
    left = cut(database, 0.6)

    plan = workflow.glan("plan")
    assert plan.returncode == 1 and len(plan.stderr.strip().splitlines()) == 1, plan.stderr
    assert plan.stderr.startswith("glan plan: cache/cache.db is damaged (") and "--repair" in plan.stderr
    workflow.server.reset()
    build = workflow.run(check=False)
    assert build.returncode != 0 and workflow.server.count == 0
    assert "cache/cache.db is damaged (" in build.stderr and "Traceback" not in build.stderr

    report = workflow.glan("cache", "verify")
    assert report.returncode == 1
    assert "entries readable" in report.stdout and "run `glan cache verify --repair`" in report.stdout
    repaired = workflow.glan("cache", "verify", "--repair")
    assert repaired.returncode == 0 and "repaired: " in repaired.stdout, repaired.stdout + repaired.stderr
    assert list(workflow.path("cache").glob("cache.db.damaged-*")), "the damaged file was not kept"

    with open_cache(workflow.path("cache")) as cache:
        after = {key: cache.get(key) for key in cache.keys()}
    whole = {key for key, value in values.items() if value in left}
    assert whole <= set(after) < set(before)
    assert all(after[key] == before[key] for key in after)
    assert workflow.glan("cache", "verify").returncode == 0

    workflow.server.reset()
    shutil.rmtree(workflow.path("results"))
    workflow.run()
    assert workflow.server.count == len(before) - len(after), "a rebuild sent more than was lost"
