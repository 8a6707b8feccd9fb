"""The reply cache under many writers at once: nothing lost, nothing corrupt."""

from __future__ import annotations

import multiprocessing

import pytest

from glan.llm.cache import CacheLayoutError, DiskReplyCache, Entry, FileReplyCache, open_cache, prepare_cache
from glan.llm.request import Reply

PROCESSES = 8
ENTRIES = 2000


def write_and_read(directory: str, worker: int) -> int:
    """Each worker writes its own keys and one shared key, reading back as it goes."""
    with open_cache(directory) as cache:
        for i in range(ENTRIES):
            cache.put(f"{worker}-{i}", Entry(Reply(text=f"reply {worker} {i}", usage={"total_tokens": i})))
            cache.put("shared", Entry(Reply(text="the same for all")))
            if i % 100 == 0:
                assert cache.get(f"{worker}-{i}").reply.text == f"reply {worker} {i}"
    return worker


def test_eight_processes_writing_two_thousand_entries_each_lose_nothing(tmp_path):
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        done = pool.starmap(write_and_read, [(str(tmp_path), w) for w in range(PROCESSES)])
    assert sorted(done) == list(range(PROCESSES))
    with open_cache(tmp_path) as cache:
        assert len(cache) == PROCESSES * ENTRIES + 1
        for worker in range(PROCESSES):
            for i in range(ENTRIES):
                entry = cache.get(f"{worker}-{i}")
                assert entry.valid and entry.reply.text == f"reply {worker} {i}"
                assert entry.reply.usage == {"total_tokens": i}


def test_the_cache_never_evicts_however_large_it_grows(tmp_path):
    """diskcache's default evicts past a size limit (1 GiB); the limit is shrunk here to show none applies."""
    with DiskReplyCache(tmp_path) as cache:
        cache._cache.reset("size_limit", 1)
        for i in range(200):
            cache.put(f"k{i}", Entry(Reply(text="x" * 1000)))
        assert len(cache) == 200 and cache.get("k0").reply.text == "x" * 1000


def test_rejected_replies_are_stored_as_rejected(tmp_path):
    with open_cache(tmp_path) as cache:
        cache.put("k", Entry(Reply(text="", finish_reason="stop"), error="empty reply"))
        entry = cache.get("k")
    assert not entry.valid and entry.error == "empty reply"


def test_a_cache_directory_keeps_the_layout_it_was_made_with(tmp_path):
    prepare_cache(tmp_path / "one", "files")
    prepare_cache(tmp_path / "two", "diskcache")
    with open_cache(tmp_path / "one") as files, open_cache(tmp_path / "two", layout="files") as disk:
        assert isinstance(files, FileReplyCache) and isinstance(disk, DiskReplyCache)
        for cache in (files, disk):
            assert cache.put("ab" * 32, Entry(Reply(text="first"))).reply.text == "first"
            assert cache.put("ab" * 32, Entry(Reply(text="second"))).reply.text == "first"
    assert prepare_cache(tmp_path / "one", "diskcache") == "files", "an existing cache keeps its layout"
    with pytest.raises(CacheLayoutError, match="'sqlite' is unknown"):
        prepare_cache(tmp_path / "three", "sqlite")
