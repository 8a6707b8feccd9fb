"""Split the clean dataset into train and test, and write it as shards of Parquet and JSONL files in the Hub's
layout with a dataset card; the logic lives in glan.dataset.export and glan.dataset.shards.

One pass over the disciplines' facts picks each split's records, a discipline at a time; then only the shards
whose records changed are written, so memory and time follow the edit, not the dataset."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

import hashlib
import logging
from collections import Counter
from pathlib import Path

from glan.dataset.composition import Composition, removed_ids
from glan.dataset.export import write_exports
from glan.io import iter_jsonl, read_json, write_json
from glan.logs import setup_logging

setup_logging(snakemake.log[0])
inputs, outputs = snakemake.input, snakemake.output
source = Composition(inputs.facts, inputs.records, removed_ids(inputs.removed))
facts = {
    "taxonomy": {"path": inputs.taxonomy, "sha256": hashlib.sha256(Path(inputs.taxonomy).read_bytes()).hexdigest()},
    "duplicates": Counter(d["reason"] for d in iter_jsonl(inputs.duplicates)),
    "contamination": read_json(inputs.contamination),
    "accounting": read_json(inputs.accounting),
    **({"judge": read_json(inputs.judge)} if inputs.judge else {}),
}
shards = write_exports(source, facts, snakemake.params.settings, Path(outputs.manifest).parent, outputs.card)
written = shards.pop("written")
write_json(outputs.manifest, shards)
records = Counter()
for shard in shards["shards"]:
    records[shard["split"]] += shard["records"]
logging.getLogger("glan").info(
    "export: train=%d test=%d in %d shards, %d written",
    records["train"],
    records["test"],
    len(shards["shards"]),
    len(written),
)
