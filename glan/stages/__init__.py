"""The pure stages, in build order: each declares its artifacts and plans and assembles (glan.stages.contract).

`STAGES` iterates GLAN's four stages, the ones every build runs; what walks a build (the rules, batch
export, `glan inspect`, the card's models) walks those. Optional stages (`OPTIONAL`: the judge, off
by default) are looked up by name in `STAGES` too, so the runtime and the stage server run them like
any stage, but are iterated only where the config turns them on: `active(config)`.
"""

from __future__ import annotations

from glan.stages import answers, judge, questions, subjects, syllabus
from glan.stages.contract import Stage

OPTIONAL: dict[str, Stage] = {judge.STAGE.name: judge.STAGE}


class Registry(dict[str, Stage]):
    """GLAN's stages when iterated; an optional stage too when looked up by its name."""

    def __missing__(self, name: str) -> Stage:
        if name in OPTIONAL:
            return OPTIONAL[name]
        raise KeyError(name)


STAGES: dict[str, Stage] = Registry(
    {s.name: s for s in (subjects.STAGE, syllabus.STAGE, questions.STAGE, answers.STAGE)}
)
STAGE_NAMES = tuple(STAGES)
OPTIONAL_NAMES = tuple(OPTIONAL)


def enabled(config: dict, name: str) -> bool:
    """Whether a build runs the stage: GLAN's always, an optional one when `stages.<name>.enabled`."""
    return name in STAGE_NAMES or bool(config["stages"][name]["enabled"])


def active(config: dict) -> dict[str, Stage]:
    """The stages a build with this config runs, in build order."""
    return {name: STAGES[name] for name in (*STAGE_NAMES, *OPTIONAL_NAMES) if enabled(config, name)}
