"""Cleaning the dataset: duplicate questions out, benchmark leaks out, and a file saying what went and why.

Both steps keep records in dataset order and decide record by record in that order, so the result
is a function of the input alone: the first of several duplicates stays, later ones go.

- Exact duplicates: the same question after Unicode NFKC, case folding and whitespace collapsing.
- Near duplicates: MinHash over token shingles with LSH candidates (datasketch); a candidate counts when the
  estimated Jaccard similarity of the shingle sets reaches `near_threshold`. Only kept records are indexed,
  so `duplicate_of` always names a record that is in the output.
- Contamination: word n-grams of every benchmark text the config points to; a record goes when some benchmark
  text has at least `threshold` of its n-grams inside the record's question (or answer, if asked). That is
  "the pair contains the benchmark question", which is what GLAN removed. Texts shorter than `ngram` words
  use their own length as n; texts shorter than `min_words` are skipped as too short to tell a leak from a
  common phrase.
- Grades (with the judge on, before both): a record goes when its overall score or a criterion's score is
  below the configured minimum (`clean.judge`), or, unless `keep_ungraded`, when it has no grade. Deciding
  from the grades in the records, never from the judge, is what makes changing a threshold free.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from glan.io import digest, dump_line, open_atomic

WORDS = re.compile(r"\w+")
TOKENS = re.compile(r"\w+|[^\w\s]")  # operators and punctuation count in near-duplicate questions ("2+3" vs "2-3")


def question(record: dict) -> str:
    return next(m["content"] for m in record["messages"] if m["role"] == "user")


def answer(record: dict) -> str:
    return next(m["content"] for m in record["messages"] if m["role"] == "assistant")


TEXTS = {"question": question, "answer": answer}


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def exact_key(text: str) -> str:
    return " ".join(_fold(text).split())


def words(text: str) -> list[str]:
    return WORDS.findall(_fold(text))


def shingles(text: str, size: int) -> set[str]:
    tokens = TOKENS.findall(_fold(text))
    if len(tokens) <= size:
        return {" ".join(tokens)}
    return {" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)}


def ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def _removed(record: dict, reason: str, **details) -> dict:
    return {
        "id": record["id"],
        "reason": reason,
        **details,
        "node": record["provenance"]["node"],
        "question": question(record),
    }


# ---------------------------------------------------------------------------------------------- deduplication


def deduplicate(records: Iterable[dict], settings: dict) -> Iterator[tuple[dict, dict | None]]:
    """Each record with None if it stays, or the entry naming the kept record it duplicates and how closely.

    Records stream through: of a kept record only the digest of its exact key, its id and, for near
    duplicates, its MinHash signature in the LSH index are kept."""
    exact, near, threshold = settings["exact"], settings["near"], settings["near_threshold"]
    num_perm, size = settings["num_perm"], settings["shingle"]
    if near:
        from datasketch import LeanMinHash, MinHash, MinHashLSH

        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    kept_ids: list[str] = []  # of kept records, in order; positions are the LSH keys
    signatures: list = []  # of kept records, by position
    first: dict[bytes, str] = {}  # exact key digest -> id of the kept record that has it
    for record in records:
        text = question(record)
        key = digest(exact_key(text)) if exact else None
        if key in first:
            yield record, _removed(record, "exact-duplicate", duplicate_of=first[key], similarity=1.0)
            continue
        if near:
            signature = MinHash(num_perm=num_perm, seed=1)
            signature.update_batch([s.encode() for s in sorted(shingles(text, size))])
            scored = [(signature.jaccard(signatures[i]), -i) for i in lsh.query(signature)]
            best = max((s for s in scored if s[0] >= threshold), default=None)
            if best is not None:
                similarity = round(float(best[0]), 4)
                yield record, _removed(record, "near-duplicate", duplicate_of=kept_ids[-best[1]], similarity=similarity)
                continue
            lsh.insert(len(kept_ids), signature)
            signatures.append(LeanMinHash(signature))
            kept_ids.append(record["id"])
        if key is not None:
            first[key] = record["id"]
        yield record, None


# ---------------------------------------------------------------------------------------------- decontamination


class BenchmarkError(ValueError):
    pass


def load_benchmark(path: str | Path, field: str) -> list[str]:
    """The texts of one benchmark: `field` of every row of a JSONL or Parquet file (lists are joined)."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        if field not in schema.names:
            raise BenchmarkError(f"{path}: no column {field!r} (columns: {', '.join(schema.names)})")
        values = pq.read_table(path, columns=[field]).column(field).to_pylist()
    elif path.suffix in (".jsonl", ".json"):
        values = []
        for number, line in enumerate(path.read_bytes().splitlines(), 1):
            if not line.strip():
                continue
            row = orjson.loads(line)
            if not isinstance(row, dict) or field not in row:
                raise BenchmarkError(f"{path}:{number}: no field {field!r}")
            values.append(row[field])
    else:
        raise BenchmarkError(f"{path}: benchmarks are read from .jsonl or .parquet files")
    return [" ".join(map(str, v)) if isinstance(v, list) else str(v) for v in values if v is not None]


