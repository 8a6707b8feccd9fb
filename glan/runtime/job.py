"""One stage job as data, and handing it to the run's stage server (glan.runtime.server).

Standard library only: a job process that hands its work over never imports the rest of glan or
the openai package, so it starts in a few tens of milliseconds.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import asdict, dataclass

SERVER_ENVIRONMENT = "GLAN_STAGE_SERVER"


@dataclass(frozen=True)
class StageJob:
    """Everything one stage needs for one node: where to read and write, and its settings."""

    stage: str
    upstream: str
    template: str
    output: str
    rejects: str
    settings: dict
    llm: dict
    cache_dir: str
    log: str | None = None
    counts: str | None = None  # where the job's counts go (glan.llm.meter.Tally), for accounting
    prices: dict | None = None  # for the progress a job that sends in its own process reports
    progress_interval: float | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes) -> StageJob:
        return cls(**json.loads(data))


def served(llm: dict) -> bool:
    """Whether the stage server runs jobs with these llm settings. The embedded model (backend
    `local`) always runs in the job's own process: one model per core."""
    return llm.get("backend") != "local"


class StageFailed(RuntimeError):
    """The stage server ran the job and it failed; the reason is in the job's log too."""


def failure_paragraph(job: StageJob, error: BaseException) -> str:
    """What a person reads in Snakemake's output when a stage job fails: what failed and why, in the
    words of the error (which name the server's message and what to change), and where the details are."""
    reason = str(error) if isinstance(error, StageFailed) else f"{type(error).__name__}: {error}"
    return f"{job.stage} failed for {job.output}:\n  {reason}\n  (details and the traceback: {job.log})"


def submit(job: StageJob) -> bool:
    """Run `job` on the run's stage server and wait for it. False when there is none to run it
    (on a cluster, settings it does not serve, or a server that cannot be reached): the caller
    then runs the job itself.
    """
    address = os.environ.get(SERVER_ENVIRONMENT)
    if not address or not served(job.llm):
        return False
    host, _, port = address.rpartition(":")
    try:
        connection = socket.create_connection((host, int(port)), timeout=10)
    except OSError as error:
        print(f"stage server at {address} unreachable ({error}): running {job.stage} here", file=sys.stderr)
        return False
    with connection:
        connection.settimeout(None)
        connection.sendall(job.to_json() + b"\n")
        verdict = connection.makefile("rb").readline()
    if not verdict:
        raise StageFailed(f"{job.stage}: the stage server went away before {job.output} was written")
    failure = json.loads(verdict).get("error")
    if failure:
        raise StageFailed(failure)
    return True
