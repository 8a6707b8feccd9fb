"""The dataset browser's files: a discipline's data (rule browse_node), the page and its index (rule browse),
or its picture for the report (rule browse_screenshot)."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

from pathlib import Path

from glan.dataset.browse import write_node, write_page
from glan.dataset.browse.screenshot import first_kept, take
from glan.dataset.composition import Composition, removed_ids
from glan.logs import setup_logging

setup_logging(snakemake.log[0])
if snakemake.rule == "browse_node":
    write_node(Path(snakemake.input.node).parent, Path(snakemake.input.records).name, Path(snakemake.output[0]))
elif snakemake.rule == "browse_screenshot":
    clean = Composition(snakemake.input.facts, snakemake.input.records, removed_ids(snakemake.input.removals))
    link = first_kept(clean)
    take(snakemake.params.browser, Path(snakemake.input.page), link, Path(snakemake.output[0]), Path(snakemake.log[0]))
else:
    nodes = [Path(path).parent for path in snakemake.input.syllabi]
    removed = map(Path, snakemake.input.removed)
    write_page(nodes, removed, Path(snakemake.input.accounting), Path(snakemake.output.page).parent)
