"""Several processes send into one cache in batch mode (the stage server's llm.senders > 1, a cluster's jobs,
two builds at once): each line is billed once, one process creates each batch, and the enqueued-token
limit counts the batches of every process. Real processes, each with its own Sender, against the
loopback server; the server counts what a provider would bill."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson
from fake_llm import FakeLLM
from helpers import DEFAULTS, ROOT

from glan.cli import main
from glan.cli.batch import NO_ENDPOINT
from glan.llm.backends.openai_compat import chat_body
from glan.llm.batch import input_line
from glan.llm.journals import BYTES_PER_TOKEN
from glan.llm.request import Request

# A process of its own: send the requests in argv in batch mode, print how many came back valid.
SEND = """
import asyncio, sys
import orjson
from glan.llm.limits import job_share
from glan.llm.request import Request
from glan.llm.send import Sender
from glan.llm.settings import SendSettings

settings, cache, asked = SendSettings.of(orjson.loads(sys.argv[1])), sys.argv[2], orjson.loads(sys.argv[3])

async def main():
    sender = Sender(job_share(settings))
    try:
        outcomes, _ = await sender.send([Request(model="fake-model", messages=m) for m in asked], settings, cache)
    finally:
        await sender.aclose()
    print(sum(o.valid for o in outcomes))

asyncio.run(main())
"""


def messages(start: int, stop: int) -> list[list[dict]]:
    return [[{"role": "user", "content": f"question {i}"}] for i in range(start, stop)]


def settings(**batch) -> dict:
    llm = DEFAULTS["llm"]
    return {**llm, "backend": "openai", "model": "fake-model", "endpoint": "fake", "mode": "batch"} | {
        "batch": {**llm["batch"], "gather_seconds": 0.1, "poll_seconds": 0.05, **batch}
    }


def start(server: FakeLLM, cache: Path, asked: list[list[dict]], **batch) -> subprocess.Popen:
    env = {"PATH": "/usr/bin:/bin", "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-test"}
    env |= {"PYTHONPATH": ":".join(sys.path)}
    argv = [sys.executable, "-c", SEND, orjson.dumps(settings(**batch)).decode(), str(cache), orjson.dumps(asked)]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def valid_replies(*processes: subprocess.Popen) -> list[int]:
    done = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        done.append(int(out.split()[-1]))
    return done


def test_two_processes_asking_the_same_requests_create_one_batch_and_pay_each_line_once(tmp_path):
    asked = messages(0, 10)
    with FakeLLM(batch_seconds=0.5) as server:
        assert valid_replies(*(start(server, tmp_path / "cache", asked) for _ in range(2))) == [10, 10]
        assert len(server.batches_created) == 1
        assert server.lines_billed == 10 and max(server.billed_per_key.values()) == 1


def test_a_journal_a_crash_left_without_its_batch_is_created_once_by_two_processes(tmp_path):
    asked = messages(0, 10)
    with FakeLLM(batch_seconds=0.5, batch_api_faults={"create": ["400"]}) as server:
        [first] = [start(server, tmp_path / "cache", asked)]
        first.communicate(timeout=120)
        assert first.returncode != 0 and not server.batches_created  # uploaded, never created
        [journal] = (tmp_path / "cache" / "batches").glob("*.json")
        assert orjson.loads(journal.read_bytes())["file_id"]
        assert valid_replies(*(start(server, tmp_path / "cache", asked) for _ in range(2))) == [10, 10]
        assert len(server.batches_created) == 1 and server.files_uploaded == 1
        assert server.lines_billed == 10 and max(server.billed_per_key.values()) == 1


def test_the_enqueued_token_limit_counts_the_batches_another_process_sees_through(tmp_path):
    line = input_line("k" * 64, chat_body(Request(model="fake-model", messages=messages(0, 1)[0])))
    limit = 5 * len(line) // BYTES_PER_TOKEN  # room for about one process's file of 4, not for two
    with FakeLLM(batch_seconds=4.0) as server:  # far longer than a process takes to start
        first = start(server, tmp_path / "cache", messages(0, 4), max_enqueued_tokens=limit)
        while not server.batches_created:
            time.sleep(0.01)
        second = start(server, tmp_path / "cache", messages(4, 8), max_enqueued_tokens=limit)
        assert valid_replies(first, second) == [4, 4]
        batches = sorted((server._batches[id] for id in server.batches_created), key=lambda b: b.created)
        assert len(batches) == 2
        assert batches[1].created >= batches[0].at(1.0), "the second process's file went out while the first filled"
        assert server.lines_billed == 8


def test_batch_status_of_a_config_without_an_openai_stage_says_so_and_what_to_pass(tmp_path, capsys):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    assert main(["batch", "status", "-d", str(tmp_path)]) == 0  # the default config: the embedded model
    assert capsys.readouterr().out.strip() == NO_ENDPOINT
    assert main(["batch", "cancel", "--all", "-d", str(tmp_path)]) == 1
