"""The whole-dataset steps after the stages: join, clean, export, accounting and the report."""

# The layout of a discipline's facts file (glan.dataset.facts), here so that the Snakefile reads it without
# importing pyarrow: a facts file of another layout is made again. 2 added the records file's sha256 and the
# LSH band keys.
FACTS_LAYOUT = 2
