"""A cache entry damaged on disk (a diskcache row cut short, a file cut short) is sent again once, said
so in the run's output, and replaced: the next build reads the new one. Before, diskcache's `add` kept
the unreadable row and every rebuild paid for that request again, silently."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from glan.llm.cache import DATABASE, Entry, FileReplyCache, open_cache, prepare_cache
from glan.llm.request import Reply

pytestmark = pytest.mark.dataset_only  # `workflow` builds DATASET: the property ends at the dataset


def cut_one_row_short(cache_dir) -> str:
    """As a careless hand (or a bad disk) would: one row's value cut to 30 bytes. Returns its key."""
    with sqlite3.connect(cache_dir / DATABASE) as db:
        (key,) = db.execute("SELECT key FROM Cache ORDER BY rowid LIMIT 1").fetchone()
        db.execute("UPDATE Cache SET value = substr(value, 1, 30) WHERE key = ?", (key,))
    return key


def cut_one_file_short(cache: FileReplyCache, key: str) -> None:
    path = cache.path(key)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:30])


@pytest.mark.parametrize("layout", ["diskcache", "files"])
def test_a_put_over_an_unreadable_entry_replaces_it_in_either_layout(tmp_path, layout):
    prepare_cache(tmp_path, layout)
    with open_cache(tmp_path) as cache:
        cache.put("k1", Entry(Reply(text="paid once")))
        cache.put("k2", Entry(Reply(text="untouched")))
    if layout == "diskcache":
        key = cut_one_row_short(tmp_path)
    else:
        key = "k1"
        cut_one_file_short(FileReplyCache(tmp_path), key)

    with open_cache(tmp_path) as cache:
        assert cache.get(key) is None and cache.damaged == {key}
        assert cache.put(key, Entry(Reply(text="paid again"))).reply.text == "paid again"
    with open_cache(tmp_path) as cache:
        assert cache.get(key).reply.text == "paid again" and not cache.damaged
        other = "k2" if key == "k1" else "k1"
        assert cache.get(other) is not None


@pytest.mark.built
def test_a_rebuild_sends_a_damaged_entry_once_says_so_and_the_next_sends_nothing(workflow):
    key = cut_one_row_short(workflow.path("cache"))
    report = workflow.glan("cache", "verify")
    assert report.returncode == 1 and "cache/cache.db: 65 entries readable, 1 damaged" in report.stdout
    assert f"  damaged: {key}\n" in report.stdout and "a build starts by sending: subjects 1 " in report.stdout

    workflow.server.reset()
    shutil.rmtree(workflow.path("results"))
    rebuild = workflow.run()
    assert workflow.server.count == 1
    warnings = [line for line in rebuild.stderr.splitlines() if "could not be read (damaged)" in line]
    assert len(warnings) == 1, rebuild.stderr
    assert "1 cache entry in cache could not be read (damaged) and was sent again" in warnings[0]
    assert key in warnings[0] and warnings[0].split(":")[0] in ("subjects", "syllabus", "questions", "answers")

    workflow.server.reset()
    shutil.rmtree(workflow.path("results"))
    again = workflow.run()
    assert workflow.server.count == 0
    assert "could not be read (damaged)" not in again.stderr
