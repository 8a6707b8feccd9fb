"""Whole-dataset steps after a one-node edit, against their full time (issues 15 and 27).

A built tree is made without an endpoint: every discipline gets synthetic records of the dataset's
shape (questions of 40 to 80 words, answers of 150 to 350, 1% exact and 1% near duplicates, some
across disciplines) and their replies in the cache, with every upstream artifact present and older.
Then Snakemake runs only what follows the answers: the facts, the dataset, cleaning, accounting,
export, the report and the browser. The full time is that first run; the edit rewrites one
discipline's answers as an edit of its answers prompt would (same questions and ids, new answers),
or with `--edit questions` its questions too, and the second run is timed against it. Per-rule
seconds and peak RSS come from the rules' `benchmark:` files.

    python whole_dataset.py                                  # 100,000 records: 50 disciplines of 2,000
    python whole_dataset.py --disciplines 500                # 1,000,000 records
    python whole_dataset.py --disciplines 10 --records 1000 --edit questions
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import time
from collections import defaultdict
from pathlib import Path

import orjson
import yaml
from harness import Workspace, synthetic_taxonomy

from glan.io import dump_line, write_json
from glan.llm.cache import Entry, open_cache
from glan.llm.request import Reply
from glan.taxonomy import leaves, parse_taxonomy

UPSTREAM = [("subjects", ".json"), ("syllabus", ".json"), ("questions", ".jsonl")]
SUBJECTS = 40  # per discipline: records share their subjects and syllabus replies
DIFFICULTIES = {"single-session": ("easy", "medium"), "two-sessions": ("hard",)}


def vocabulary(size: int = 6000) -> list[str]:
    chance = random.Random(7)
    return ["".join(chance.choices("abcdefghijklmnoprstuvwy", k=chance.randint(2, 10))) for _ in range(size)]


class Records:
    """Synthetic records: text from a fixed vocabulary, keys and usage of the replies behind them."""

    def __init__(self, seed: int):
        self.chance = random.Random(seed)
        self.words = vocabulary()
        self.questions: list[str] = []  # of every discipline so far: duplicates are drawn from them

    def text(self, low: int, high: int) -> str:
        return " ".join(self.chance.choices(self.words, k=self.chance.randint(low, high)))

    def question(self) -> str:
        draw = self.chance.random()
        if self.questions and draw < 0.01:
            return self.chance.choice(self.questions).upper()  # an exact duplicate, once folded
        if self.questions and draw < 0.02:
            words = self.chance.choice(self.questions).split()
            words[self.chance.randrange(len(words))] = self.chance.choice(self.words)
            return " ".join(words)  # a near duplicate
        return self.text(40, 80)

    def node(self, node: str, path: list[str], count: int, version: str, cache) -> list[dict]:
        records, stored = [], set()
        for index in range(count):
            subject = f"Subject {index % SUBJECTS} of {path[-1]}"
            question = self.question()
            self.questions.append(question)
            strategy = self.chance.choice(list(DIFFICULTIES))
            keys = {
                "subjects": f"{node}|subjects",
                "syllabus": f"{node}|syllabus|{index % SUBJECTS}",
                "questions": f"{node}|questions|{index}",
                "answers": f"{node}|answers|{index}|{version}",
            }
            keys = {stage: _hash(key) for stage, key in keys.items()}
            answer = self.text(150, 350)
            for stage, key in keys.items():
                if key not in stored:  # records share their subjects and syllabus replies
                    stored.add(key)
                    self.store(cache, key, len(answer.split()) if stage == "answers" else self.chance.randint(50, 900))
            records.append(
                {
                    "id": keys["questions"],
                    "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
                    "provenance": {
                        "node": node,
                        "path": path,
                        "subject": subject,
                        "level": "undergraduate",
                        "strategy": strategy,
                        "difficulty": self.chance.choice(DIFFICULTIES[strategy]),
                        "sessions": [{"number": 1, "title": "Session one"}],
                        "concepts": ["a concept", "another concept"],
                        "models": dict.fromkeys(keys, "bench"),
                        "keys": keys,
                    },
                }
            )
        return records

    def store(self, cache, key: str, completion: int) -> None:
        usage = {"prompt_tokens": self.chance.randint(90, 1100), "completion_tokens": completion}
        usage["total_tokens"] = usage["prompt_tokens"] + completion
        cache.put(key, Entry(reply=Reply(text="{}", usage=usage)))

    def answered_again(self, records: list[dict], cache) -> list[dict]:
        """The records with new answers to the same questions, as an edit of the answers prompt gives."""
        edited = []
        for record in records:
            answer = self.text(150, 350)
            key = _hash(f"{record['provenance']['keys']['answers']}|edited")
            self.store(cache, key, len(answer.split()))
            provenance = {**record["provenance"], "keys": {**record["provenance"]["keys"], "answers": key}}
            messages = [record["messages"][0], {"role": "assistant", "content": answer}]
            edited.append({**record, "messages": messages, "provenance": provenance})
        return edited


def _hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def write_built_tree(workspace: Workspace, taxonomy: dict, per_node: int) -> list[tuple[str, list[str]]]:
    """Every discipline's artifacts up to its answers, each stage newer than the one before."""
    workspace.snakemake("-n", "--cores", "1")  # writes the node files
    nodes = [(leaf.id, list(leaf.path)) for leaf in leaves(parse_taxonomy(yaml.safe_dump(taxonomy)))]
    root = workspace.dir
    for stage, suffix in UPSTREAM:
        for node, path in nodes:
            made = syllabus(path) if stage == "syllabus" else {}
            (root / "results/nodes" / node / f"{stage}{suffix}").write_text("" if suffix == ".jsonl" else f"{made}\n")
            (root / "results/nodes" / node / f"{stage}.rejects.jsonl").write_text("")
        time.sleep(0.02)
    records = Records(seed=1)
    with open_cache(root / "cache") as cache:
        for node, path in nodes:
            write_answers(workspace, node, records.node(node, path, per_node, "v1", cache))
            log = root / "logs" / node
            log.mkdir(parents=True, exist_ok=True)
            for stage in ("subjects", "syllabus", "questions", "answers"):
                (log / f"{stage}.log").write_text(f"{stage}: planned=1 cached=0 sent=1\n")
                (log / f"{stage}.counts.json").write_text(f'{{"stage": "{stage}", "planned": 1, "sent": 1}}\n')
    return nodes


