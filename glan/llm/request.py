"""A request is everything that decides a reply; its key is the sha256 of its canonical form."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields, replace

import orjson

from glan.config import KEYED_AS_BEFORE

CHARS_PER_TOKEN = 4  # the estimate wherever tokens are counted before a reply says how many


def _normalise(value):
    """1.0 and 1 ask the same of a model, so they must hash the same."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    return value


def canonical_json(value) -> bytes:
    return orjson.dumps(_normalise(value), option=orjson.OPT_SORT_KEYS)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Request:
    """One chat completion. `sample` tells repeated draws apart; `attempt` counts re-asks after a bad reply."""

    model: str
    messages: list[dict]
    params: dict = field(default_factory=dict)
    schema: dict | None = None
    schema_name: str | None = None
    sample: int = 0
    attempt: int = 0
    structured_output: str = KEYED_AS_BEFORE

    def key(self, identity: str) -> str:
        """Never includes credentials: `identity` is the backend's (base URL, `llm.endpoint`, or model hash).

        It is hashed under the name "endpoint", as every cache made so far has it; `structured_output`
        only where it changes what is sent (another mode, with a schema)."""
        fields_ = {f.name: getattr(self, f.name) for f in fields(self)}  # asdict would deep-copy the messages first
        if self.schema is None or self.structured_output == KEYED_AS_BEFORE:
            del fields_["structured_output"]
        return sha256_hex(canonical_json({"endpoint": identity, **fields_}))

    @property
    def prompt_tokens(self) -> int:
        """About its prompt's tokens, before any reply says (CHARS_PER_TOKEN)."""
        return sum(len(m["content"]) for m in self.messages) // CHARS_PER_TOKEN

    @property
    def most_tokens(self) -> int:
        """The most it can take: its prompt and the whole reply allowance (per-minute budgets, expected cost)."""
        return self.prompt_tokens + self.params.get("max_tokens", 0)

    @property
    def seed(self) -> int:
        """The seed sent to the backend, distinct per sample and attempt so a re-ask can differ."""
        base = self.params.get("seed", 0)
        digest = sha256_hex(canonical_json([base, self.sample, self.attempt]))
        return int(digest[:8], 16) & 0x7FFFFFFF

    def at_attempt(self, attempt: int) -> Request:
        return replace(self, attempt=attempt)


@dataclass(frozen=True)
class Reply:
    text: str
    finish_reason: str | None = None
    usage: dict = field(default_factory=dict)
    model: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)
