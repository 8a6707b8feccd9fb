"""Prompt templates: YAML files with `system` and `user` parts and strict `{{ name }}` placeholders.

A template may also list `variants`: alternative wordings of one instruction, asked in turn
through a `{{ variant }}` placeholder (the taxonomy proposal asks "from several prompts", as GLAN did).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
PARTS = ("system", "user")


class PromptError(ValueError):
    pass


class Template:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise PromptError(f"{self.path}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("user"), str):
            raise PromptError(f"{self.path}: a prompt needs a `user` text (and may have a `system` text)")
        unknown = set(data) - {*PARTS, "variants"}
        if unknown:
            raise PromptError(f"{self.path}: unknown keys {sorted(unknown)}; allowed: {[*PARTS, 'variants']}")
        self.parts = {part: data[part] for part in PARTS if data.get(part)}
        variants = data.get("variants", [])
        if not isinstance(variants, list) or not all(isinstance(v, str) and v.strip() for v in variants):
            raise PromptError(f"{self.path}: `variants` must be a list of non-empty texts")
        self.variants = [v.strip() for v in variants]

    @property
    def placeholders(self) -> set[str]:
        return {name for text in self.parts.values() for name in PLACEHOLDER.findall(text)}

    def check(self, allowed: set[str], required: frozenset[str] = frozenset()) -> None:
        """Fail before any request when the template asks for a value the stage does not provide, or
        leaves out one that tells its requests apart (without it, every request asks the same thing)."""
        unknown = self.placeholders - allowed
        if unknown:
            raise PromptError(
                f"{self.path}: unknown placeholder(s) {sorted(unknown)}; this stage provides {sorted(allowed)}"
            )
        missing = sorted(required - self.placeholders)
        if missing:
            names = " or ".join(f"{{{{ {name} }}}}" for name in missing)
            raise PromptError(
                f"{self.path}: the template has no {names} placeholder, so no request would say which "
                f"{' and '.join(missing)} it is for; add {names} to its `user` text"
            )

    def render(self, **values) -> list[dict]:
        self.check(set(values))

        def fill(text: str) -> str:
            return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text).strip()

        return [{"role": part, "content": fill(text)} for part, text in self.parts.items()]
