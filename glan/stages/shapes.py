"""JSON-schema shapes of the stages' structured replies, and list text for prompts."""

from __future__ import annotations


def text(max_length: int) -> dict:
    return {"type": "string", "minLength": 1, "maxLength": max_length}


def array(items: dict, max_items: int, min_items: int = 1) -> dict:
    return {"type": "array", "items": items, "minItems": min_items, "maxItems": max_items}


def record(**properties) -> dict:
    """An object with exactly these properties, all required: the shape OpenAI's strict mode accepts."""
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def bullets(items) -> str:
    return "\n".join(f"- {item}" for item in items)
