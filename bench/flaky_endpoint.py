"""Tiny builds, preflight on, against a loopback endpoint that fails a share of its requests (429, 500, 503,
dropped connections, slow replies), the model list and the first request included: how many complete.

    python bench/flaky_endpoint.py [--builds 10] [--faults 0.3]

Each build starts from an empty directory (no cache), so the preflight probes every time, and draws
its faults from its own seed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from harness import FakeLLM  # first: it puts the tests' folder on the path
from helpers import Workflow

QUICK_RETRIES = {"attempts": 8, "base_delay": 0.05, "max_delay": 1, "max_total": 60}


def build(faults: float, seed: int) -> tuple[bool, float, int, str]:
    with tempfile.TemporaryDirectory() as folder, FakeLLM(faults=faults, seed=seed) as server:
        workflow = Workflow(Path(folder), server)
        workflow.overlay["llm"] |= {"preflight": True, "retry": QUICK_RETRIES}
        started = time.monotonic()
        result = workflow.run(check=False)
        seconds = time.monotonic() - started
        last = (result.stdout + result.stderr).strip().splitlines()[-1:] or [""]
        return result.returncode == 0, seconds, len(server.faults_injected), last[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=10)
    parser.add_argument("--faults", type=float, default=0.3)
    arguments = parser.parse_args()
    completed = 0
    for number in range(arguments.builds):
        ok, seconds, injected, last = build(arguments.faults, seed=number)
        completed += ok
        print(f"build {number + 1}: {'completed' if ok else 'FAILED'} in {seconds:.1f} s, {injected} faults injected")
        if not ok:
            print(f"  {last}", file=sys.stderr)
    print(f"{completed} of {arguments.builds} builds completed against an endpoint failing {arguments.faults:.0%}")


if __name__ == "__main__":
    main()
