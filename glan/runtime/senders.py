"""The stage server in several sender processes (llm.senders > 1), for an endpoint that answers faster
than one event loop can send.

Why: one process tops out at a few hundred requests a second, most of it the client's CPU. Here the
server's first process only dispatches: it accepts each job's connection and passes it (the socket
itself, over a Unix socket) to the sender process with the fewest jobs open, which runs the job as the
one-process server would (glan.runtime.server.handle). The senders share one cap (glan.llm.shared):
llm.concurrency, AIMD on 429 and the per-minute budgets hold for all of them together, exactly. Each
sender keeps its own Meter and writes its own progress part; the dispatcher publishes their merge and
says the progress line. A job's requests all go from the process that runs it.

The senders are forked before any event loop or thread exists. Each stops when its socket to the
dispatcher closes: when the dispatcher's stdin closes (the run is over), or it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
from pathlib import Path

from glan.llm.meter import Budget
from glan.llm.send import Sender
from glan.llm.shared import FORK, SharedLimiter, SharedMeter
from glan.runtime.children import until_stdin_closes
from glan.runtime.progress import publish_every, sender_part, to_stderr
from glan.runtime.server import sending

DONE = b"d"  # a sender to the dispatcher: one of its jobs has ended
GONE = 1 << 62  # the open jobs of a sender that has died: it is never the one with the fewest


def serve_from_processes(settings: dict, listener: socket.socket) -> None:
    """Start settings["senders"] sender processes sharing the cap, and dispatch jobs to them until stdin closes."""
    limiter = SharedLimiter(
        settings["senders"], settings["concurrency"], **{k: v for k, v in settings["rate_limits"].items() if v}
    )
    meter = SharedMeter(settings["prices"], Budget(settings["budget"]))
    channels = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(settings["senders"])]
    processes = []
    for index, (_, theirs) in enumerate(channels):
        process = FORK.Process(
            target=_sender,
            args=(settings, limiter, meter, index, theirs, [ours for ours, _ in channels], listener),
        )
        process.start()
        processes.append(process)
    for _, theirs in channels:
        theirs.close()
    asyncio.run(_dispatch(settings, listener, [ours for ours, _ in channels], processes))


async def _dispatch(settings: dict, listener: socket.socket, channels: list[socket.socket], processes: list) -> None:
    loop = asyncio.get_running_loop()
    open_jobs = [0] * len(channels)

    def ended(index: int) -> None:
        message = channels[index].recv(4096)
        if message:
            open_jobs[index] -= len(message)
        else:  # the sender is gone: it gets no more jobs
            loop.remove_reader(channels[index])
            open_jobs[index] = GONE

    for index, channel in enumerate(channels):
        loop.add_reader(channel, ended, index)
    senders_done = loop.create_future()
    publishing = asyncio.create_task(
        publish_every(settings["interval"], senders_done, to_stderr, Path(settings["progress_dir"]))
    )
    listener.setblocking(False)
    stdin_closed = asyncio.ensure_future(until_stdin_closes())
    while not stdin_closed.done():
        accepted = asyncio.ensure_future(loop.sock_accept(listener))
        await asyncio.wait({accepted, stdin_closed}, return_when=asyncio.FIRST_COMPLETED)
        if not accepted.done():
            accepted.cancel()
            break
        connection, _ = accepted.result()
        index = open_jobs.index(min(open_jobs))
        try:
            socket.send_fds(channels[index], [b"j"], [connection.fileno()])
            open_jobs[index] += 1
        except OSError:  # that sender is gone: the job hears so when its connection closes
            open_jobs[index] = GONE
        connection.close()
    listener.close()
    for channel in channels:
        loop.remove_reader(channel)
        channel.close()
    for process in processes:
        await asyncio.to_thread(process.join)
    senders_done.set_result(None)
    await publishing


def _sender(
    settings: dict,
    limiter: SharedLimiter,
    meter: SharedMeter,
    index: int,
    channel: socket.socket,
    dispatchers: list[socket.socket],
    listener: socket.socket,
) -> None:
    """A sender process: what it inherited of the dispatcher's sockets closed, so that each closes for good
    when the dispatcher closes it."""
    for inherited in (*dispatchers, listener):
        inherited.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_send(settings, limiter, meter, index, channel))


async def _send(settings: dict, limiter: SharedLimiter, meter: SharedMeter, index: int, channel: socket.socket) -> None:
    import openai  # noqa: F401  (every job here sends through it: load it before the first one arrives)

    loop = asyncio.get_running_loop()
    limiter.join(index)
    sender = Sender(limiter, meter)
    until = loop.create_future()
    part = Path(settings["progress_dir"]) / sender_part(index)
    async with sending(sender, settings["interval"], part, until, None, None) as jobs:

        async def run(descriptor: int) -> None:
            connection = socket.socket(fileno=descriptor)
            connection.setblocking(False)
            try:
                reader, writer = await asyncio.open_connection(sock=connection)
                await jobs.run(reader, writer)
            finally:
                with contextlib.suppress(OSError):  # the dispatcher has stopped counting
                    channel.send(DONE)

        def received() -> None:
            message, descriptors, _, _ = socket.recv_fds(channel, 16, 16)
            for descriptor in descriptors:
                loop.create_task(run(descriptor))
            if not message and not until.done():
                loop.remove_reader(channel)
                until.set_result(None)

        loop.add_reader(channel, received)
        await until
    channel.close()


if __name__ == "__main__":
    # As the one-process server (glan.runtime.server): Ctrl-C stops the jobs, and the server with Snakemake.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    run_settings = json.loads(sys.argv[1])
    serve_from_processes(run_settings, socket.socket(fileno=run_settings["socket"]))
