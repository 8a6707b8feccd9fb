"""Overhead: at zero latency, the build's requests per second against a bare asyncio openai client.

The bare client sends the very request bodies the build sent (same messages, same JSON schemas,
same sampling), to the same loopback server with the same cap, so the server's work is the same
and the ratio says how much the build's machinery (Snakemake, jobs, cache, validation) costs.
The build is timed up to results/dataset.jsonl (every request sent, every record joined) and
as a whole (with cleaning, export and plots, which send nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import time

import openai
from harness import FakeLLM, Workspace, synthetic_taxonomy, workload


async def bare_client(base_url: str, bodies: list[dict], cap: int) -> float:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
    slots = asyncio.Semaphore(cap)

    async def one(body: dict) -> None:
        async with slots:
            await client.chat.completions.create(**body)

    started = time.perf_counter()
    await asyncio.gather(*(one(body) for body in bodies))
    elapsed = time.perf_counter() - started
    await client.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--disciplines", type=int, default=8)
    parser.add_argument("--cap", type=int, default=64)
    parser.add_argument("--cores", type=int, default=8)
    args = parser.parse_args()
    overlay = workload(args.cap)
    with FakeLLM() as server:
        workspace = Workspace(synthetic_taxonomy(args.disciplines), overlay, server.base_url)
        try:
            dataset, build = workspace.build(args.cores)
        finally:
            workspace.cleanup()
        bodies = list(server.requests)
        bare = asyncio.run(bare_client(server.base_url, bodies, args.cap))
    count = len(bodies)
    print(f"requests: {count}, cap {args.cap}, zero latency")
    print(f"bare client: {bare:.1f} s ({count / bare:.0f} req/s)")
    rate = count / dataset
    print(
        f"build to results/dataset.jsonl: {dataset:.1f} s ({rate:.0f} req/s), {dataset / bare:.2f}x the bare client's"
    )
    print(f"whole build (with cleaning, export, plots): {build:.1f} s, {build / bare:.2f}x")


if __name__ == "__main__":
    main()
