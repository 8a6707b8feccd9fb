"""Checks every reply passes before it counts: a failed reply is re-asked, never used."""

from __future__ import annotations

import jsonschema
import orjson

from glan.llm.request import Reply, Request


def reply_error(request: Request, reply: Reply) -> str | None:
    """None for a usable reply, else a short reason."""
    if reply.finish_reason == "length":
        return "cut off by the token cap (finish_reason: length)"
    if not reply.text.strip():
        return "empty reply"
    if request.schema is None:
        return None
    try:
        value = orjson.loads(reply.text)
    except orjson.JSONDecodeError as exc:
        return f"not JSON: {exc}"
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(request.schema).iter_errors(value))
    if error is not None:
        return f"schema violation at {'/'.join(map(str, error.absolute_path)) or 'top level'}: {error.message}"
    return None
