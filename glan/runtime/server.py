"""The stage server: one long-lived process that runs every stage job of a local run.

Why: started afresh, a job spends more CPU starting than sending (the openai package alone takes
half a second to import), and each would hold its own client, connections and share of the cap.
The server pays for its start once, keeps one connection pool per endpoint, and holds
llm.concurrency, the per-minute budgets and AIMD on 429 for all jobs at once, exactly. With llm.senders
above 1 it sends from that many processes, which share the cap and the budgets (glan.runtime.senders,
started in its place).

The Snakemake main process starts it (rules/common.smk, `onstart`); each job process hands over
its StageJob (glan.runtime.job.submit) and waits for the verdict. A killed job closes its
connection and the server cancels that job's work; the server exits when the Snakemake process
that started it goes away, since its stdin then closes. On a cluster there is no server: each
job runs its stage itself within its llm_slots.

Protocol: the job sends its StageJob as one JSON line; the server answers one JSON line,
{"error": null} or {"error": "<why>"}, once the job's outputs are written or it has failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from glan.llm.limits import Limiter
from glan.llm.meter import Budget, Meter
from glan.llm.send import Sender
from glan.llm.settings import SendSettings
from glan.logs import close_logger, job_logger
from glan.runtime.children import spawn, until_stdin_closes
from glan.runtime.job import SERVER_ENVIRONMENT, StageJob
from glan.runtime.progress import PROGRESS_DIR, SERVER_PART, report, to_stderr
from glan.runtime.run import run_stage


def settings_of(config: dict) -> dict:
    """What the server holds for the whole run: the cap, the per-minute budgets, the money budget, the prices
    it meters spend with, and where and how often it reports progress."""
    return {
        "concurrency": config["llm"]["concurrency"],
        "senders": config["llm"]["senders"],
        "rate_limits": config["llm"]["rate_limits"],
        "prices": config["prices"],
        "budget": Budget.of_config(config).limits,
        "interval": config["progress"]["interval"],
        "progress_dir": str(PROGRESS_DIR),
    }


def start_for_run(settings: dict) -> str:
    """Start the server for this (the main Snakemake) process, with `settings_of` the run's config; jobs
    find it through the environment.

    The listening socket is made here and handed to the server, so this returns at once and jobs
    may connect while the server is still starting: their connections wait in the socket's backlog.
    """
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    host, port = listener.getsockname()[:2]
    settings = {**settings, "socket": listener.fileno()}
    module = "glan.runtime.senders" if settings["senders"] > 1 else "glan.runtime.server"
    spawn(module, json.dumps(settings), pass_fds=(listener.fileno(),))
    listener.close()  # the server's copy stays open: if the server dies, jobs are refused, not kept waiting
    address = f"{host}:{port}"
    os.environ[SERVER_ENVIRONMENT] = address
    return address


async def serve(settings: dict, listener: socket.socket, until: asyncio.Future) -> None:
    """Serve jobs on `listener` until `until` is done, with the progress line every settings["interval"] s."""
    limiter = Limiter(settings["concurrency"], **{k: v for k, v in settings["rate_limits"].items() if v})
    sender = Sender(limiter, Meter(settings["prices"], Budget(settings["budget"])))
    progress = Path(settings["progress_dir"])
    async with sending(sender, settings["interval"], progress / SERVER_PART, until, to_stderr, progress) as jobs:
        server = await asyncio.start_server(jobs.run, sock=listener)
        try:
            await until
        finally:
            server.close()


class Jobs:
    """The jobs one sending process runs, each from its connection: all cancelled when it stops."""

    def __init__(self, sender: Sender):
        self.sender = sender
        self.running: set[asyncio.Task] = set()

    async def run(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # a connection callback runs as a task
        self.running.add(task)
        try:
            await handle(self.sender, reader, writer)
        finally:
            self.running.discard(task)

    async def cancel(self) -> None:
        for task in list(self.running):
            task.cancel()
        await asyncio.gather(*self.running, return_exceptions=True)


@contextlib.asynccontextmanager
async def sending(
    sender: Sender,
    interval: float,
    part: Path,
    until: asyncio.Future,
    say: Callable[[str], None] | None,
    directory: Path | None,
) -> AsyncIterator[Jobs]:
    """A sending process's jobs on `sender`, with its progress `part` (and the merge of `directory`, said
    with `say`) every `interval` s until `until` is done; its jobs are cancelled and its connections
    closed on the way out."""
    reporting = asyncio.create_task(report(sender.meter, part, interval, until, say, directory))
    jobs = Jobs(sender)
    try:
        yield jobs
    finally:
        await jobs.cancel()
        await sender.aclose()
        await reporting


async def handle(sender: Sender, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Run one job; cancel it if its process goes away first."""
    try:
        job = StageJob.from_json(await reader.readline())
    except (ValueError, TypeError) as error:
        writer.write(json.dumps({"error": f"the stage server could not read the job: {error}"}).encode() + b"\n")
        writer.close()
        return
    work = asyncio.create_task(run_logged(job, sender))
    gone = asyncio.create_task(reader.read())  # the job sends nothing more: EOF means it is gone
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (work, gone):
            task.cancel()
        await asyncio.gather(work, gone, return_exceptions=True)
    if work.cancelled():
        writer.close()
        return
    failure = work.exception()
    verdict = None if failure is None else f"{type(failure).__name__}: {failure}"
    writer.write(json.dumps({"error": verdict}).encode() + b"\n")
    try:
        await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def run_logged(job: StageJob, sender: Sender) -> None:
    log = job_logger(job.log)
    try:
        await run_stage(job, SendSettings.of(job.llm), sender, log)
    except Exception:
        log.exception("%s failed on the stage server", job.stage)
        raise
    finally:
        close_logger(log)


async def _main(settings: dict) -> None:
    import openai  # noqa: F401  (every job here sends through it: load it before the first one arrives)

    listener = socket.socket(fileno=settings["socket"])
    await serve(settings, listener, asyncio.ensure_future(until_stdin_closes()))


if __name__ == "__main__":
    # Ctrl-C reaches the whole process group: the jobs stop, and the server with Snakemake (stdin).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    run_settings = json.loads(sys.argv[1])
    asyncio.run(_main(run_settings))
