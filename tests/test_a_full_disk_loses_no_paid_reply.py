"""A cache on a disk that fills up mid-build: the first reply that cannot be stored stops the sending at
once, the message names the folder, what is free and what to do, and the replies in flight are kept in
a spill file that the next run stores before any job. Before, the build stopped with a raw
`OperationalError: database or disk is full` and lost 16 paid replies (twice the 8 in flight)."""

from __future__ import annotations

import subprocess

import orjson
import pytest
from helpers import FIRST_BUILD_TOTAL, small_filesystem

from glan.llm.cache import Entry, StoreFailed, open_cache, prepare_cache, spill_files
from glan.llm.request import Reply

pytestmark = pytest.mark.dataset_only  # `workflow` builds DATASET: the property ends at the dataset


def spilled(directory) -> int:
    return sum(1 for path in spill_files(str(directory)) for line in open(path, "rb") if line.strip())


def test_a_store_on_a_full_disk_keeps_the_reply_in_a_spill_file_stored_on_the_next_run(tmp_path):
    folder = tmp_path / "cache"
    with small_filesystem(folder, "64k"):
        prepare_cache(folder, "files")
        with open_cache(folder) as cache:
            stored = 0
            try:
                while True:
                    cache.put(f"k{stored}", Entry(Reply(text="x" * 3000)))
                    stored += 1
            except StoreFailed as error:
                message = str(error)
            assert cache.stopped is not None
        assert f"{folder}: a reply could not be stored (No space left on device; " in message
        assert "no further request is sent; this reply, and any others in flight, are kept in" in message
        assert spilled(folder) == 1
        subprocess.run(["mount", "-o", "remount,size=1m", str(folder)], check=True)
        prepare_cache(folder, "files")
        with open_cache(folder) as cache:
            assert len(cache) == stored + 1 and cache.get(f"k{stored}").reply.text == "x" * 3000
        assert not spill_files(str(folder))


def test_a_build_on_a_full_disk_stops_sending_and_the_rerun_pays_for_no_reply_twice(workflow):
    with small_filesystem(workflow.path("cache"), "512k") as folder:
        failed = workflow.run(check=False)
        sent = workflow.server.count
        with open_cache(folder) as cache:
            stored = len(cache)
        kept = spilled(folder)
        assert failed.returncode != 0 and sent < FIRST_BUILD_TOTAL
        lines = {line.strip() for line in failed.stderr.splitlines() if "a reply could not be stored" in line}
        assert lines, failed.stderr
        for line in lines:
            assert f"{folder}: a reply could not be stored (database or disk is full; " in line
            assert "KB free there): no further request is sent" in line and "run the same command again" in line
        assert "Traceback" not in failed.stderr

        subprocess.run(["mount", "-o", "remount,size=16m", str(folder)], check=True)  # space freed
        workflow.server.reset()
        workflow.run()
        resent = workflow.server.count
        print(orjson.dumps({"sent": sent, "stored": stored, "spilled": kept, "rerun_sent": resent}).decode())
        assert stored + kept == sent, "a paid reply was neither stored nor kept"
        assert sent + resent == FIRST_BUILD_TOTAL, "a request was paid for twice"
        assert not spill_files(str(folder))
