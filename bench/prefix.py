"""Prefix caching: per stage, the share of prompt tokens that fall in a prefix already sent, before and
after the templates were laid out for it (issue 17).

Providers discount a prompt prefix they have seen (OpenAI: prompts of 1,024 tokens or more, cached
in 128-token steps; vLLM's automatic prefix caching: in blocks of 16 tokens, at any length). What a
build can do is order its templates so that what many requests share comes first. This measures it
on the requests the stages' own `plan` renders, in the order they plan them, with `config/glan.yaml`'s
counts, for the templates in prompts/ ("after") and the ones of a git revision ("before").

Per request, the cached part is its longest common prefix, in tokens, with any request of the same
stage planned before it (the most a cache that never forgets could give); the share is the sum of
those over the sum of prompt tokens. The columns under "OpenAI" and "vLLM" round each prefix down
as those caches count it (glan/llm/prefix.py, whose OpenAI rule `glan plan` prices).

Tokens: with no tokenizer installed, the text is cut into the pieces of GPT's pre-tokenizer (a word
with its leading space, a run of digits up to 3, a run of punctuation, whitespace), one token each.
Real BPE splits rare words further, so counts are low by some percent, and shares move little.
With `tiktoken` installed and its encodings at hand, `--tokenizer o200k_base` counts exactly.

Upstream artifacts are synthetic, with the shapes the replies have: subjects of 2 to 5 words, each
with `subtopics` subtopics; syllabi of 10 to `sessions` sessions (GLAN: 10-30), titles of 3 to 7
words, `concepts_per_session` key concepts of 1 to 4 words; questions of 30 to 120 words. Every
node's 10 subject queries and all its syllabi are planned; questions and answers for `--subjects`
of its subjects (every question of a subject, so a subject's nested prefixes are all there: other
subjects share only the system text with them).
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from glan.config import load_config, stage_settings
from glan.llm.prefix import OPENAI, VLLM, Seen, cached
from glan.prompts import Template
from glan.stages import GLAN_STAGES, STAGES
from glan.taxonomy import leaves, load_taxonomy, select, spread

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "d460442"  # the last commit with the templates as they were before the reorder
PIECES = re.compile(r"'(?:[sdmt]|ll|ve|re)| ?[A-Za-z]+| ?[0-9]{1,3}| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")
WORDS = (
    "analysis theory model method system process structure function energy field wave signal data "
    "network design law market policy language history culture practice principle equation force "
    "motion heat light matter cell gene species climate soil water trade price risk contract state "
    "rights ethics logic proof number space time measure sample test error control feedback circuit "
    "material stress flow pressure reaction bond acid base protein memory learning behaviour society "
    "power conflict change growth value cost strategy planning quality safety care treatment diagnosis"
).split()


def pieces(text: str) -> list[str]:
    return PIECES.findall(text)


def tokenizer(name: str) -> tuple[Callable[[str], list], str]:
    if name == "pieces":
        return pieces, "GPT pre-tokenizer pieces, one token each (no tokenizer installed)"
    import tiktoken

    encoding = tiktoken.get_encoding(name)
    return encoding.encode_ordinary, f"tiktoken {name}"


def phrase(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize()


def subjects_of(node: dict, config: dict) -> dict:
    """The subjects artifact: every subject the node's queries ask for (none merge)."""
    settings = config["stages"]["subjects"]
    rng = random.Random(f"subjects {node['id']}")
    subjects = [
        {
            "name": f"{phrase(rng, 2, 5)} {n}",
            "level": rng.choice(["undergraduate", "graduate", "high school", "professional"]),
            "subtopics": [phrase(rng, 2, 4) for _ in range(settings["subtopics"])],
            "keys": {"subjects": "k"},
        }
        for n in range(settings["queries"] * settings["per_query"])
    ]
    return {"node": node, "models": {"subjects": "m"}, "subjects": subjects}


def syllabi_of(subjects: dict, config: dict, count: int) -> dict:
    """The syllabus artifact of the first `count` subjects."""
    settings = config["stages"]["syllabus"]
    chosen = []
    for subject in subjects["subjects"][:count]:
        rng = random.Random(f"syllabus {subject['name']}")
        sessions = [
            {
                "title": phrase(rng, 3, 7),
                "description": phrase(rng, 15, 35),
                "key_concepts": [phrase(rng, 1, 4) for _ in range(settings["concepts_per_session"])],
            }
            for _ in range(rng.randint(min(10, settings["sessions"]), settings["sessions"]))
        ]
        chosen.append({**subject, "sessions": sessions, "keys": {**subject["keys"], "syllabus": "k"}})
    return {**subjects, "models": {**subjects["models"], "syllabus": "m"}, "subjects": chosen}


