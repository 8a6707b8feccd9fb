"""Processes a local run starts beside Snakemake (the stage server, the progress line) and that end with it.

Each is `python -m <module>` with the package importable, and holds the read end of a pipe from the
Snakemake process that started it: when that process goes away, however it ends, the pipe closes and
the child stops (`until_stdin_closes`).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

_RUNNING: list[subprocess.Popen] = []  # held open for the life of the run: each child watches its pipe


def spawn(module: str, argument: str, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    package_root = str(Path(__file__).resolve().parents[2])
    python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [sys.executable, "-m", module, argument],
        stdin=subprocess.PIPE,
        pass_fds=pass_fds,
        env={**os.environ, "PYTHONPATH": python_path},
    )
    _RUNNING.append(process)
    return process


async def until_stdin_closes() -> None:
    """Until the Snakemake process that started this one is gone."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()
