"""The dataset browser: `results/browse/index.html`, opened from disk, with no server and no network.

The page is static (index.html, browse.js, browse.css beside this module). What it shows is data in
script files it loads with `<script src>` (a page opened from disk may load scripts, not fetch files):
`data/index.js`, the taxonomy tree with each node's counts, cost and tokens; per discipline a folder
`data/nodes/<id>/`, loaded when the discipline is opened: `node.js`, its subjects and syllabi, and one
`subject-<n>.js` per subject with its records, loaded when the subject is opened (at config/glan.yaml's
scale a discipline has about 79,000 records, a subject about 530); and per discipline `data/removed/<id>.js`,
why each of its removed records was removed, loaded with the discipline. Each discipline's folder is made
from that discipline's artifacts alone, so an edit of one discipline rewrites one folder; the removed
files come from the whole dataset's cleaning, as dedup compares across disciplines. Answers are rendered
from Markdown here, with raw HTML escaped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import orjson
from markdown_it import MarkdownIt

from glan.io import copy_atomic, read_json, read_jsonl, write_bytes_atomic
from glan.stages import STAGES

PAGE = Path(__file__).parent
PAGE_FILES = ("index.html", "browse.js", "browse.css")
MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


def script(call: str, value) -> bytes:
    """A data file the page loads: one call of its loader with the value (JSON is valid JavaScript)."""
    return f"glanBrowse.{call}(".encode() + orjson.dumps(value).replace(b"</", b"<\\/") + b");\n"


def record_view(record: dict) -> dict:
    """A record as the page shows it, its answer rendered."""
    provenance = record["provenance"]
    question, answer = (m["content"] for m in record["messages"][:2])
    return {
        "id": record["id"],
        "sessions": [s["number"] for s in provenance["sessions"]],
        "strategy": provenance["strategy"],
        "difficulty": provenance["difficulty"],
        "concepts": provenance["concepts"],
        "question": question,
        "answer_html": MARKDOWN.render(answer),  # the page searches its text: the answer is stored once
        "judge": provenance.get("judge"),
    }


def write_node(node_dir: Path, records_file: str, folder: Path) -> None:
    """A discipline's folder: its syllabi (`node.js`) and each subject's records (`subject-<n>.js`)."""
    node = read_json(node_dir / "node.json")
    subjects = read_json(node_dir / STAGES["syllabus"].output)["subjects"]
    number = {subject["name"]: n for n, subject in enumerate(subjects)}
    records: list[list[dict]] = [[] for _ in subjects]
    for record in read_jsonl(node_dir / records_file):
        records[number[record["provenance"]["subject"]]].append(record_view(record))
    folder.mkdir(parents=True, exist_ok=True)
    for n, found in enumerate(records):
        write_bytes_atomic(
            folder / f"subject-{n}.js", script("subject", {"node": node["id"], "subject": n, "records": found})
        )
    described = {
        "id": node["id"],
        "name": node["name"],
        "path": node["path"],
        "description": node.get("description", ""),
        "subjects": [
            {key: s[key] for key in ("name", "level", "subtopics", "sessions")} | {"records": len(records[n])}
            for n, s in enumerate(subjects)
        ],
    }
    write_bytes_atomic(folder / "node.js", script("node", described))


def removed_by_node(removals: Iterable[Path]) -> dict[str, dict[str, dict]]:
    """Each discipline's removed records, by record id, with the reason (the cleaning steps' entries)."""
    removed: dict[str, dict[str, dict]] = defaultdict(dict)
    for path in removals:
        for entry in read_jsonl(path):
            removed[entry["node"]][entry["id"]] = entry
    return removed


def index(node_dirs: Iterable[Path], removed: dict[str, dict[str, dict]], accounting: Path) -> dict:
    """The tree (field, sub-field, discipline) with each discipline's counts, cost and tokens."""
    by_node = read_json(accounting)["by_node"]
    nodes = {}
    for node_dir in node_dirs:
        node = read_json(node_dir / "node.json")
        subjects = read_json(node_dir / STAGES["syllabus"].output)["subjects"]
        records = sum(1 for _ in read_jsonl(node_dir / STAGES["questions"].output))
        usage = by_node.get(node["id"], {})
        removed_here = len(removed.get(node["id"], {}))
        nodes[node["id"]] = {
            "name": node["name"],
            "path": node["path"],
            "subjects": len(subjects),
            "sessions": sum(len(s["sessions"]) for s in subjects),
            "questions": records,
            "removed": removed_here,
            "kept": records - removed_here,
            "cost": usage.get("cost", 0.0),
            "prompt_tokens": usage.get("prompt_tokens", 0),
            "completion_tokens": usage.get("completion_tokens", 0),
        }
    return {"nodes": nodes}


def write_page(node_dirs: Iterable[Path], removals: Iterable[Path], accounting: Path, folder: Path) -> None:
    node_dirs = list(node_dirs)
    removed = removed_by_node(removals)
    summary = index(node_dirs, removed, accounting)
    (folder / "data/removed").mkdir(parents=True, exist_ok=True)
    for node in summary["nodes"]:
        write_bytes_atomic(
            folder / f"data/removed/{node}.js", script("removed", {"node": node, "removed": removed.get(node, {})})
        )
    write_bytes_atomic(folder / "data/index.js", script("index", summary))
    for name in PAGE_FILES:
        copy_atomic(PAGE / name, folder / name)
