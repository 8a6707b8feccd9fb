"""Overhead: at zero latency, the build's requests per second against a bare asyncio openai client.

Both send the same number of requests to the same loopback server with the same cap; the ratio
bare / build says how much slower the build's machinery (Snakemake, jobs, cache, validation) is.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import openai
from harness import Workspace, synthetic_taxonomy, workload

from glan.fake_server import FakeLLM


async def bare_client(base_url: str, requests: int, cap: int) -> float:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
    slots = asyncio.Semaphore(cap)

    async def one(i: int) -> None:
        async with slots:
            await client.chat.completions.create(
                model="bench", messages=[{"role": "user", "content": f"question {i}"}], seed=i
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(requests)))
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
            build, _ = workspace.snakemake("--cores", str(args.cores))
        finally:
            workspace.cleanup()
        requests = server.count
        bare = asyncio.run(bare_client(server.base_url, requests, args.cap))
    print(f"requests: {requests}, cap {args.cap}, zero latency")
    print(
        f"build: {build:.1f} s ({requests / build:.0f} req/s); bare client: {bare:.1f} s ({requests / bare:.0f} req/s)"
    )
    print(f"overhead: build takes {build / bare:.2f}x the bare client's time")


if __name__ == "__main__":
    main()
