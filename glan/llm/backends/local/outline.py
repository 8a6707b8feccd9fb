"""Structured replies: a schema's outline grammar, and the outline parsed back into JSON.

A small base model writes a plain outline ("Session 2: <title>", "Key concepts: a, b") far better
than JSON; decoded under this grammar, the outline parses back into JSON that matches the schema.
Plain text in, plain text out: nothing here needs llama.cpp, so it is tested without it.
"""

from __future__ import annotations

import json
import re


class Unsupported(ValueError):
    """The schema has a shape the outline does not cover; it decodes as JSON instead."""


def _literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a GBNF literal escapes like a JSON string


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _singular(key: str) -> str:
    word = key.replace("_", " ")
    if word.endswith("ies"):
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word.capitalize()


def _bounds(schema: dict, low_key: str, high_key: str) -> tuple[int, int | None]:
    low, high = max(int(schema.get(low_key, 0)), 0), schema.get(high_key)
    if high is not None and high < max(low, 1):
        raise Unsupported(f"{high_key} {high} leaves nothing to write")
    return low, high


def _repeat(rule: str, low: int, high: int | None) -> str:
    return f"{rule}{{{low},{'' if high is None else high}}}"


class Outline:
    """The outline of an object schema, for the shapes the stages use.

    Fields (strings, enums, lists of strings) are lines `Label: value`, lists joined by ", ". An object
    whose one property is a list of objects is written as numbered blocks, the first field on the
    header line:

        Session 1: Newton's laws
        Description: ...
        Key concepts: Inertia, Force, Mass

        Session 2: ...

    Values are single lines that neither start nor end with a blank nor start with a quote, and names
    or titles do not end with a full stop. List items hold no comma, semicolon or full stop, so an item ends where the
    model would end its phrase, and they start with no list marker. A newline after the
    last value ends the reply (a base model seldom ends one by itself).
    """

    TEXT = {
        "char": r"[^\x00-\x1F]",  # text: one line
        "start": r"[^\"\u201C\x00-\x20]",  # its first character: not blank, not a quote (it would wrap the text)
        "edge": r"[^\x00-\x20]",  # its last character: not blank
        "tend": r"[^.\x00-\x20]",  # the last character of a name or title: no full stop either
        "ichar": r"[^,;.\x00-\x1F]",  # list items: no separators, no sentences
        "iedge": r"[^-*,;.\x00-\x20]",  # and no list markers
    }
    TITLE_LENGTH = 120  # text no longer than this is a name or a title

    def __init__(self, schema: dict):
        self.schema = schema
        self.rules: dict[str, str] = dict(self.TEXT)
        props = self._properties(schema)
        if len(props) == 1 and self._is_object_list(next(iter(props.values()))):
            self.blocks_key, listing = next(iter(props.items()))
            self.item_fields = self._properties(listing["items"])
            first: dict = next(iter(self.item_fields.values()), {})
            if "enum" not in first and first.get("type") != "string":
                raise Unsupported("a block's header line needs a text or choice field first")
            self.fields = None
            self.root = self._blocks(_singular(self.blocks_key), listing)
        else:
            self.blocks_key, self.fields = None, props
            self.root = self._lines(props)

    @staticmethod
    def _properties(schema: dict) -> dict:
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise Unsupported("not an object")
        props = schema.get("properties") or {}
        if set(schema.get("required", [])) != set(props) or schema.get("additionalProperties", True) is not False:
            raise Unsupported("optional or extra properties")
        return props

    @staticmethod
    def _is_object_list(schema: dict) -> bool:
        return (
            schema.get("type") == "array"
            and isinstance(schema.get("items"), dict)
            and (schema["items"].get("type") == "object")
        )

    def _rule(self, name: str, body: str) -> str:
        name = re.sub(r"[^a-zA-Z0-9-]", "-", name)
        while name in self.rules and self.rules[name] != body:
            name += "-x"
        self.rules[name] = body
        return name

    def _value(self, key: str, schema: dict) -> str:
        """The grammar rule of one field's value."""
        if "enum" in schema:
            values = schema["enum"]
            if not values or not all(isinstance(v, str) and v.strip() and "\n" not in v for v in values):
                raise Unsupported("enum of non-text values")
            return self._rule(f"{key}-choice", " | ".join(_literal(v) for v in values))
        kind = schema.get("type")
        if kind == "string" and not {"pattern", "format"} & set(schema):
            title = schema.get("maxLength", self.TITLE_LENGTH + 1) <= self.TITLE_LENGTH
            return self._rule(f"{key}-text", self._text(schema, "char", "start", "tend" if title else "edge"))
        if kind == "array" and isinstance(schema.get("items"), dict) and schema["items"].get("type") == "string":
            items = schema["items"]
            if "enum" in items or {"pattern", "format"} & set(items):
                raise Unsupported("list of constrained strings")
            item = self._rule(f"{key}-item", self._text(items, "ichar", "iedge", "iedge"))
            low, high = _bounds(schema, "minItems", "maxItems")
            more = f'(", " {item})'
            body = f"{item} {_repeat(more, max(low - 1, 0), None if high is None else high - 1)}"
            return self._rule(f"{key}-list", body if low >= 1 else f"({body})?")
        raise Unsupported(f"field {key!r} of type {kind!r}")

    @staticmethod
    def _text(schema: dict, char: str, first: str, last: str) -> str:
        low, high = _bounds(schema, "minLength", "maxLength")
        if high == 1:
            body = first  # one character
        else:
            middle = _repeat(char, max(low - 2, 0), None if high is None else high - 2)
            body = f"{first} ({middle} {last})?" if low <= 1 else f"{first} {middle} {last}"
        return body if low >= 1 else f"({body})?"

    def _lines(self, fields: dict, header: str | None = None) -> str:
        parts = []
        for i, (key, schema) in enumerate(fields.items()):
            prefix = header if (i == 0 and header is not None) else ("" if i == 0 else "\n") + f"{_label(key)}: "
            parts.append(f"{_literal(prefix)} {self._value(key, schema)}")
        return " ".join(parts)

    def _blocks(self, noun: str, listing: dict) -> str:
        low, high = _bounds(listing, "minItems", "maxItems")
        if high is None:
            raise Unsupported("a list of blocks needs maxItems")
        blocks = [self._lines(self.item_fields, header=f"{noun} {n}: ") for n in range(1, high + 1)]
        # Block n, then optionally block n+1 and so on: nested so the numbers always count up.
        tail = ""
        for n in range(high, 0, -1):
            sep = "" if n == 1 else '"\\n\\n" '
            body = f"{sep}{blocks[n - 1]}" + (f" {tail}" if tail else "")
            optional = n > max(low, 1)
            tail = self._rule(f"block{n}", body) + ("?" if optional else "")
        return tail if low >= 1 else f"({tail})?"

    def grammar(self) -> str:
        # A closing newline ends the reply: a base model rarely ends one by itself.
        rules = {"root": f'{self.root} "\\n"?', **self.rules}
        return "\n".join(f"{name} ::= {body}" for name, body in rules.items())

    # -- back to JSON ------------------------------------------------------------------------

    @staticmethod
    def _parse_value(schema: dict, text: str):
        if schema.get("type") == "array":
            return [item for item in text.split(", ")] if text else []
        return text

    def _parse_lines(self, fields: dict, lines: list[str], header: str | None = None) -> dict:
        if len(lines) != len(fields):
            raise ValueError(f"expected {len(fields)} lines, got {len(lines)}")
        record = {}
        for i, ((key, schema), line) in enumerate(zip(fields.items(), lines, strict=True)):
            prefix = header if (i == 0 and header is not None) else f"{_label(key)}: "
            if not line.startswith(prefix):
                raise ValueError(f"expected {prefix!r} at {line[:40]!r}")
            record[key] = self._parse_value(schema, line[len(prefix) :])
        return record

    def parse(self, text: str) -> dict:
        text = text.strip("\n")
        if self.fields is not None:
            return self._parse_lines(self.fields, text.split("\n") if text else [])
        noun = _singular(self.blocks_key)
        blocks = [block.split("\n") for block in text.split("\n\n")] if text else []
        return {
            self.blocks_key: [
                self._parse_lines(self.item_fields, lines, header=f"{noun} {n}: ")
                for n, lines in enumerate(blocks, start=1)
            ]
        }
