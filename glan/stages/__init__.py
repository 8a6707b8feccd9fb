"""The pure stages, in build order: each declares its artifacts and plans and assembles (glan.stages.contract).

`STAGES` holds every stage, and answers membership, iteration and lookup alike: GLAN's four
(`GLAN_STAGES`, the ones every build runs) and the optional ones (`OPTIONAL_NAMES`: the judge, off by
default). What walks one build walks `active(config)`: GLAN's four, and an optional stage where the
config turns it on.
"""

from __future__ import annotations

from glan.stages import answers, judge, questions, subjects, syllabus
from glan.stages.contract import Stage

GLAN = (subjects.STAGE, syllabus.STAGE, questions.STAGE, answers.STAGE)
OPTIONAL = (judge.STAGE,)
STAGES: dict[str, Stage] = {stage.name: stage for stage in (*GLAN, *OPTIONAL)}
GLAN_STAGES = tuple(stage.name for stage in GLAN)
OPTIONAL_NAMES = tuple(stage.name for stage in OPTIONAL)


def enabled(config: dict, name: str) -> bool:
    """Whether a build runs the stage: GLAN's always, an optional one when `stages.<name>.enabled`."""
    return name in GLAN_STAGES or bool(config["stages"][name]["enabled"])


def active(config: dict) -> dict[str, Stage]:
    """The stages a build with this config runs, in build order."""
    return {name: stage for name, stage in STAGES.items() if enabled(config, name)}
