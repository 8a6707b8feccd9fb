"""The stage server: one long-lived process that runs every stage job of a local run.

Why: started afresh, a job spends more CPU starting than sending (the openai package alone takes
half a second to import), and each would hold its own client, connections and share of the cap.
The server pays for its start once, keeps one connection pool per endpoint, and holds
llm.concurrency, the per-minute budgets and AIMD on 429 for all jobs at once, exactly.

The Snakemake main process starts it (rules/common.smk, `onstart`); each job process hands over
its StageJob (glan.stages.job.submit) and waits for the verdict. A killed job closes its
connection and the server cancels that job's work; the server exits when the Snakemake process
that started it goes away, since its stdin then closes. On a cluster there is no server: each
job runs its stage itself within its llm_slots.

Protocol: the job sends its StageJob as one JSON line; the server answers one JSON line,
{"error": null} or {"error": "<why>"}, once the job's outputs are written or it has failed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from glan.llm.limits import Limiter
from glan.llm.send import Sender
from glan.stages.job import SERVER_ENVIRONMENT, StageJob
from glan.stages.run import close_logger, job_logger, run_stage

_RUNNING: list[subprocess.Popen] = []  # held open for the life of the run: the server watches this pipe


def start_for_run(capacity: int, rate_limits: dict) -> str:
    """Start the server for this (the main Snakemake) process; jobs find it through the environment."""
    package_root = str(Path(__file__).resolve().parents[2])
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "glan.stages.server", json.dumps({"capacity": capacity, "rate_limits": rate_limits})],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=environment,
    )
    address = process.stdout.readline().decode().strip()
    if not address:
        raise RuntimeError(f"the stage server did not start (exit status {process.wait()})")
    _RUNNING.append(process)
    os.environ[SERVER_ENVIRONMENT] = address
    return address


async def serve(capacity: int, rate_limits: dict, until: asyncio.Future, host: str = "127.0.0.1") -> None:
    """Serve jobs until `until` is done; print the address once listening."""
    sender = Sender(Limiter(capacity, **{k: v for k, v in rate_limits.items() if v}))
    jobs: set[asyncio.Task] = set()

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        jobs.add(asyncio.current_task())
        try:
            await handle(sender, reader, writer)
        finally:
            jobs.discard(asyncio.current_task())

    server = await asyncio.start_server(connected, host, 0)
    host, port = server.sockets[0].getsockname()[:2]
    address = f"{host}:{port}"
    print(address, flush=True)
    try:
        await until
    finally:
        server.close()
        for task in list(jobs):
            task.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        await sender.aclose()


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
    error = work.exception()
    writer.write(json.dumps({"error": None if error is None else f"{type(error).__name__}: {error}"}).encode() + b"\n")
    try:
        await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def run_logged(job: StageJob, sender: Sender) -> None:
    log = job_logger(job.log)
    try:
        await run_stage(job, sender, log)
    except Exception:
        log.exception("%s failed on the stage server", job.stage)
        raise
    finally:
        close_logger(log)


async def _until_stdin_closes() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()


async def _main(settings: dict) -> None:
    await serve(settings["capacity"], settings["rate_limits"], asyncio.ensure_future(_until_stdin_closes()))


if __name__ == "__main__":
    asyncio.run(_main(json.loads(sys.argv[1])))
