"""Helpers the stages share: building requests from a stage's settings, a node's customisation, schema shapes."""

from __future__ import annotations

from glan.llm.request import Request
from glan.prompts import PromptError, Template
from glan.taxonomy import deep_merge

# The keys of a node record that customise how it is built; question records carry them as "custom".
CARRIED = ("instructions", "stages")


def customise(settings: dict, custom: dict, stage: str) -> dict:
    """The stage's settings for one node: the config slice with the node's `stages.<stage>` keys on top."""
    override = (custom.get("stages") or {}).get(stage)
    return deep_merge(settings, override) if override else settings


def carried(node: dict) -> dict:
    """What downstream records keep of a node's customisation (pinned subjects live in subjects.json)."""
    return {key: node[key] for key in CARRIED if key in node}


def instructions(custom: dict, template: Template) -> str:
    """The node's instructions for a prompt; a template that cannot place them fails instead of dropping them."""
    text = custom.get("instructions", "")
    if text and "instructions" not in template.placeholders:
        raise PromptError(
            f"{template.path}: the node has `instructions` but the template has no {{{{ instructions }}}} placeholder"
        )
    return text


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
