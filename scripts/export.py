"""Split the clean dataset into train and test and write JSONL, Parquet and a `datasets` folder with a card.

Two passes over the disciplines' facts, so memory does not grow with the dataset: the first picks the test
questions and the Parquet schema, the second routes each record to its split's files."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

import hashlib
import logging
from collections import Counter
from pathlib import Path

from glan.dataset.composition import Composition, removed_ids
from glan.dataset.export import survey, write_exports
from glan.io import iter_jsonl, read_json
from glan.logs import setup_logging

setup_logging(snakemake.log[0])
settings = snakemake.params.settings
source = Composition(snakemake.input.facts, snakemake.input.dataset, removed_ids(snakemake.input.removed))
found = survey(source, settings)
facts = {
    "taxonomy": {
        "path": snakemake.input.taxonomy,
        "sha256": hashlib.sha256(Path(snakemake.input.taxonomy).read_bytes()).hexdigest(),
    },
    "duplicates": Counter(d["reason"] for d in iter_jsonl(snakemake.input.duplicates)),
    "contamination": read_json(snakemake.input.contamination),
    "accounting": read_json(snakemake.input.accounting),
    **({"judge": read_json(snakemake.input.judge)} if snakemake.input.judge else {}),
}
paths = {name: getattr(snakemake.output, name) for name in snakemake.output.keys()}
tally = write_exports(source, found, facts, settings, paths)
logging.getLogger("glan").info("export: train=%d test=%d", tally.count("train"), tally.count("test"))
