"""An edit costs what its requests cost: edit one flat stage's prompt, rebuild, and compare with a bare
client sending the very same requests to the same endpoint in the same run (issue 15).

Scenario: two disciplines of the `glan` shape (bench/harness.py: 200 subjects, 12 questions a
subject), 200 ms a reply, cap 64. The first build is not timed. Then prompts/answers.yaml is edited,
and the rebuild re-sends every answer request (4,800), nothing else. Timed from the `snakemake`
command: its first request, results/dataset.jsonl, and its end. Then a bare asyncio `openai` client
sends the bodies the rebuild sent, under the same cap. Printed: both ratios, to the dataset and to the
end, against the bare client's first-to-last time.

The endpoint runs in its own process (bench/endpoint.py). That it is not the bottleneck is shown by
flooding it with the same bodies over plain keep-alive HTTP connections at 4x the cap: it must serve
well above the rate the scenario needs (cap / latency).

`--startup N`: the time from the `snakemake` command to the first request of a fresh build of an
N-discipline taxonomy, beside `snakemake -n` on the same tree (target: within 0.5 s of it at 250).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from endpoint import Endpoint
from harness import Workspace, synthetic_taxonomy, workload
from overhead import bare_client

EDIT = " Say first which key idea the question tests."


async def flood(base_url: str, bodies: list[dict], connections: int) -> float:
    """Requests per second the endpoint serves to plain HTTP/1.1 keep-alive connections."""
    address = urlsplit(base_url)
    path = f"{address.path}/chat/completions"
    queue = list(reversed([json.dumps(body).encode() for body in bodies]))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        while queue:
            body = queue.pop()
            head = f"POST {path} HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: application/json\r\n"
            writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return len(bodies) / (time.perf_counter() - started)


def edit_and_rebuild(args) -> None:
    endpoint = Endpoint(args.latency)
    workspace = Workspace(synthetic_taxonomy(args.disciplines), workload(args.cap, "glan"), endpoint.base_url)
    try:
        workspace.snakemake("--cores", str(args.cores))
        prompt = workspace.dir / "prompts/answers.yaml"
        system, rest = prompt.read_text().split("\n", 1)
        prompt.write_text(system + EDIT + "\n" + rest)
        endpoint.command("reset")
        started = time.time()
        wall, _ = workspace.snakemake("--cores", str(args.cores))
        dataset = (workspace.dir / "results/dataset.jsonl").stat().st_mtime - started
        with tempfile.TemporaryDirectory() as scratch:
            sent = endpoint.dump(Path(scratch) / "requests.json")
        bodies = sent["requests"]
        bare = asyncio.run(bare_client(endpoint.base_url, bodies, args.cap))
        capacity = asyncio.run(flood(endpoint.base_url, bodies, 4 * args.cap))
    finally:
        workspace.cleanup()
        endpoint.close()
    needed = args.cap / args.latency
    print(f"edit of prompts/answers.yaml, {args.disciplines} disciplines: the rebuild sent {len(bodies)} requests")
    print(f"  latency {args.latency * 1000:.0f} ms, cap {args.cap}, --cores {args.cores}")
    print(f"  endpoint alone: {capacity:,.0f} req/s at {4 * args.cap} connections; the scenario needs {needed:,.0f}")
    print(f"  bare openai client: {bare:.1f} s first to last")
    print(f"  build: first request {sent['first'] - started:.2f} s after the command")
    print(f"  build: results/dataset.jsonl at {dataset:.1f} s = {dataset / bare:.2f}x the bare client (target 1.1x)")
    print(f"  build: end at {wall:.1f} s = {wall / bare:.2f}x the bare client (target 1.25x)")


def startup(args) -> None:
    endpoint = Endpoint(0.0)
    workspace = Workspace(synthetic_taxonomy(args.startup), workload(args.cap, "small"), endpoint.base_url)
    try:
        started = time.time()
        command = ["snakemake", "--configfile", "bench.yaml", "--cores", str(args.cores)]
        process = subprocess.Popen(
            command, cwd=workspace.dir, env=workspace.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        with tempfile.TemporaryDirectory() as scratch:
            while (first := endpoint.dump(Path(scratch) / "requests.json")["first"]) is None:
                assert process.poll() is None, "snakemake ended before sending a request"
                time.sleep(0.05)
        process.terminate()
        process.wait(timeout=60)
    finally:
        workspace.cleanup()
        endpoint.close()
    took = first - started
    dry = Workspace(synthetic_taxonomy(args.startup), workload(args.cap, "small"), "http://127.0.0.1:9/v1")
    try:  # the same tree, fresh, planned only: what Snakemake itself takes before any job could start
        started = time.time()
        subprocess.run(
            ["snakemake", "-n", "--configfile", "bench.yaml", "--cores", str(args.cores)],
            cwd=dry.dir,
            env=dry.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        planned = time.time() - started
    finally:
        dry.cleanup()
    print(
        f"fresh build of {args.startup} disciplines: first request {took:.2f} s after the command, "
        f"snakemake -n {planned:.2f} s: {took - planned:+.2f} s (target +0.5 s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--disciplines", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--cap", type=int, default=64)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--startup", type=int, metavar="N", help="time to the first request of N disciplines instead")
    args = parser.parse_args()
    (startup if args.startup else edit_and_rebuild)(args)


if __name__ == "__main__":
    main()