def syllabus(path: list[str]) -> str:
    """The discipline's subjects and sessions, as its records name them (the browser reads them)."""
    session = {
        "title": "Session one",
        "description": "The first class.",
        "key_concepts": ["a concept", "another concept"],
    }
    subjects = [
        {
            "name": f"Subject {n} of {path[-1]}",
            "level": "undergraduate",
            "subtopics": ["a subtopic"],
            "sessions": [session],
        }
        for n in range(SUBJECTS)
    ]
    return orjson.dumps({"subjects": subjects}).decode()


def write_answers(workspace: Workspace, node: str, records: list[dict]) -> None:
    folder = workspace.dir / "results/nodes" / node
    (folder / "answers.jsonl").write_bytes(b"".join(map(dump_line, records)))
    (folder / "answers.rejects.jsonl").write_text("")


WHOLE = {"benchmarks", "clean", "report", "browse"}  # folders of the whole-dataset rules' benchmark and log files
PEAK = re.compile(rb"peak RSS (\d+) MiB")


def rule_name(path: Path, root: Path) -> str:
    """A benchmark or log file's rule, with "(per node)" for a discipline's."""
    name = "browse" if path.stem == "index" else "browser" if path.stem == "browser" else path.stem
    whole = path.parent == root or path.parent.name in WHOLE and path.parent.parent == root
    return name if whole else f"{name} (per node)"


