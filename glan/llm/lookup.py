"""A request's attempts through the cache: what sending (glan.llm.send) and planning (`glan plan`) share.

A request is asked up to `max_attempts` times; each attempt has its own key (and seed). A reply that
failed validation is stored as rejected, so the walk moves past it to the next attempt instead of
paying for it again. The walk stops at the first attempt the cache has no entry for: that one is
sent (or, when planning, counted as a request to send).
"""

from __future__ import annotations

from dataclasses import dataclass

from glan.llm.cache import Entry, ReplyReader
from glan.llm.request import Reply, Request
from glan.llm.validate import reply_json


@dataclass
class Outcome:
    """The last attempt made for a planned request: its reply if valid, or why it was rejected."""

    request: Request
    key: str
    reply: Reply | None
    error: str | None = None

    @property
    def valid(self) -> bool:
        return self.error is None

    def json(self):
        assert self.reply is not None, "a rejected outcome has no reply"
        return reply_json(self.reply.text)


@dataclass
class Lookup:
    """Where a request's walk through the cache ended: a final outcome, or an attempt still to send."""

    outcome: Outcome | None  # None: `pending` has no entry yet
    pending: Request
    key: str
    cached: int  # entries read on the way (valid or rejected)
    rejected: int  # of those, replies stored as rejected


def lookup(request: Request, identity: str, cache: ReplyReader, max_attempts: int, start: int = 0) -> Lookup:
    """Walk the attempts of `request` from `start` through the cache."""
    cached = rejected = 0
    entry: Entry | None = None
    current, key = request, ""
    for attempt in range(start, max_attempts):
        current = request.at_attempt(attempt)
        key = current.key(identity)
        entry = cache.get(key)
        if entry is None:
            return Lookup(None, current, key, cached, rejected)
        cached += 1
        if entry.valid:
            return Lookup(Outcome(current, key, entry.reply), current, key, cached, rejected)
        rejected += 1
    error = entry.error if entry is not None else "no attempts left"
    return Lookup(Outcome(current, key, None, error), current, key, cached, rejected)
