"""The docs site builds with `mkdocs build --strict`, and its configuration page lists every key of
config/schema.yaml with config/config.yaml's default, read from the built page."""

from __future__ import annotations

import html
import os
import re
import subprocess

import yaml
from helpers import ROOT


def schema_keys(node: dict, path: str, schema: dict) -> list[str]:
    """Every key path of the schema; a shared definition's keys under `<name>`, once."""
    found = []
    for variant in node.get("oneOf", []):
        found += schema_keys(variant, path, schema)
    for name, child in node.get("properties", {}).items():
        key = f"{path}.{name}" if path else name
        found.append(key)
        if "$ref" not in child:
            found += schema_keys(child, key, schema)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        found += schema_keys(extra, f"{path}.<name>", schema)
    return found


def test_the_site_builds_strict_and_its_configuration_page_has_every_key_with_its_default(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    built = subprocess.run(
        ["mkdocs", "build", "--strict", "--site-dir", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr
    page = (tmp_path / "configuration/index.html").read_text()
    found = re.findall(r"<tr>\s*<td><code>([^<]+)</code></td>\s*<td>(.*?)</td>", page, re.S)
    rows = {html.unescape(key): html.unescape(default) for key, default in found}

    schema = yaml.safe_load(ROOT.joinpath("config/schema.yaml").read_text())
    keys = schema_keys(schema, "", schema)
    for name, definition in schema["$defs"].items():
        keys += schema_keys(definition, f"<{name}>", schema)
    assert keys and set(keys) <= rows.keys(), sorted(set(keys) - rows.keys())

    config = yaml.safe_load(ROOT.joinpath("config/config.yaml").read_text())
    assert "<code>8</code>" in rows["llm.concurrency"] == f"<code>{config['llm']['concurrency']}</code>"
    assert rows["stages.questions.per_subject"] == f"<code>{config['stages']['questions']['per_subject']}</code>"
    home = (tmp_path / "index.html").read_text()
    assert "Quick start" in home and 'href="batch/"' in home  # the README, its links made the site's
