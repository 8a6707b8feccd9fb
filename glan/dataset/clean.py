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

What costs per record (folded keys, MinHash signatures, n-gram matches) is computed per discipline into its
facts (glan.dataset.facts); the steps here read those and only decide, in order, and write what they
remove: what stays is the facts less the removal files (glan.dataset.composition).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from glan.dataset.composition import Composition, Part
from glan.io import dump_line, open_atomic

# Per discipline of a file, the records a step removes: their place in the part, and the entry saying why.
Removals = Iterator[tuple[Part, dict[int, dict]]]

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


def minhash(text: str, settings: dict) -> bytes:
    """The question's MinHash signature over its token shingles, as the facts file keeps it."""
    from datasketch import MinHash

    signature = MinHash(num_perm=settings["num_perm"], seed=1)
    signature.update_batch([s.encode() for s in sorted(shingles(text, settings["shingle"]))])
    return signature.hashvalues.astype("<u8").tobytes()


def lsh_shape(settings: dict) -> tuple[int, int]:
    """How many bands of how many rows datasketch's MinHashLSH cuts a signature into for the threshold.
    The facts jobs, which import datasketch anyway, keep it (glan.dataset.facts), so the join need not."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=settings["near_threshold"], num_perm=settings["num_perm"])
    return lsh.b, lsh.r


def _binary_values(column: pa.ChunkedArray, width: int) -> np.ndarray:
    """A column of equal-length byte strings (no nulls) as an array of `width` uint64s a row, without a copy
    per value."""
    array = column.combine_chunks()
    if not len(array):
        return np.zeros((0, width), dtype="<u8")
    if pa.types.is_fixed_size_binary(array.type):
        start = array.offset * width * 8
        return np.frombuffer(array.buffers()[1], dtype="<u8", count=len(array) * width, offset=start).reshape(-1, width)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32, count=len(array) + 1, offset=array.offset * 4)
    values = np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return values.view("<u8").reshape(len(array), width)


def band_keys(signatures: np.ndarray, spans: list[slice]) -> np.ndarray:
    """Each signature's LSH bands, each reduced to 64 bits (the band summed with odd multipliers): what
    `colliding` compares, kept in the facts so that the join reads 8 bytes a band, not the signature."""
    multipliers = np.random.default_rng(0).integers(1, 2**63, size=signatures.shape[1], dtype=np.uint64) | 1
    weighted = signatures * multipliers
    return np.stack([weighted[:, span].sum(axis=1) for span in spans], axis=1).astype("<u8")


def colliding(source: Composition, settings: dict) -> tuple[list[int], set[int]]:
    """Where each discipline's records start in the facts, and the places there of every record whose exact
    key or one of whose LSH bands another record shares. No other record can be a duplicate or have one,
    so only these need the sequential pass.

    Each key is reduced to 64 bits (a band by `band_keys`, an exact digest's first half): a clash of two
    different keys only adds a record here, never leaves one out. Records that earlier steps removed are
    counted too, which also only adds."""
    exact, near = settings["exact"], settings["near"]
    spans = source.bands() if near else []
    keys: list[list[np.ndarray]] = [[] for _ in range(len(spans) + int(exact))]
    starts = [0]
    for node in source.nodes():
        starts.append(starts[-1] + len(node))
        if exact:
            keys[-1].append(_binary_values(node.column("exact"), 2)[:, 0])
        if near:
            bands = _binary_values(node.column("bands"), len(spans))
            for band in range(len(spans)):
                keys[band].append(bands[:, band])
    shared = np.zeros(starts[-1], dtype=bool)
    for column in keys:
        if column:
            _, inverse, counts = np.unique(np.concatenate(column), return_inverse=True, return_counts=True)
            shared |= counts[inverse] > 1
    return starts, set(np.flatnonzero(shared).tolist())


def deduplicate(source: Composition, settings: dict) -> Removals:
    """The records of `source` that duplicate a kept one, per discipline, each with the entry naming the
    kept record and how closely: exact duplicates by their folded question, near ones by MinHash with LSH
    candidates, the first of several staying. Signatures come from the facts; only records that share a
    key or a band with another (`colliding`) are looked at, in order, so the pass is a join, not a
    computation."""
    exact, near, threshold = settings["exact"], settings["near"], settings["near_threshold"]
    starts, shared = colliding(source, settings) if exact or near else ([], set())
    spans = source.bands() if near else []
    first: dict[bytes, str] = {}  # exact key digest -> id of the kept record that has it
    index: dict[tuple[int, bytes], list[int]] = {}  # (band, its bytes) -> kept records that have it
    kept: list[tuple[str, np.ndarray]] = []  # id and signature of the kept records looked at
    for part in source.parts():
        removals: dict[int, dict] = {}
        first_place = starts[part.node.number] if shared else 0
        for i in [i for i, row in enumerate(part.rows.tolist()) if first_place + row in shared]:
            node, row = part.node, int(part.rows[i])
            record_id, key = node.value("id", row), node.value("exact", row) if exact else None
            if key in first:
                removals[i] = _removed(part.record(i), "exact-duplicate", duplicate_of=first[key], similarity=1.0)
                continue
            if near:
                signature = np.frombuffer(node.value("minhash", row), dtype="<u8")
                band_keys = [(band, signature[span].tobytes()) for band, span in enumerate(spans)]
                candidates = {c for band_key in band_keys for c in index.get(band_key, ())}
                scored = [(np.count_nonzero(signature == kept[c][1]) / len(signature), -c) for c in candidates]
                best = max((score for score in scored if score[0] >= threshold), default=None)
                if best is not None:
                    similarity, duplicate_of = round(float(best[0]), 4), kept[-best[1]][0]
                    removals[i] = _removed(
                        part.record(i), "near-duplicate", duplicate_of=duplicate_of, similarity=similarity
                    )
                    continue
                for band_key in band_keys:
                    index.setdefault(band_key, []).append(len(kept))
                kept.append((record_id, signature))
            if key is not None:
                first[key] = record_id
        yield part, removals


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


class Screen:
    """The benchmarks' n-gram indexes, read at once so a bad benchmark fails before any record is read:
    the per-record half of decontamination, which a discipline's facts job runs."""

    def __init__(self, settings: dict):
        self.threshold, self.fields = settings["threshold"], settings["fields"]
        self.indexes: list[tuple[str, NgramIndex]] = []
        for benchmark in settings["benchmarks"]:
            if benchmark_name(benchmark) in [name for name, _ in self.indexes]:
                raise BenchmarkError(f"two benchmarks are named {benchmark_name(benchmark)!r}: give each its own name")
            texts = load_benchmark(benchmark["path"], benchmark["field"])
            self.indexes.append(
                (benchmark_name(benchmark), NgramIndex(texts, settings["ngram"], settings["min_words"]))
            )

    def matches(self, record: dict) -> list[dict] | None:
        """Per benchmark the text most contained in the record, where it reaches the threshold; None if none does."""
        matches = []
        for name, index in self.indexes:
            best = None
            for field in self.fields:
                found = index.best_match(TEXTS[field](record))
                if found and found[1] >= self.threshold and (best is None or found[1] > best["overlap"]):
                    best = {
                        "benchmark": name,
                        "field": field,
                        "item": found[0],
                        "overlap": round(found[1], 4),
                        "text": index.texts[found[0]][:300],
                    }
            if best:
                matches.append(best)
        return matches or None

    def report(self, settings: dict) -> dict:
        benchmarks = [
            {
                "name": name,
                "path": benchmark["path"],
                "field": benchmark["field"],
                "texts": len(index.texts),
                "indexed": len(index.sizes),
                "matched": 0,
                "removed": 0,
            }
            for (name, index), benchmark in zip(self.indexes, settings["benchmarks"], strict=True)
        ]
        return {**{k: settings[k] for k in ("ngram", "threshold", "min_words", "fields")}, "benchmarks": benchmarks}


def decontaminate(source: Composition, settings: dict) -> tuple[Removals, dict]:
    """The records of `source` that contain benchmark texts, per discipline, each with the entry naming
    them; and the report, counting items and removed records per benchmark, complete once the removals
    are exhausted.

    The matches come from the facts (`Screen.matches`, per discipline); the benchmarks are read here
    only for the report's counts of their texts, and at once, so a bad one fails before any record."""
    report = Screen(settings).report(settings)
    number = {b["name"]: position for position, b in enumerate(report["benchmarks"])}

    def screen() -> Removals:
        report["records_in"] = report["records_out"] = 0
        for part in source.parts():
            removals: dict[int, dict] = {}
            for i, found in enumerate(part.node.columns["contamination"][row] for row in part.rows.tolist()):
                if found is None:
                    continue
                matches = orjson.loads(found)
                for match in matches:
                    report["benchmarks"][number[match["benchmark"]]]["matched"] += 1
                report["benchmarks"][number[matches[0]["benchmark"]]]["removed"] += 1
                removals[i] = _removed(
                    part.record(i), "contamination", benchmark=matches[0]["benchmark"], matches=matches
                )
            report["records_in"] += len(part)
            report["records_out"] += len(part) - len(removals)
            yield part, removals

    return screen(), report


# ---------------------------------------------------------------------------------------------- judge grades


def _histogram(counter: Counter) -> dict[str, int]:
    """Counts by score, lowest first, with string keys: the form JSON reads back."""
    return {str(score): counter[score] for score in sorted(counter)}


def judge_filter(source: Composition, settings: dict) -> tuple[Removals, dict]:
    """The records of `source` graded below the minimums (or ungraded, unless kept), per discipline, each
    with the entry giving its grade and the minimums it missed; and the report: the distribution of the
    scores of every graded record (overall per field and per difficulty, and per criterion) and what was
    removed, complete once the removals are exhausted.

    Grades are read from the records (provenance.judge), so the judge is never asked again here."""
    min_score, minimums, keep_ungraded = settings["min_score"], settings["min_criteria"], settings["keep_ungraded"]
    overall: dict[str, dict[str, Counter]] = {"field": {}, "difficulty": {}}
    criteria: dict[str, Counter] = {}
    counts: Counter = Counter()
    report: dict = {"min_score": min_score, "min_criteria": minimums, "keep_ungraded": keep_ungraded}

    def removal(record: dict) -> dict | None:
        counts["records_in"] += 1
        provenance = record["provenance"]
        grade = provenance.get("judge") or {"graded": False, "reason": "the record has no grade"}
        if not grade["graded"]:
            counts["ungraded"] += 1
            if keep_ungraded:
                counts["records_out"] += 1
                return None
            counts["removed_ungraded"] += 1
            return _removed(record, "ungraded", grade=grade)
        for by, value in (("field", provenance["path"][0]), ("difficulty", provenance["difficulty"])):
            overall[by].setdefault(value, Counter())[grade["overall"]] += 1
        for criterion, score in grade["scores"].items():
            criteria.setdefault(criterion, Counter())[score] += 1
        below = ["overall"] if grade["overall"] < min_score else []
        below += [c for c, least in minimums.items() if grade["scores"][c] < least]
        if not below:
            counts["records_out"] += 1
            return None
        counts["removed_low_score"] += 1
        for name in below:
            counts[f"below_{name}"] += 1
        return _removed(record, "low-score", below=below, grade=grade)

    def screen() -> Removals:
        for part in source.parts():
            found = ((i, removal(part.record(i))) for i in range(len(part)))
            yield part, {i: entry for i, entry in found if entry is not None}
        report["counts"] = {
            key: counts[key]
            for key in ("records_in", "records_out", "ungraded", "removed_low_score", "removed_ungraded")
        }
        report["below"] = {name: counts[f"below_{name}"] for name in ["overall", *minimums]}
        report["overall"] = {by: {k: _histogram(v) for k, v in sorted(c.items())} for by, c in overall.items()}
        report["criteria"] = {criterion: _histogram(c) for criterion, c in sorted(criteria.items())}

    return screen(), report


def sift(removals: Removals, removed: str | Path) -> Counter:
    """Write each removal entry to `removed`, a discipline at a time; count them and the records that stay.

    The counter has "kept" and one count per removal reason. What stays is not written out: the next step
    knows it from the facts less the removal files."""
    counts: Counter = Counter()
    with open_atomic(removed) as out:
        for part, entries in removals:
            for i in sorted(entries):
                counts[entries[i]["reason"]] += 1
                out.write(dump_line(entries[i]))
            counts["kept"] += len(part) - len(entries)
    return counts
