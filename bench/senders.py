"""Past one core (issue 15): the zero-latency requests/s of a rebuild with 1 and 2 sender processes
(llm.senders), side by side with a bare asyncio openai client on the same endpoint in the same run.

Scenario: `--disciplines` of the `glan` shape (bench/harness.py) are built once (not timed). Then, for
each sender count, prompts/answers.yaml is edited anew and the rebuild re-sends every answer request
(2,400 a discipline, in one job each), nothing else. A rebuild's rate is the run's own figure
(logs/progress.json: replies over the time from the first reply to the last, across the senders); the
time of the `snakemake ... results/dataset.jsonl` command is printed too, and the requests a sender
sends per second of its own CPU (logs/progress/server*.json): what one core gives, whatever else runs.
The bare client then sends the bodies the last rebuild sent, under the same cap. The endpoint
(bench/endpoint.py) runs in its own process; flooded with the same bodies over plain keep-alive
connections at 4x the cap, it shows what it can serve on its own. Everything shares the machine's
cores: the endpoint, Snakemake, the senders, the bare client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

import yaml
from edit import EDIT, flood
from endpoint import Endpoint
from harness import Workspace, synthetic_taxonomy, workload
from overhead import bare_client

DATASET = "results/dataset.jsonl"  # the builds stop there: what follows sends nothing


def rebuild(workspace: Workspace, endpoint: Endpoint, overlay: dict, senders: int, cores: int) -> dict:
    """Edit the answers prompt once more, rebuild with `senders` sender processes; the rebuild's figures."""
    overlay["llm"]["senders"] = senders
    (workspace.dir / "bench.yaml").write_text(yaml.safe_dump(overlay))
    prompt = workspace.dir / "prompts/answers.yaml"
    system, rest = prompt.read_text().split("\n", 1)
    prompt.write_text(system + EDIT + f" ({senders} senders)\n" + rest)
    endpoint.command("reset")
    wall, _ = workspace.snakemake("--cores", str(cores), DATASET)
    progress = json.loads((workspace.dir / "logs/progress.json").read_text())
    parts = [json.loads(path.read_text()) for path in (workspace.dir / "logs/progress").glob("server*.json")]
    return {
        "senders": senders,
        "sent": progress["totals"]["sent"],
        "rate": progress["projected"]["rate"],
        "wall": wall,
        "per_cpu_second": progress["totals"]["sent"] / sum(part["cpu_seconds"] for part in parts),
        "split": [sum(row["sent"] for row in part["tallies"]) for part in parts],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--disciplines", type=int, default=4)
    parser.add_argument("--cap", type=int, default=64)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    endpoint = Endpoint(0.0)
    overlay = workload(args.cap, "glan")
    overlay["llm"].update(preflight=False, senders=2)
    workspace = Workspace(synthetic_taxonomy(args.disciplines), overlay, endpoint.base_url)
    try:
        workspace.snakemake("--cores", str(args.cores), DATASET)
        runs = [rebuild(workspace, endpoint, overlay, senders, args.cores) for senders in (1, 2)]
        with tempfile.TemporaryDirectory() as scratch:
            bodies = endpoint.dump(Path(scratch) / "requests.json")["requests"]
        bare = len(bodies) / asyncio.run(bare_client(endpoint.base_url, bodies, args.cap))
        alone = asyncio.run(flood(endpoint.base_url, bodies, 4 * args.cap))
    finally:
        workspace.cleanup()
        endpoint.close()
    one = runs[0]["rate"]
    print(f"{args.disciplines} disciplines, rebuild after an edit of prompts/answers.yaml: {len(bodies)} requests")
    print(f"  zero latency, cap {args.cap}, --cores {args.cores}")
    print(f"  endpoint alone: {alone:,.0f} req/s at {4 * args.cap} keep-alive connections")
    print(f"  bare openai client: {bare:,.0f} req/s")
    for run in runs:
        print(
            f"  build, {run['senders']} sender(s): {run['rate']:,.0f} req/s = {run['rate'] / one:.2f}x 1 sender, "
            f"{run['rate'] / bare:.2f}x the bare client; {run['per_cpu_second']:,.0f} per CPU second of a sender "
            f"(sent {' + '.join(map(str, run['split']))}); {DATASET} in {run['wall']:.1f} s"
        )


if __name__ == "__main__":
    main()
