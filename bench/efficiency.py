"""Efficiency: a build's wall time against the ideal for its request graph at a given latency and cap.

ideal = sum over stages of (requests in the stage / cap) x latency: the time the endpoint alone
needs if the cap is kept full. Prints the ratio ideal / measured (1.0 = the endpoint is the only
cost) twice: up to results/dataset.jsonl (every request sent, every record joined), and for the
whole build, whose cleaning, export and plots send no request. By default for two workload shapes
(bench/harness.py WORKLOADS): GLAN's proportions, with thousands of requests a job, and many
small jobs, where each job's fixed cost (a process, Snakemake's bookkeeping) weighs most.
"""

from __future__ import annotations

import argparse
import collections

from harness import WORKLOADS, FakeLLM, Workspace, synthetic_taxonomy, workload

DEFAULT_DISCIPLINES = {"glan": 2, "small": 16}  # 10,020 and 5,504 requests


def stage_of(body: dict) -> str:
    schema = (body.get("response_format") or {}).get("json_schema")
    return schema["name"] if schema else "answers"


def measure(shape: str, disciplines: int, latency: float, cap: int, cores: int) -> None:
    with FakeLLM(latency=latency) as server:
        workspace = Workspace(synthetic_taxonomy(disciplines), workload(cap, shape), server.base_url)
        try:
            dataset, wall = workspace.build(cores)
        finally:
            workspace.cleanup()
        per_stage = collections.Counter(stage_of(body) for body in server.requests)
        peak = server.max_in_flight
    ideal = sum(count / cap * latency for count in per_stage.values())
    print(f"{shape} workload, {disciplines} disciplines: {sum(per_stage.values())} requests {dict(per_stage)}")
    print(f"  latency {latency * 1000:.0f} ms, cap {cap}, peak in flight {peak}, ideal {ideal:.1f} s")
    print(f"  to results/dataset.jsonl: {dataset:.1f} s, efficiency {ideal / dataset:.2f}")
    print(f"  whole build (with cleaning, export, plots): {wall:.1f} s, efficiency {ideal / wall:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shapes", nargs="+", choices=sorted(WORKLOADS), default=["glan", "small"])
    parser.add_argument("--disciplines", type=int, nargs="+", help="per shape; default 2 (glan), 16 (small)")
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--cap", type=int, default=64)
    parser.add_argument("--cores", type=int, default=2, help="as the README runs it (served jobs take no core)")
    args = parser.parse_args()
    sizes = args.disciplines or [DEFAULT_DISCIPLINES[shape] for shape in args.shapes]
    for shape, disciplines in zip(args.shapes, sizes, strict=True):
        measure(shape, disciplines, args.latency, args.cap, args.cores)


if __name__ == "__main__":
    main()
