"""The contract between a stage and what runs it (glan.runtime.run, and `glan plan` against the cache).

A stage is pure: `plan` turns its upstream artifact into requests, `assemble` turns the replies
into its artifact. The runner resolves the node's customisation once (`Stage.resolve`), sends the
planned requests through the cache, and hands each reply back beside the context its request was
planned with, so no stage depends on replaying the order of its own plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from glan.config import KEYED_AS_BEFORE, deep_merge
from glan.io import SUM
from glan.llm.lookup import Outcome
from glan.llm.request import Request
from glan.prompts import PromptError, Template

# The keys of a node record that customise how it is built; question records carry them as "custom".
CARRIED = ("instructions", "stages")


def carried(node: dict) -> dict:
    """What downstream records keep of a node's customisation (pinned subjects live in the subjects artifact)."""
    return {key: node[key] for key in CARRIED if key in node}


def customise(settings: dict, custom: dict, stage: str) -> dict:
    """A stage's settings for one node: the config slice with the node's `stages.<stage>` keys on top."""
    override = (custom.get("stages") or {}).get(stage)
    return deep_merge(settings, override) if override else settings


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
        structured_output=settings["llm"].get("structured_output", KEYED_AS_BEFORE),
    )


@dataclass(frozen=True)
class Resolved:
    """One stage for one node: its config slice with the node's `stages.<stage>` keys on top, its
    template, and the node's instructions for that template."""

    settings: dict
    template: Template
    instructions: str

    @property
    def model(self) -> str:
        return self.settings["llm"]["model"]

    def request(
        self, messages: list[dict], schema: dict | None = None, name: str | None = None, sample: int = 0
    ) -> Request:
        return make_request(self.settings, messages, schema, name, sample)


@dataclass(frozen=True)
class Planned:
    """A request and what the stage's assembly needs to place its reply (a subject, a question...)."""

    request: Request
    context: Any = None


@dataclass(frozen=True)
class Answered:
    """A planned request's context and what sending it came to."""

    context: Any
    outcome: Outcome


@dataclass(frozen=True)
class Stage:
    """What a stage declares: its name, the artifacts it reads and writes (in results/nodes/<id>/),
    the placeholders its template may use and those it must use (what each request is about), and its
    three pure steps."""

    name: str
    upstream: str
    output: str
    placeholders: frozenset[str]
    required: frozenset[str]  # a template without one sends requests that all ask the same thing
    node_settings: tuple[str, ...]  # the count keys a node may override in taxonomy.yaml (`stages.<name>`)
    custom: Callable[[Any], dict]  # the node's customisation, as the upstream artifact carries it
    plan: Callable[[Any, Resolved], list[Planned]]
    assemble: Callable[[Any, list[Answered], Resolved], Any]
    free_text: bool = False  # its replies are prose, not JSON: llm.structured_output does not apply

    @property
    def rejects(self) -> str:
        return f"{self.name}.rejects.jsonl"

    @property
    def sum(self) -> str:
        """The sum written beside its artifact (glan.io.write_summed), which the jobs that read it check."""
        return f"{self.output}{SUM}"

    def check(self, template: Template) -> None:
        template.check(set(self.placeholders), self.required)

    def resolve(self, source, settings: dict, template: Template) -> Resolved:
        """The node's settings and instructions for this stage, once per job."""
        self.check(template)
        custom = self.custom(source)
        text = custom.get("instructions", "")
        if text and "instructions" not in template.placeholders:
            raise PromptError(
                f"{template.path}: the node has `instructions` but the template has no "
                "{{ instructions }} placeholder"
            )
        return Resolved(customise(settings, custom, self.name), template, text)
