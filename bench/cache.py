"""Cache: lookups per second through the request key (what a fully cached job does), and bytes on disk per entry."""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from glan.llm.cache import LAYOUTS, Entry, open_cache
from glan.llm.request import Reply, Request


def disk_usage(path: str) -> tuple[int, int]:
    """Bytes in files, and bytes the filesystem allocated for them (blocks)."""
    stats = [os.stat(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files]
    return sum(s.st_size for s in stats), sum(s.st_blocks * 512 for s in stats)


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
    print(f"entries: {args.entries} (reply of {len(answer)} characters)")
    for layout in LAYOUTS:
        measure(layout, requests, answer)


def measure(layout: str, requests: list[Request], answer: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        with open_cache(directory, layout) as cache:
            started = time.perf_counter()
            for request in requests:
                usage = {"prompt_tokens": 20, "completion_tokens": 350, "total_tokens": 370}
                cache.put(request.key("bench"), Entry(Reply(answer, "stop", usage, "bench")))
            writes = time.perf_counter() - started
            started = time.perf_counter()
            hits = sum(cache.get(request.key("bench")) is not None for request in requests)
            reads = time.perf_counter() - started
        size, blocks = disk_usage(directory)
    assert hits == len(requests)
    print(
        f"{layout:>9}: writes {len(requests) / writes:,.0f}/s; hits (key + lookup) {hits / reads:,.0f}/s; "
        f"on disk {size / len(requests):,.0f} bytes per entry ({blocks / len(requests):,.0f} allocated)"
    )


if __name__ == "__main__":
    main()