def rule_costs(workspace: Workspace, since: float) -> dict[str, tuple[float, float]]:
    """Seconds per rule, summed over the jobs that ran since `since` (their benchmark files), and the largest
    peak RSS of one of them in MiB (the VmHWM each job logs)."""
    seconds: dict[str, float] = defaultdict(float)
    peaks: dict[str, float] = defaultdict(float)
    benchmarks, logs = workspace.dir / "benchmarks", workspace.dir / "logs"
    for tsv in benchmarks.glob("**/*.tsv"):
        if tsv.stat().st_mtime >= since:
            with tsv.open() as handle:
                seconds[rule_name(tsv, benchmarks)] += float(next(csv.DictReader(handle, delimiter="\t"))["s"])
    for log in logs.glob("**/*.log"):
        if log.stat().st_mtime >= since and (found := PEAK.findall(log.read_bytes())):
            peaks[rule_name(log, logs)] = max(peaks[rule_name(log, logs)], float(found[-1]))
    return {rule: (seconds[rule], peaks.get(rule, 0.0)) for rule in sorted(seconds)}


def timed_run(workspace: Workspace) -> tuple[float, dict[str, tuple[float, float]], str]:
    started = time.time()
    plan = workspace.snakemake("-n", "--cores", "2", "--rerun-triggers", "mtime")[1]
    assert "rule answers:" not in plan and "rule subjects:" not in plan, plan[-3000:]
    wall, _ = workspace.snakemake("--cores", "2", "--rerun-triggers", "mtime")
    export_log = (workspace.dir / "logs/export.log").read_text().splitlines()
    shards = next((line.split("export: ")[1] for line in reversed(export_log) if "export: " in line), "")
    return wall, rule_costs(workspace, started), shards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--disciplines", type=int, default=50)
    parser.add_argument("--records", type=int, default=2000, help="records per discipline")
    parser.add_argument("--edit", choices=("answers", "questions"), default="answers", help="what the edit changes")
    parser.add_argument("--keep", action="store_true", help="keep the built tree and print where it is")
    args = parser.parse_args()
    taxonomy = synthetic_taxonomy(args.disciplines)
    overlay = {"select": [], "llm": {"backend": "openai", "model": "bench", "endpoint": "bench"}}
    workspace = Workspace(taxonomy, overlay)
    try:
        started = time.time()
        nodes = write_built_tree(workspace, taxonomy, args.records)
        made = time.time() - started
        full, full_rules, full_shards = timed_run(workspace)
        edited, path = nodes[len(nodes) // 2]
        with open_cache(workspace.dir / "cache") as cache:
            if args.edit == "questions":
                records = Records(seed=2).node(edited, path, args.records, "v2", cache)
            else:
                answers = workspace.dir / "results/nodes" / edited / "answers.jsonl"
                records = Records(seed=2).answered_again(
                    list(map(orjson.loads, answers.read_bytes().splitlines())), cache
                )
        time.sleep(0.02)
        write_answers(workspace, edited, records)
        edit, edit_rules, edit_shards = timed_run(workspace)
        write_json(workspace.dir / "bench-result.json", {"full": full_rules, "edit": edit_rules})
    finally:
        if args.keep:
            print(f"built tree kept in {workspace.dir}")
        else:
            workspace.cleanup()
    total = args.disciplines * args.records
    print(f"{total:,} records in {args.disciplines} disciplines (made in {made:.0f} s); one's {args.edit} edited")
    print(f"{'rule':<22}{'full (s)':>10}{'peak RSS (MiB)':>15}{'after the edit (s)':>20}{'peak RSS (MiB)':>15}")
    for rule in sorted(set(full_rules) | set(edit_rules)):
        (a, ra), (b, rb) = full_rules.get(rule, (0, 0)), edit_rules.get(rule, (0, 0))
        print(f"{rule:<22}{a:>10.2f}{ra:>15.0f}{b:>20.2f}{rb:>15.0f}")
    print(f"export: full {full_shards}; after the edit {edit_shards}")
    print(f"snakemake, command to end: full {full:.1f} s, after the edit {edit:.1f} s = {edit / full:.1%} (target 10%)")
    print(f"full time per million records: {full / total * 1e6:.0f} s")


if __name__ == "__main__":
    main()
