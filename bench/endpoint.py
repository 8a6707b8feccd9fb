"""The loopback endpoint in a process of its own, so that what a benchmark measures is not slowed by
sharing an interpreter (and its GIL) with the endpoint.

    python endpoint.py LATENCY      prints its base URL, then takes commands on stdin, one a line:
      reset                         forget the requests received
      dump PATH                     write {"first": <time of the first request since reset>, "requests": [...]}
Closing stdin stops it. `Endpoint` drives it from a benchmark.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness import FakeLLM


def serve(latency: float) -> None:
    first: list[float] = []

    with FakeLLM(latency=latency) as server:

        def watch() -> None:  # the time the first request arrives, to 1 ms
            while True:
                if server.count and not first:
                    first.append(time.time())
                time.sleep(0.001)

        threading.Thread(target=watch, daemon=True).start()
        print(server.base_url, flush=True)
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "reset":
                server.reset()
                first.clear()
            elif command == "dump":
                Path(argument).write_text(
                    json.dumps({"first": first[0] if first else None, "requests": server.requests})
                )
            print("ok", flush=True)


class Endpoint:
    def __init__(self, latency: float):
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()

    def command(self, text: str) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "ok"

    def dump(self, path: Path) -> dict:
        self.command(f"dump {path}")
        return json.loads(path.read_text())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


if __name__ == "__main__":
    serve(float(sys.argv[1]))