class NgramIndex:
    """Word n-grams of a benchmark's texts, each pointing to the texts it occurs in."""

    def __init__(self, texts: list[str], n: int, min_words: int):
        self.texts = texts
        self.index: dict[tuple[str, ...], list[int]] = {}
        self.sizes: dict[int, int] = {}
        self.lengths: set[int] = set()
        for position, text in enumerate(texts):
            tokens = words(text)
            if len(tokens) < min_words:
                continue
            k = min(n, len(tokens))
            grams = ngrams(tokens, k)
            self.sizes[position] = len(grams)
            self.lengths.add(k)
            for gram in grams:
                self.index.setdefault(gram, []).append(position)

    def best_match(self, text: str) -> tuple[int, float] | None:
        """The benchmark text with the largest share of its n-grams inside `text`, and that share."""
        tokens = words(text)
        shared: Counter = Counter()
        for k in self.lengths:
            for gram in ngrams(tokens, k):
                for position in self.index.get(gram, ()):
                    shared[position] += 1
        if not shared:
            return None
        position, overlap = max(((p, c / self.sizes[p]) for p, c in shared.items()), key=lambda x: (x[1], -x[0]))
        return position, overlap


def benchmark_name(benchmark: dict) -> str:
    return benchmark.get("name") or Path(benchmark["path"]).stem


def decontaminate(records: Iterable[dict], settings: dict) -> tuple[Iterator[tuple[dict, dict | None]], dict]:
    """Each record with None if it stays, or the entry naming the benchmark texts it contains; and the report.

    The benchmarks are read at once, so a bad one fails before any record is; the report counts items and
    removed records per benchmark, complete once the pairs are exhausted."""
    n, threshold = settings["ngram"], settings["threshold"]
    min_words, fields = settings["min_words"], settings["fields"]
    indexes: list[tuple[str, NgramIndex]] = []
    report = {"ngram": n, "threshold": threshold, "min_words": min_words, "fields": fields, "benchmarks": []}
    for benchmark in settings["benchmarks"]:
        if benchmark_name(benchmark) in [name for name, _ in indexes]:
            raise BenchmarkError(f"two benchmarks are named {benchmark_name(benchmark)!r}: give each its own name")
        texts = load_benchmark(benchmark["path"], benchmark["field"])
        index = NgramIndex(texts, n, min_words)
        indexes.append((benchmark_name(benchmark), index))
        report["benchmarks"].append(
            {
                "name": benchmark_name(benchmark),
                "path": benchmark["path"],
                "field": benchmark["field"],
                "texts": len(texts),
                "indexed": len(index.sizes),
                "matched": 0,
                "removed": 0,
            }
        )

    def screen() -> Iterator[tuple[dict, dict | None]]:
        report["records_in"] = report["records_out"] = 0
        for record in records:
            report["records_in"] += 1
            matches, first = [], None
            for number, (name, index) in enumerate(indexes):
                best = None
                for field in fields:
                    found = index.best_match(TEXTS[field](record))
                    if found and found[1] >= threshold and (best is None or found[1] > best["overlap"]):
                        best = {
                            "benchmark": name,
                            "field": field,
                            "item": found[0],
                            "overlap": round(found[1], 4),
                            "text": index.texts[found[0]][:300],
                        }
                if best:
                    report["benchmarks"][number]["matched"] += 1
                    first = number if first is None else first
                    matches.append(best)
            if matches:
                report["benchmarks"][first]["removed"] += 1
                yield record, _removed(record, "contamination", benchmark=matches[0]["benchmark"], matches=matches)
            else:
                report["records_out"] += 1
                yield record, None

    return screen(), report


