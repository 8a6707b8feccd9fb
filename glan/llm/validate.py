"""Checks every reply passes before it counts: a failed reply is re-asked, never used."""

from __future__ import annotations

import json
import re

import jsonschema
import orjson

from glan.llm.request import Reply, Request

FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n\s*```", re.DOTALL)


def reply_json(text: str):
    """A reply's JSON: the whole text, or, from a server that wraps it (no response_format, or a
    loose one), the JSON inside a code fence or between the text around it. orjson.JSONDecodeError
    (a ValueError) when there is none."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        whole = error
    fenced = FENCE.search(text)
    inner = fenced.group(1) if fenced else text[text.find("{") : text.rfind("}") + 1]
    for candidate in (text, inner):
        try:  # a raw newline or tab inside a string (small models under a JSON grammar write them) is kept
            return json.loads(candidate, strict=False)
        except ValueError:
            continue
    raise whole


def reply_error(request: Request, reply: Reply) -> str | None:
    """None for a usable reply, else a short reason."""
    if reply.finish_reason == "length":
        return "cut off by the token cap (finish_reason: length)"
    if not reply.text.strip():
        return "empty reply"
    if request.schema is None:
        return None
    try:
        value = reply_json(reply.text)
    except orjson.JSONDecodeError as exc:
        return f"not JSON: {exc}"
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(request.schema).iter_errors(value))
    if error is not None:
        return f"schema violation at {'/'.join(map(str, error.absolute_path)) or 'top level'}: {error.message}"
    return None
