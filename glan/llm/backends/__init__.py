"""Backends turn a Request into a Reply. Each has an `identity` that goes into every cache key.

A backend is registered by name; `llm.backend` in the config picks one.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from glan.llm.request import Reply, Request


class Backend(Protocol):
    identity: str

    @property
    def batch_api(self) -> Any | None:
        """The client of the endpoint's Batch API (Files and Batches), or None where it has none: batch mode
        and waiting for the batches an interrupted batch build left open need it."""

    async def complete(self, request: Request) -> Reply: ...

    async def aclose(self) -> None: ...


BACKENDS = {
    "openai": "glan.llm.backends.openai_compat:OpenAIBackend",
    "local": "glan.llm.backends.local:LocalBackend",
}


# The `llm` settings a backend is made from; stages that agree on them share one backend (one
# connection pool, one loaded model), whatever their mode, attempts or sampling.
CONNECTION_SETTINGS = ("backend", "endpoint", "timeout", "local")


def connection(settings: dict) -> dict:
    return {k: settings[k] for k in CONNECTION_SETTINGS if k in settings}


def identity(settings: dict) -> str:
    """The identity a backend of these settings has, found without loading a model or connecting (`glan plan`)."""
    if settings["backend"] == "local":
        from glan.llm.backends.local.model_file import identity as model_identity

        return model_identity(settings["local"]["model_path"])
    from glan.llm.backends.openai_compat import identity as endpoint_identity

    return endpoint_identity(settings)


def make_backend(settings: dict) -> Backend:
    name = settings["backend"]
    if name not in BACKENDS:
        raise ValueError(f"llm.backend {name!r} is unknown; choose one of {sorted(BACKENDS)}")
    module, _, cls = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(settings)
