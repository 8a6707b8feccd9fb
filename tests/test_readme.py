"""The README's quick start is what CI runs: two one-line commands, the second one exactly `.ci/run`'s."""

import re

from helpers import ROOT


def quick_start_commands() -> list[str]:
    section = ROOT.joinpath("README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_the_quick_start_is_two_single_line_commands_and_ci_runs_the_second():
    commands = quick_start_commands()
    assert len(commands) == 2 and all("\n" not in command for command in commands)
    assert commands[0].startswith("pip install -e '.[local]'") and commands[0].endswith("snakemake --cores 2")
    ci_lines = [line for line in ROOT.joinpath(".ci/run").read_text().splitlines() if line and line[0] not in "#"]
    assert ci_lines[-1] == commands[1]