def questions_of(syllabus: dict, planned) -> list[dict]:
    """The questions artifact: one synthetic question for each planned question request."""
    node, records = syllabus["node"], []
    for index, item in enumerate(planned):
        subject, sample = item.context
        rng = random.Random(f"question {subject['name']} {index}")
        records.append(
            {
                "node": node["id"],
                "path": node["path"],
                "subject": subject["name"],
                "level": subject["level"],
                "question": phrase(rng, 30, 120) + "?",
                "keys": {"questions": "k"},
            }
        )
    return records


def requests(node: dict, config: dict, prompts: Path, subjects: int) -> dict[str, list[list[dict]]]:
    """Each stage's rendered messages for one node, in plan order, with the templates in `prompts`."""

    def plan(stage: str, source):
        template = Template(prompts / f"{stage}.yaml")
        work = STAGES[stage].resolve(source, stage_settings(config, stage), template)
        return STAGES[stage].plan(source, work)

    listed = subjects_of(node, config)
    chosen = syllabi_of(listed, config, subjects)
    asked = plan("questions", chosen)
    # The answers are planned from questions of the same text whichever template asked them.
    answers_source = questions_of(chosen, plan("questions", chosen))
    return {
        "subjects": [p.request.messages for p in plan("subjects", node)],
        "syllabus": [p.request.messages for p in plan("syllabus", listed)],
        "questions": [p.request.messages for p in asked],
        "answers": [p.request.messages for p in plan("answers", answers_source)],
    }


def measure(conversations: list[list[dict]], encode: Callable[[str], list]) -> dict:
    seen, total, exact, openai, vllm, longest = Seen(), 0, 0, 0, 0, 0
    for messages in conversations:
        # The chat framing as a role marker before each message; identical across layouts.
        tokens = tuple(t for m in messages for t in (f"<|{m['role']}|>", *encode(m["content"])))
        prefix = seen.add(tokens)
        total += len(tokens)
        longest = max(longest, len(tokens))
        exact += prefix
        openai += cached(prefix, len(tokens), OPENAI)
        vllm += cached(prefix, len(tokens), VLLM)
    return {
        "requests": len(conversations),
        "tokens": total,
        "longest": longest,
        "exact": exact,
        "openai": openai,
        "vllm": vllm,
    }


def before_prompts(revision: str, folder: Path) -> Path:
    for stage in GLAN_STAGES:
        text = subprocess.run(
            ["git", "show", f"{revision}:prompts/{stage}.yaml"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        (folder / f"{stage}.yaml").write_text(text)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--configfile", default="config/glan.yaml", help="overlay with the counts (default: %(default)s)"
    )
    parser.add_argument("--nodes", type=int, default=3, help="disciplines, spread over the fields of the selected ones")
    parser.add_argument(
        "--subjects", type=int, default=10, help="subjects a node whose questions and answers are planned"
    )
    parser.add_argument("--before", default=BEFORE, help="git revision of the templates before (default: %(default)s)")
    parser.add_argument("--tokenizer", default="pieces", help="pieces, or a tiktoken encoding such as o200k_base")
    args = parser.parse_args()
    config = load_config(ROOT, [args.configfile])
    records = {leaf.id: leaf.record() for leaf in leaves(load_taxonomy(ROOT / config["taxonomy"]))}
    nodes = [records[i] for i in spread(select(list(records), config["select"]), args.nodes)]
    encode, how = tokenizer(args.tokenizer)
    counts = {k: config["stages"][s][k] for s, k in (("subjects", "queries"), ("questions", "per_subject"))}
    print(f"config: {args.configfile} ({counts}); nodes: {', '.join(n['id'] for n in nodes)}")
    print(f"questions and answers of {args.subjects} subjects a node; tokens: {how}")
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for layout, prompts in (("before", before_prompts(args.before, Path(folder))), ("after", ROOT / "prompts")):
            planned: dict[str, list] = {stage: [] for stage in GLAN_STAGES}
            for node in nodes:
                for stage, conversations in requests(node, config, prompts, args.subjects).items():
                    planned[stage] += conversations
            results[layout] = {stage: measure(planned[stage], encode) for stage in GLAN_STAGES}
    print()
    print(report(results))


def report(results: dict[str, dict[str, dict]]) -> str:
    """One row a stage: its size with the templates after, then each share before / after."""

    def share(stage: str, key: str) -> str:
        before, after = (results[layout][stage] for layout in ("before", "after"))
        return f"{before[key] / before['tokens']:.1%} / {after[key] / after['tokens']:.1%}"

    rows = [("stage", "requests", "tokens/req", "longest", "any prefix", "vLLM blocks", "OpenAI")]
    for stage, after in results["after"].items():
        size = (f"{after['requests']:,}", f"{after['tokens'] / after['requests']:,.0f}", f"{after['longest']:,}")
        rows.append((stage, *size, share(stage, "exact"), share(stage, "vllm"), share(stage, "openai")))
    return "\n".join(f"{r[0]:<10}" + "".join(f"{cell:>16}" for cell in r[1:]) for r in rows)


if __name__ == "__main__":
    main()
