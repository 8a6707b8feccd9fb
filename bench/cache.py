"""Cache: lookups per second through the request key (what a fully cached job does), and bytes on disk per entry."""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from glan.llm.cache import Entry, ReplyCache
from glan.llm.request import Reply, Request


def disk_usage(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=20000)
    args = parser.parse_args()
    answer = "A worked answer of typical length. " * 40  # about 1,400 characters
    requests = [
        Request(
            model="bench",
            messages=[{"role": "system", "content": "You are a teacher."}, {"role": "user", "content": f"Q {i}"}],
            params={"temperature": 0.7, "top_p": 0.95, "max_tokens": 1024, "seed": 0},
        )
        for i in range(args.entries)
    ]
    with tempfile.TemporaryDirectory() as directory:
        with ReplyCache(directory) as cache:
            started = time.perf_counter()
            for request in requests:
                usage = {"prompt_tokens": 20, "completion_tokens": 350, "total_tokens": 370}
                cache.put(request.key("bench"), Entry(Reply(answer, "stop", usage, "bench")))
            writes = time.perf_counter() - started
            started = time.perf_counter()
            hits = sum(cache.get(request.key("bench")) is not None for request in requests)
            reads = time.perf_counter() - started
        size = disk_usage(directory)
    assert hits == args.entries
    print(f"entries: {args.entries} (reply of {len(answer)} characters)")
    print(f"writes: {args.entries / writes:,.0f}/s; hits (key + lookup): {hits / reads:,.0f}/s")
    print(f"on disk: {size / args.entries:,.0f} bytes per entry ({size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
