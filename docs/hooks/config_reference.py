"""The configuration reference, generated from config/schema.yaml and config/config.yaml at each `mkdocs build`.

Every key the schema allows is a row: its path, its default (config/config.yaml, the one place for
defaults), the values it takes (the schema) and what it means (the schema's description, else the
comment beside the key in config/config.yaml). Written from those two files, it cannot drift from them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- the configuration reference -->"
KEY_LINE = re.compile(r"^(?P<indent> *)(?:# )?(?P<key>[a-z_]+):(?P<value>[^#]*?)(?:\s+#\s*(?P<comment>.*))?$")


def comments(text: str) -> dict[str, str]:
    """Each key path of a YAML file (commented-out keys too) to the comment on its line."""
    said: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        match = KEY_LINE.match(line)
        if match is None:
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        if match["comment"]:
            said.setdefault(".".join(key for _, key in stack), match["comment"].strip())
    return said


def keys(schema: dict, node: dict | None = None, path: str = "") -> Iterator[tuple[str, dict]]:
    """Every key path the schema allows, parents before children. A key whose value is a shared definition
    (`$ref`) is one row naming it; the definition's own keys are listed once, under `<name>`."""
    if node is None:
        yield from keys(schema, schema, "")
        for name, definition in schema["$defs"].items():
            if definition.get("properties"):
                yield from keys(schema, definition, f"<{name}>")
        return
    for variant in node.get("oneOf", []):
        yield from keys(schema, variant, path)
    for name, child in node.get("properties", {}).items():
        key = f"{path}.{name}" if path else name
        if "$ref" in child and not _definition(schema, child).get("properties"):
            child = {**_definition(schema, child), **{k: v for k, v in child.items() if k != "$ref"}}
        yield key, child
        if "$ref" not in child:
            yield from keys(schema, child, key)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and extra.get("properties"):
        yield from keys(schema, extra, f"{path}.<name>")


def _definition(schema: dict, node: dict) -> dict:
    return schema["$defs"][node["$ref"].rsplit("/", 1)[1]]


UNSET = object()  # a key config/config.yaml does not set


def default(config: dict, key: str):
    value = config
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return UNSET
        value = value[part]
    return value


def takes(node: dict) -> str:
    """What values a key takes, in the schema's words."""
    if "$ref" in node:
        return f"`<{node['$ref'].rsplit('/', 1)[1]}>`, below"
    if "enum" in node:
        return " or ".join(f"`{v}`" for v in node["enum"])
    kinds = node.get("type") or [v.get("type") for v in node.get("oneOf", [])]
    kinds = kinds if isinstance(kinds, list) else [kinds]
    bounds = [
        f"{sign} {node[name]}"
        for name, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"))
        if name in node
    ]
    return ", ".join(filter(None, ["/".join(str(k) for k in kinds if k), *bounds]))


def _shown(value) -> str:
    return f"`{yaml.safe_dump(value, default_flow_style=True, width=1 << 16).strip().removesuffix('...').strip()}`"


def rows(root: Path = ROOT) -> list[tuple[str, str, str, str]]:
    """(key, default, values, meaning) for every key of config/schema.yaml."""
    schema = yaml.safe_load((root / "config/schema.yaml").read_text())
    text = (root / "config/config.yaml").read_text()
    config, said = yaml.safe_load(text), comments(text)
    found = []
    for key, node in keys(schema):
        value = default(config, key)
        mapping = "properties" in node and "$ref" not in node
        shown = "" if mapping or value is UNSET else _shown(value)
        shared = _definition(schema, node).get("description", "") if "$ref" in node else ""
        found.append((key, shown, takes(node), node.get("description") or shared or said.get(key, "")))
    return found


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(root: Path = ROOT) -> str:
    lines = ["| key | default | values | meaning |", "|---|---|---|---|"]
    for key, shown, values, meaning in rows(root):
        lines.append(f"| `{key}` | {_cell(shown)} | {_cell(values)} | {_cell(meaning)} |")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    """MkDocs hook: the reference goes where the configuration page has its marker."""
    return markdown.replace(MARKER, table()) if MARKER in markdown else markdown
