"""Split the clean dataset into train and test and write JSONL, Parquet and a `datasets` folder with a card."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

import hashlib
import logging
from collections import Counter
from pathlib import Path

from glan.export import split, write_exports
from glan.io import read_json, read_jsonl, write_jsonl
from glan.stages.run import setup_logging

setup_logging(snakemake.log[0])
splits = split(read_jsonl(snakemake.input.dataset), snakemake.params.settings)
for name, records in splits.items():
    write_jsonl(getattr(snakemake.output, name), records)
facts = {
    "taxonomy": {
        "path": snakemake.input.taxonomy,
        "sha256": hashlib.sha256(Path(snakemake.input.taxonomy).read_bytes()).hexdigest(),
    },
    "duplicates": Counter(d["reason"] for d in read_jsonl(snakemake.input.duplicates)),
    "contamination": read_json(snakemake.input.contamination),
    "accounting": read_json(snakemake.input.accounting),
}
paths = {name: getattr(snakemake.output, name) for name in snakemake.output.keys()}
write_exports(splits, facts, snakemake.params.settings, paths)
logging.getLogger("glan").info("export: train=%d test=%d", len(splits["train"]), len(splits["test"]))
