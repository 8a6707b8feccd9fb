"""One check of each endpoint and model a run sends to, before its first job: a mistake in the URL, the
key, the model or the structured-output mode stops the run in seconds with one message that names the
URL, the model and the fix, instead of every job retrying it for minutes. It stops only what cannot
work: a transient fault is retried under `llm.retry` as any request is, and a server slower than the
probe's timeout is left to the first job.

Steps, for each distinct (model, structured_output) of the run's OpenAI-compatible stages: the server
answers (`GET /models`, retried while it answers 429/5xx), and one small request in the chosen mode
gets a reply. The probe's reply, not the model list, decides whether a model is served: Ollama, a
LiteLLM wildcard route or an Azure deployment answer names they do not list, so a model missing from
the list only warns once its probe is answered. In `json_schema` and `json_object` mode the reply must
be schema-valid within `llm.max_attempts` asks; in `prompt` mode and for free text any reply will do
(every reply of a build is validated anyway, and a small model may need its attempts).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from glan.config import KEYED_AS_BEFORE
from glan.llm.backends.openai_compat import OpenAIBackend
from glan.llm.request import Request
from glan.llm.retry import EndpointError, RetryPolicy, TransientError
from glan.llm.validate import reply_error

PROBE_SCHEMA = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}
PROBE_TOKENS = 64
PROBE_TIMEOUT = 60.0  # seconds: a server that answers slower than this is checked by the first job instead
LISTED = 10  # served models named in a message at most

T = TypeVar("T")


class PreflightFailed(RuntimeError):
    """The endpoint cannot serve the run as configured; the message says what to change."""


class NotChecked(Exception):
    """The probe could not tell (the server answers slower than the probe waits): the first job checks."""


@dataclass(frozen=True)
class Target:
    """What one preflight checks: a model, asked in one structured-output mode, on the run's endpoint."""

    model: str
    structured_output: str | None  # None: free text, asked with no schema
    stages: tuple[str, ...]

    @property
    def model_keys(self) -> str:
        return " or ".join(f"stages.{s}.llm.model" for s in self.stages)

    @property
    def mode_words(self) -> str:
        """The mode as a message names it: `a free-text request`, `a json_schema request`."""
        return "free-text" if self.structured_output is None else self.structured_output


@dataclass(frozen=True)
class ModelList:
    """What `GET /models` said: the models it names, or the server's words where it refused to list any."""

    served: tuple[str, ...] = ()
    refused: str | None = None  # e.g. "HTTP 400: No connected db."

    def names(self) -> str:
        shown = ", ".join(map(repr, self.served[:LISTED]))
        return shown + (f" and {len(self.served) - LISTED} more" if len(self.served) > LISTED else "")


async def check(target: Target, settings: dict) -> list[str]:
    """Check one target; the warnings to print (a build that goes on), or PreflightFailed."""
    backend = OpenAIBackend({**settings, "timeout": min(settings["timeout"], PROBE_TIMEOUT)})
    policy = RetryPolicy.from_settings(settings)
    try:
        listed = await _retried(policy, backend, lambda: _model_list(backend))
        try:
            await _retried(policy, backend, lambda: _probe(backend, target, settings["max_attempts"]), target, listed)
        except NotChecked as unknown:
            return [str(unknown)]
    finally:
        await backend.aclose()
    if listed.served and target.model not in listed.served:
        return [
            f"{backend.base_url} does not list the model {target.model!r} (it lists {listed.names()}), but answered "
            "it: going on"
        ]
    return []


async def _retried(
    policy: RetryPolicy,
    backend: OpenAIBackend,
    call: Callable[[], Awaitable[T]],
    target: Target | None = None,
    listed: ModelList | None = None,
) -> T:
    """`call` until it succeeds, retrying transient faults as `llm.retry` says; the failure as one message."""
    started, retry = time.monotonic(), 0
    while True:
        try:
            return await call()
        except TransientError as error:
            if _refused(error):
                raise PreflightFailed(
                    f"nothing answers at {backend.base_url} ({list(_causes(error))[-1]}). Start the server there, or "
                    "point OPENAI_BASE_URL at it (with its /v1)."
                ) from error
            if _timed_out(error) and target is not None:
                raise NotChecked(
                    f"{backend.base_url} did not answer a {target.mode_words} request for {target.model!r} within "
                    f"{backend.timeout:.0f} s: the first job checks it instead"
                ) from error
            try:
                wait = policy.wait(retry, error, time.monotonic() - started)
            except EndpointError as spent:
                raise _failed(spent, target, listed, f"GET {backend.base_url}/models: ") from error
        except EndpointError as error:
            raise _failed(error, target, listed) from error
        await asyncio.sleep(wait)
        retry += 1


