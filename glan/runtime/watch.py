"""The progress line of a local run that has no stage server: every stage on the embedded model.

A served run's stage server prints the line. Without one, each job sends in its own process and
writes its part of logs/progress/ (glan.runtime.progress), but nothing merged the parts, so a quick
start ran for minutes in silence. This process publishes their merge every `progress.interval`
seconds and prints its line as the server does, until the Snakemake process that started it goes away.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from glan.runtime.children import spawn, until_stdin_closes
from glan.runtime.progress import publish_every, to_stderr


def start_for_run(interval: float) -> None:
    spawn("glan.runtime.watch", str(interval))


async def _main(interval: float) -> None:
    await publish_every(interval, asyncio.ensure_future(until_stdin_closes()), to_stderr)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops Snakemake, and this line with it (stdin)
    asyncio.run(_main(float(sys.argv[1])))
