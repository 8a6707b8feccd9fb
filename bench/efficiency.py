"""Efficiency: a build's wall time against the ideal for its request graph at a given latency and cap.

ideal = sum over stages of (requests in the stage / cap) x latency: the time the endpoint alone
needs if the cap is kept full. Prints the ratio ideal / measured (1.0 = the endpoint is the only
cost) twice: up to results/dataset.jsonl (every request sent, every record joined), and for the
whole build, whose cleaning, export and plots send no request.
"""

from __future__ import annotations

import argparse
import collections

from harness import Workspace, synthetic_taxonomy, workload

from glan.fake_server import FakeLLM


def stage_of(body: dict) -> str:
    schema = (body.get("response_format") or {}).get("json_schema")
    return schema["name"] if schema else "answers"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--disciplines", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--cap", type=int, default=64)
    parser.add_argument("--cores", type=int, default=32, help="jobs at once (they mostly wait on the endpoint)")
    args = parser.parse_args()

    overlay = workload(args.cap)
    with FakeLLM(latency=args.latency) as server:
        workspace = Workspace(synthetic_taxonomy(args.disciplines), overlay, server.base_url)
        try:
            wall, _ = workspace.snakemake("--cores", str(args.cores))
            dataset = workspace.done_after("results/dataset.jsonl")
        finally:
            workspace.cleanup()
        per_stage = collections.Counter(stage_of(body) for body in server.requests)
        peak = server.max_in_flight
    ideal = sum(count / args.cap * args.latency for count in per_stage.values())
    print(f"requests: {sum(per_stage.values())} {dict(per_stage)}")
    print(f"latency {args.latency * 1000:.0f} ms, cap {args.cap}, peak in flight {peak}, ideal {ideal:.1f} s")
    print(f"to results/dataset.jsonl: {dataset:.1f} s, efficiency {ideal / dataset:.2f}")
    print(f"whole build (with cleaning, export, plots): {wall:.1f} s, efficiency {ideal / wall:.2f}")


if __name__ == "__main__":
    main()
