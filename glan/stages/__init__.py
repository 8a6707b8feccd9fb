"""The pure stages, in build order: each declares its artifacts and plans and assembles (glan.stages.contract)."""

from __future__ import annotations

from glan.stages import answers, questions, subjects, syllabus
from glan.stages.contract import Stage

STAGES: dict[str, Stage] = {s.name: s for s in (subjects.STAGE, syllabus.STAGE, questions.STAGE, answers.STAGE)}
STAGE_NAMES = tuple(STAGES)
