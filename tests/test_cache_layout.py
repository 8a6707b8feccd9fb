"""The cache layout that makes one cache safe for many hosts: one file per key, written once, read without locks."""

from __future__ import annotations

import multiprocessing
import os

from glan.llm.cache import DiskReplyCache, Entry, FileReplyCache, cache_layout, open_cache, prepare_cache
from glan.llm.request import Reply

KEY = "ab" * 32  # request keys are sha256 hex digests


def test_an_entry_is_one_file_under_its_key_and_nothing_else_is_written(tmp_path):
    with FileReplyCache(tmp_path) as cache:
        cache.put(KEY, Entry(Reply(text="hello")))
        assert KEY in cache and len(cache) == 1
    files = [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [f"objects/ab/ab/{KEY}"], "no index, lock, journal or temp file may be left"


def test_the_first_reply_stored_under_a_key_wins_and_never_changes(tmp_path):
    with FileReplyCache(tmp_path) as one, FileReplyCache(tmp_path) as other:
        assert one.put(KEY, Entry(Reply(text="first"))).reply.text == "first"
        assert other.put(KEY, Entry(Reply(text="second"))).reply.text == "first"
        assert other.get(KEY).reply.text == "first"


def test_a_file_cut_short_by_a_crash_reads_as_a_miss_and_is_replaced(tmp_path):
    with FileReplyCache(tmp_path) as cache:
        path = cache.path(KEY)
        os.makedirs(os.path.dirname(path))
        with open(path, "wb") as f:
            f.write(b'{"key": "' + KEY.encode() + b'", "reply": {"te')
        assert cache.get(KEY) is None and KEY not in cache
        assert cache.put(KEY, Entry(Reply(text="whole"))).reply.text == "whole"
        assert cache.get(KEY).reply.text == "whole"


def test_a_file_under_the_wrong_name_is_not_taken_for_the_entry(tmp_path):
    with FileReplyCache(tmp_path) as cache:
        cache.put(KEY, Entry(Reply(text="mine")))
        other = "cd" * 32
        os.makedirs(os.path.dirname(cache.path(other)))
        os.link(cache.path(KEY), cache.path(other))
        assert cache.get(other) is None


def _write_big(directory: str, count: int) -> None:
    with FileReplyCache(directory) as cache:
        for i in range(count):
            cache.put(f"{i:064x}", Entry(Reply(text=f"{i} " + "x" * 200_000)))


def test_a_reader_never_sees_part_of_an_entry_while_another_process_writes(tmp_path):
    count = 200
    writer = multiprocessing.get_context("spawn").Process(target=_write_big, args=(str(tmp_path), count))
    writer.start()
    seen = set()
    with FileReplyCache(tmp_path) as cache:
        while writer.is_alive() or len(seen) < count:
            for i in range(count):
                entry = cache.get(f"{i:064x}")
                if entry is not None:
                    assert entry.reply.text == f"{i} " + "x" * 200_000
                    seen.add(i)
            if not writer.is_alive() and len(seen) < count:
                break
    writer.join()
    assert writer.exitcode == 0 and len(seen) == count


def test_a_local_cache_run_on_a_cluster_is_converted_to_files_before_any_job(tmp_path):
    """SQLite must not be shared across hosts: a diskcache asked for as `files` is copied over first."""
    keys = [f"{i:064x}" for i in range(50)]
    assert prepare_cache(tmp_path, "diskcache") == "diskcache"
    with DiskReplyCache(tmp_path) as local:
        for key in keys:
            local.put(key, Entry(Reply(text=f"reply {key}"), error="empty reply" if key == keys[0] else None))

    assert prepare_cache(tmp_path, "files") == "files"
    assert cache_layout(tmp_path) == "files"
    with open_cache(tmp_path, "diskcache") as cache:
        assert isinstance(cache, FileReplyCache) and len(cache) == len(keys)
        assert all(cache.get(key).reply.text == f"reply {key}" for key in keys)
        assert cache.get(keys[0]).error == "empty reply"
    assert prepare_cache(tmp_path, "diskcache") == "files", "a converted cache stays in files"
