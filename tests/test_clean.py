"""Deduplication and decontamination on crafted records and tiny benchmark files written here."""

from __future__ import annotations

import random
import tempfile

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import DEFAULTS
from records import PATHS, facts_of, make_record

from glan.dataset.clean import BenchmarkError, decontaminate, deduplicate, load_benchmark, sift
from glan.dataset.composition import Composition, FactsMismatch
from glan.io import dump_jsonl, read_jsonl

DEDUP = {**DEFAULTS["clean"]["dedup"], "near_threshold": 0.8}
DECONTAMINATE = DEFAULTS["clean"]["decontaminate"]
LONG = (
    "A thin converging lens of focal length 20 cm forms an image of a candle placed 30 cm in front of it. "
    "Find the image distance and the magnification, and say whether the image is real or virtual."
)


def ids(records):
    return [r["id"] for r in records]


def parted(records, removals):
    """(kept records, removal entries) from the removals per discipline that the cleaning steps yield."""
    entries = [entry for _, found in removals for _, entry in sorted(found.items())]
    gone = {entry["id"] for entry in entries}
    return [r for r in records if r["id"] not in gone], entries


def dedup(records, settings):
    with tempfile.TemporaryDirectory() as folder:
        return parted(records, deduplicate(facts_of(records, folder, settings, DECONTAMINATE), settings))


def clean(records, settings):
    with tempfile.TemporaryDirectory() as folder:
        removals, report = decontaminate(facts_of(records, folder, DEDUP, settings), settings)
        return (*parted(records, removals), report)


def test_exact_duplicates_differ_only_in_case_and_spacing_and_the_first_one_stays():
    first = make_record("What is the speed of light in vacuum?")
    copy = make_record("  what is the SPEED of light in   vacuum?", node="mathematics/number-theory")
    other = make_record("What is the speed of sound in air?")
    kept, removed = dedup([first, copy, other], {**DEDUP, "near": False})
    assert ids(kept) == ids([first, other])
    assert removed == [
        {
            "id": copy["id"],
            "reason": "exact-duplicate",
            "duplicate_of": first["id"],
            "similarity": 1.0,
            "node": "mathematics/number-theory",
            "question": copy["messages"][0]["content"],
        }
    ]


def test_operators_keep_arithmetic_questions_apart():
    records = [make_record("Compute 17 + 25 mod 7."), make_record("Compute 17 - 25 mod 7.")]
    kept, removed = dedup(records, {**DEDUP, "near_threshold": 0.9})
    assert not removed and len(kept) == 2


def test_near_duplicates_across_nodes_name_the_kept_record():
    original = make_record(LONG)
    reworded = make_record(LONG.replace("candle", "small candle"), node="mathematics/number-theory")
    unrelated = make_record("Explain how natural selection acts on variation within a population of finches.")
    kept, removed = dedup([original, reworded, unrelated], DEDUP)
    assert ids(kept) == ids([original, unrelated])
    (entry,) = removed
    assert entry["reason"] == "near-duplicate" and entry["duplicate_of"] == original["id"]
    assert DEDUP["near_threshold"] <= entry["similarity"] < 1

    kept, removed = dedup([original, reworded, unrelated], {**DEDUP, "near": False})
    assert len(kept) == 3 and not removed


