"""Helpers the stages share: building requests from a stage's settings, and the array/string bounds of schemas."""

from __future__ import annotations

from glan.llm.request import Request


def make_request(
    settings: dict, messages: list[dict], schema: dict | None = None, name: str | None = None, sample: int = 0
) -> Request:
    return Request(
        model=settings["llm"]["model"],
        messages=messages,
        params={**settings["sampling"], "seed": settings["seed"]},
        schema=schema,
        schema_name=name,
        sample=sample,
    )


def text(max_length: int) -> dict:
    return {"type": "string", "minLength": 1, "maxLength": max_length}


def array(items: dict, max_items: int, min_items: int = 1) -> dict:
    return {"type": "array", "items": items, "minItems": min_items, "maxItems": max_items}


def record(**properties) -> dict:
    """An object with exactly these properties, all required: the shape OpenAI's strict mode accepts."""
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def bullets(items) -> str:
    return "\n".join(f"- {item}" for item in items)
