"""A cache on a read-only filesystem (a shared copy, a snapshot) serves a build that needs no new reply;
one that does stops before sending anything, in one line naming the folder. Before, even a pure
replay failed with SQLite's raw `attempt to write a readonly database` / `unable to open database file`."""

from __future__ import annotations

import shutil

import pytest
from helpers import read_only, small_filesystem

from glan.llm.cache import Entry, StoreFailed, open_cache, prepare_cache, spill_files
from glan.llm.request import Reply

pytestmark = pytest.mark.dataset_only  # `workflow` builds DATASET: the property ends at the dataset


@pytest.mark.parametrize("layout", ["diskcache", "files"])
def test_a_read_only_cache_reads_and_refuses_to_store_in_one_line(tmp_path, layout):
    with small_filesystem(tmp_path / "cache", "2m") as folder:
        prepare_cache(folder, layout)
        with open_cache(folder) as cache:
            cache.put("k", Entry(Reply(text="paid")))
        read_only(folder)
        with open_cache(folder) as cache:
            assert cache.get("k").reply.text == "paid" and len(cache) == 1 and list(cache.keys()) == ["k"]
            assert isinstance(cache.stopped, StoreFailed)
            assert str(cache.stopped).startswith(f"{folder} is not writable")
            with pytest.raises(StoreFailed):  # a reply that comes anyway is kept in a spill file beside the cache
                cache.put("new", Entry(Reply(text="paid too")))
        assert len(spill_files(str(folder))) == 1


def test_a_replay_from_a_read_only_cache_builds_and_a_build_needing_replies_names_the_folder(workflow):
    with small_filesystem(workflow.path("cache"), "8m") as folder:
        workflow.run()
        expected = workflow.dataset()
        read_only(folder)

        workflow.server.reset()
        shutil.rmtree(workflow.path("results"))
        workflow.run()
        assert workflow.server.count == 0 and workflow.dataset() == expected

        prompt = workflow.path("prompts/answers.yaml")
        prompt.write_text(prompt.read_text().replace("patient teacher", "rigorous teacher"))
        failed = workflow.run(check=False)
        assert failed.returncode != 0
        assert workflow.server.count == 0, "a reply that could not be stored was paid for"
        lines = [line for line in failed.stderr.splitlines() if "is not writable" in line]
        assert lines and all(f"{folder} is not writable" in line for line in lines), failed.stderr
        assert "Traceback" not in failed.stderr and "readonly database" not in failed.stderr


def test_a_read_only_folder_never_written_is_an_empty_cache_that_names_itself(tmp_path):
    with small_filesystem(tmp_path / "cache", "1m") as folder:
        read_only(folder)
        with open_cache(folder) as cache:
            assert cache.get("k") is None and len(cache) == 0
            assert str(cache.stopped).startswith(f"{folder} is not writable")
