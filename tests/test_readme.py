"""The README is short, and its quick start is what CI runs: two one-line commands, the second one exactly
`.ci/run`'s. Its table of pages links every page of the docs site; the layout table is the architecture page's."""

import re

import yaml
from helpers import ROOT

ARCHITECTURE = ROOT / "docs/architecture.md"


def quick_start_commands() -> list[str]:
    section = ROOT.joinpath("README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_the_quick_start_is_two_single_line_commands_and_ci_runs_the_second():
    commands = quick_start_commands()
    assert len(commands) == 2 and all("\n" not in command for command in commands)
    assert commands[0].startswith("pip install -e '.[local]'") and commands[0].endswith("snakemake --cores 2")
    ci_lines = [line for line in ROOT.joinpath(".ci/run").read_text().splitlines() if line and line[0] not in "#"]
    assert ci_lines[-1] == commands[1]


def layout_rows() -> list[tuple[list[str], list[str]]]:
    """The README's layout table: (paths in the first column, names in the second) per row."""
    table = ARCHITECTURE.read_text().split("\nLayout:", 1)[1].split("\n\n", 2)[1]
    rows = []
    for line in table.splitlines()[2:]:
        first, second = line.strip("|").split("|", 1)
        rows.append((re.findall(r"`([^`]+)`", first), re.findall(r"`([^`]+)`", second)))
    return rows


def test_the_readme_is_at_most_200_lines_and_links_every_page_of_the_site():
    readme = ROOT.joinpath("README.md").read_text()
    assert len(readme.splitlines()) <= 200
    linked = set(re.findall(r"\]\(docs/([a-z_]+\.md)\)", readme))
    pages = {next(iter(entry.values())) for entry in yaml.safe_load(ROOT.joinpath("mkdocs.yml").read_text())["nav"]}
    assert pages - {"index.md"} == linked
    assert all(ROOT.joinpath("docs", page).is_file() for page in pages)


def test_the_architecture_layout_table_names_every_module_of_the_package_and_nothing_else():
    named = set()
    for paths, names in layout_rows():
        for path in paths:
            assert (ROOT / path.split("<")[0]).exists(), f"layout table: {path} does not exist"
            named.add(path)
            if path.endswith("/"):
                for name in (n for n in names if n.endswith((".py", "/"))):
                    found = list((ROOT / path).rglob(name.rstrip("/")))
                    assert found, f"layout table: no {name} under {path}"
                    named.update(str(f.relative_to(ROOT)) + ("/" if f.is_dir() else "") for f in found)
    modules = {
        str(p.relative_to(ROOT))
        for p in ROOT.joinpath("glan").rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    }
    unnamed = modules - named
    assert not unnamed, f"modules missing from the layout table of {ARCHITECTURE}: {sorted(unnamed)}"