def test_dedup_is_deterministic_and_idempotent():
    nodes = list(PATHS)
    records = [make_record(f"{LONG} Variant {i % 3}.", node=nodes[i // 3]) for i in range(6)]
    records += [make_record("What is a prime number?", node=node) for node in nodes]
    kept, removed = dedup(records, DEDUP)
    assert (kept, removed) == dedup(records, DEDUP)
    assert dedup(kept, DEDUP) == (kept, [])
    assert len(kept) + len(removed) == len(records)


def test_sift_writes_the_removal_entries_as_they_come_and_counts_what_stays(tmp_path):
    records = [make_record("What is a prime number?", node=node) for node in PATHS]
    removals = deduplicate(facts_of(records, tmp_path, DEDUP, DECONTAMINATE), DEDUP)
    counts = sift(removals, tmp_path / "removed.jsonl")
    assert counts == {"kept": 1, "exact-duplicate": 2}
    assert ids(read_jsonl(tmp_path / "removed.jsonl")) == ids(records[1:])


def write_jsonl(path, rows):
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return str(path)


def test_contaminated_records_are_removed_and_reported_per_benchmark(tmp_path):
    leaked = "Natalia sold clips to 48 of her friends in April and then half as many clips in May; how many in all?"
    mmlu = "Which of the following best describes the function of the mitochondria in a eukaryotic cell?"
    gsm = write_jsonl(tmp_path / "gsm.jsonl", [{"question": leaked, "answer": "72"}, {"question": "x " * 20}])
    pq.write_table(pa.table({"question": [mmlu], "choices": [["a", "b"]]}), tmp_path / "mmlu.parquet")
    records = [
        make_record(f"Homework: {leaked} Show your steps."),  # contains a GSM8K question
        make_record(LONG),
        make_record(mmlu.replace("function", "role")),  # one word in the middle breaks 5 of its 11 5-grams
        make_record("Describe mitochondria.", answer=f"As the quiz asked: {mmlu}"),
    ]
    settings = {
        "benchmarks": [
            {"name": "gsm8k", "path": gsm, "field": "question"},
            {"path": str(tmp_path / "mmlu.parquet"), "field": "question"},
        ],
        "ngram": 5,
        "threshold": 0.6,
        "min_words": 5,
        "fields": ["question"],
    }
    kept, removed, report = clean(records, settings)
    assert ids(kept) == ids(records[1:])
    assert removed[0]["reason"] == "contamination" and removed[0]["benchmark"] == "gsm8k"
    assert removed[0]["matches"][0]["overlap"] == 1.0 and removed[0]["matches"][0]["item"] == 0
    assert [(b["name"], b["texts"], b["removed"]) for b in report["benchmarks"]] == [("gsm8k", 2, 1), ("mmlu", 1, 0)]
    assert (report["records_in"], report["records_out"]) == (4, 3)

    kept, removed, report = clean(records, {**settings, "fields": ["question", "answer"]})
    assert ids(removed) == ids([records[0], records[3]])
    assert removed[1]["matches"][0]["field"] == "answer" and report["benchmarks"][1]["removed"] == 1


def test_short_benchmark_texts_are_skipped_unless_min_words_allows_them(tmp_path):
    bench = write_jsonl(tmp_path / "short.jsonl", [{"prompt": "Define entropy."}])
    records = [make_record("Define entropy."), make_record(LONG)]
    settings = {**DECONTAMINATE, "benchmarks": [{"path": bench, "field": "prompt"}]}
    assert len(clean(records, {**settings, "min_words": 8})[0]) == 2
    kept, removed, _ = clean(records, {**settings, "min_words": 2})
    assert ids(removed) == ids(records[:1])


def test_no_benchmarks_keeps_everything():
    records = [make_record(LONG)]
    kept, removed, report = clean(records, DECONTAMINATE)
    assert kept == records and not removed and report["benchmarks"] == []


def test_benchmark_errors_name_the_file_and_field(tmp_path):
    bench = write_jsonl(tmp_path / "b.jsonl", [{"question": "q"}])
    with pytest.raises(BenchmarkError, match=r"b.jsonl:1: no field 'prompt'"):
        load_benchmark(bench, "prompt")
    pq.write_table(pa.table({"question": ["q"]}), tmp_path / "b.parquet")
    with pytest.raises(BenchmarkError, match="no column 'prompt'"):
        load_benchmark(tmp_path / "b.parquet", "prompt")
    (tmp_path / "b.csv").write_text("question\nq\n")
    with pytest.raises(BenchmarkError, match="jsonl or .parquet"):
        load_benchmark(tmp_path / "b.csv", "question")
    twice = [{"path": bench, "field": "question"}, {"path": bench, "field": "question"}]
    with pytest.raises(BenchmarkError, match="two benchmarks are named 'b'"):
        decontaminate(Composition([], []), {**DECONTAMINATE, "benchmarks": twice})  # before any record is read


def reference_dedup(records, settings):
    """Dedup as one pass over the records computes it, with datasketch's own LSH index: what the join must
    give from the facts of each discipline."""
    from datasketch import LeanMinHash, MinHash, MinHashLSH

    from glan.dataset.clean import exact_key, question, shingles

    lsh = MinHashLSH(threshold=settings["near_threshold"], num_perm=settings["num_perm"])
    kept_ids, signatures, first, removed = [], [], {}, []
    for record in records:
        text, key = question(record), exact_key(question(record))
        if key in first:
            removed.append((record["id"], "exact-duplicate", first[key], 1.0))
            continue
        signature = MinHash(num_perm=settings["num_perm"], seed=1)
        signature.update_batch([s.encode() for s in sorted(shingles(text, settings["shingle"]))])
        scored = [(signature.jaccard(signatures[i]), -i) for i in lsh.query(signature)]
        best = max((s for s in scored if s[0] >= settings["near_threshold"]), default=None)
        if best is not None:
            removed.append((record["id"], "near-duplicate", kept_ids[-best[1]], round(float(best[0]), 4)))
            continue
        lsh.insert(len(kept_ids), signature)
        signatures.append(LeanMinHash(signature))
        kept_ids.append(record["id"])
        first[key] = record["id"]
    return removed


def test_the_join_over_facts_removes_what_a_single_pass_with_datasketch_removes():
    chance = random.Random(3)
    vocabulary = [f"w{i}" for i in range(60)]  # few words: many chance near-duplicates, at many similarities
    bases = [[chance.choice(vocabulary) for _ in range(14)] for _ in range(25)]
    records = []
    for node in PATHS:
        for number in range(60):
            words = list(chance.choice(bases))
            for _ in range(chance.choice([0, 0, 1, 1, 2, 3, 5])):
                words[chance.randrange(len(words))] = chance.choice(vocabulary)
            text = " ".join(words)
            records.append(make_record(text.upper() if number % 7 == 0 else text + f" ({number % 3})", node=node))
    for threshold in (0.5, 0.7, 0.85):
        settings = {**DEDUP, "near_threshold": threshold}
        _, removed = dedup(records, settings)
        found = [(r["id"], r["reason"], r["duplicate_of"], r["similarity"]) for r in removed]
        assert found == reference_dedup(records, settings)
        assert {r["reason"] for r in removed} == {"exact-duplicate", "near-duplicate"}


def test_a_file_that_does_not_match_its_facts_is_named_with_what_to_do(tmp_path):
    records = [make_record("What is a prime number?"), make_record(LONG)]
    source = facts_of(records, tmp_path, DEDUP, DECONTAMINATE)
    records_file = tmp_path / "records-00000.jsonl"
    records_file.write_bytes(records_file.read_bytes() + dump_jsonl([make_record("A record the facts do not know?")]))
    with pytest.raises(
        FactsMismatch, match=r"records-00000.jsonl has \d+ bytes, .*facts-00000.parquet .* run snakemake again"
    ):
        sift(deduplicate(source, DEDUP), tmp_path / "removed.jsonl")
    assert not (tmp_path / "removed.jsonl").exists(), "nothing half-written"