# ---------------------------------------------------------------------------------------------- judge grades


def _histogram(counter: Counter) -> dict[str, int]:
    """Counts by score, lowest first, with string keys: the form JSON reads back."""
    return {str(score): counter[score] for score in sorted(counter)}


def judge_filter(records: Iterable[dict], settings: dict) -> tuple[Iterator[tuple[dict, dict | None]], dict]:
    """Each record with None if it stays, or the entry with its grade and the minimums it missed; and the
    report: the distribution of the scores of every graded record (overall per field and per difficulty,
    and per criterion) and what was removed, complete once the pairs are exhausted.

    Grades are read from the records (provenance.judge), so the judge is never asked again here."""
    min_score, minimums, keep_ungraded = settings["min_score"], settings["min_criteria"], settings["keep_ungraded"]
    overall: dict[str, dict[str, Counter]] = {"field": {}, "difficulty": {}}
    criteria: dict[str, Counter] = {}
    counts: Counter = Counter()
    report: dict = {"min_score": min_score, "min_criteria": minimums, "keep_ungraded": keep_ungraded}

    def screen() -> Iterator[tuple[dict, dict | None]]:
        for record in records:
            counts["records_in"] += 1
            provenance = record["provenance"]
            grade = provenance.get("judge") or {"graded": False, "reason": "the record has no grade"}
            if not grade["graded"]:
                counts["ungraded"] += 1
                if keep_ungraded:
                    counts["records_out"] += 1
                    yield record, None
                else:
                    counts["removed_ungraded"] += 1
                    yield record, _removed(record, "ungraded", grade=grade)
                continue
            for by, value in (("field", provenance["path"][0]), ("difficulty", provenance["difficulty"])):
                overall[by].setdefault(value, Counter())[grade["overall"]] += 1
            for criterion, score in grade["scores"].items():
                criteria.setdefault(criterion, Counter())[score] += 1
            below = ["overall"] if grade["overall"] < min_score else []
            below += [c for c, least in minimums.items() if grade["scores"][c] < least]
            if below:
                counts["removed_low_score"] += 1
                for name in below:
                    counts[f"below_{name}"] += 1
                yield record, _removed(record, "low-score", below=below, grade=grade)
            else:
                counts["records_out"] += 1
                yield record, None
        report["counts"] = {
            key: counts[key]
            for key in ("records_in", "records_out", "ungraded", "removed_low_score", "removed_ungraded")
        }
        report["below"] = {name: counts[f"below_{name}"] for name in ["overall", *minimums]}
        report["overall"] = {by: {k: _histogram(v) for k, v in sorted(c.items())} for by, c in overall.items()}
        report["criteria"] = {criterion: _histogram(c) for criterion, c in sorted(criteria.items())}

    return screen(), report


def sift(pairs: Iterable[tuple[dict, dict | None]], kept: str | Path, removed: str | Path) -> Counter:
    """Write each record that stays to `kept` and each removal entry to `removed`, as they come; count both.

    The counter has "kept" and one count per removal reason."""
    counts: Counter = Counter()
    with open_atomic(kept) as kept_out, open_atomic(removed) as removed_out:
        for record, removal in pairs:
            if removal is None:
                counts["kept"] += 1
                kept_out.write(dump_line(record))
            else:
                counts[removal["reason"]] += 1
                removed_out.write(dump_line(removal))
    return counts
