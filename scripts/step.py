"""Run the whole-dataset step named after the rule (glan.dataset.steps), for a rule that runs many jobs at once:
each in a process of its own."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the glan package, installed or not (conda envs)

from glan.dataset.steps import StepFailed, run

try:
    run(snakemake.rule, snakemake)
except StepFailed as error:  # the traceback is in the job's log: Snakemake's output gets the line
    sys.exit(str(error))