def _failed(error: Exception, target: Target | None, listed: ModelList | None, listing: str = "") -> PreflightFailed:
    if target is None:  # the model list, whose errors name the URL already
        return PreflightFailed(f"{listing}{error}")
    message = f"a {target.mode_words} request for {target.model!r} failed: {str(error).rstrip('.')}"
    if listed is not None and listed.refused:
        message += (
            f". The server refused its model list too ({listed.refused}): check the key (OPENAI_API_KEY) and the "
            "URL (OPENAI_BASE_URL)"
        )
    elif listed is not None and listed.served and target.model not in listed.served:
        message += f". The server lists {listed.names()}: set {target.model_keys} to one of them"
    return PreflightFailed(message)


def _causes(error: BaseException):
    found: BaseException | None = error
    while found is not None:
        yield found
        found = found.__cause__ or found.__context__


def _refused(error: TransientError) -> bool:
    """Nothing listens at the URL (or its host has no address): asking again will not help. Told by the
    HTTP library's ConnectError, whichever library the openai client uses."""
    return any(
        type(cause).__name__ == "ConnectError" or isinstance(cause, ConnectionRefusedError) for cause in _causes(error)
    )


def _timed_out(error: TransientError) -> bool:
    import openai

    return any(isinstance(cause, openai.APITimeoutError) for cause in _causes(error))


async def _model_list(backend: OpenAIBackend) -> ModelList:
    import openai

    try:
        return ModelList(tuple([model.id async for model in backend.client.models.list()]))
    except openai.APIConnectionError as error:
        raise TransientError(f"{backend.base_url} did not answer ({type(error).__name__}: {error})") from error
    except openai.APIStatusError as error:
        failure = backend.failure(error)
        if isinstance(failure, TransientError) or error.status_code in (401, 403):
            raise failure from error
        if error.status_code in (404, 405, 501):  # a server without a model list: the probe finds out
            return ModelList()
        return ModelList(refused=str(failure).removeprefix(f"{backend.base_url} answered "))


async def _probe(backend: OpenAIBackend, target: Target, max_attempts: int) -> None:
    mode = target.structured_output
    request = Request(
        model=target.model,
        messages=[{"role": "user", "content": 'Reply with the JSON object {"ok": true} and nothing else.'}],
        params={"temperature": 0, "max_tokens": PROBE_TOKENS},
        schema=None if mode is None else PROBE_SCHEMA,
        schema_name="preflight",
        structured_output=mode or KEYED_AS_BEFORE,
    )
    if mode not in ("json_schema", "json_object"):
        await backend.complete(request)
        return
    for attempt in range(max_attempts):
        asked = request.at_attempt(attempt)
        invalid = reply_error(asked, await backend.complete(asked))
        if invalid is None:
            return
    other = "json_object (llama-cpp-python and many servers) or prompt" if mode == "json_schema" else "prompt"
    raise PreflightFailed(
        f"{backend.base_url} answered {max_attempts} {mode} request(s) for {target.model!r} with no schema-valid "
        f"reply (the last: {invalid}): the server does not follow the schema in this mode. Set "
        f"llm.structured_output: {other}."
    )


def preflight(targets: list[Target], settings: dict) -> list[str]:
    """Check every target at once: the warnings of a run that goes on (a model's, once for all its modes), or
    the first failure as one message."""

    async def run() -> list[list[str]]:
        return await asyncio.gather(*(check(target, settings) for target in targets))

    return list(dict.fromkeys(warning for warnings in asyncio.run(run()) for warning in warnings))  # once each
