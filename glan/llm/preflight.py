"""One check of each endpoint and model a run sends to, before its first job: a mistake in the URL, the
key, the model or the structured-output mode stops the run in seconds with one message that names the
URL, the model and the fix, instead of every job retrying it for minutes.

Steps, for each distinct (model, structured_output) of the run's OpenAI-compatible stages: the server
answers and takes the key (`GET /models`), the model is among those it serves (where it lists any),
and one small request in the chosen structured-output mode gets a schema-valid reply. In `prompt`
mode the probe asks only for a reply: the schema is in the prompt, every reply is validated anyway,
and a small model may need its attempts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from glan.config import KEYED_AS_BEFORE
from glan.llm.backends.openai_compat import OpenAIBackend
from glan.llm.request import Request
from glan.llm.retry import EndpointError, TransientError
from glan.llm.validate import reply_error

PROBE_SCHEMA = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}
PROBE_TOKENS = 64
PROBE_TIMEOUT = 60.0  # seconds: a server that answers slower than this is checked by the first job instead


class PreflightFailed(RuntimeError):
    """The endpoint cannot serve the run as configured; the message says what to change."""


@dataclass(frozen=True)
class Target:
    """What one preflight checks: a model, asked in one structured-output mode, on the run's endpoint."""

    model: str
    structured_output: str | None  # None: free text, asked with no schema
    stages: tuple[str, ...]

    @property
    def model_keys(self) -> str:
        return " or ".join(f"stages.{s}.llm.model" for s in self.stages)


async def check(target: Target, settings: dict) -> None:
    backend = OpenAIBackend({**settings, "timeout": min(settings["timeout"], PROBE_TIMEOUT)})
    try:
        await _served(backend, target)
        await _probe(backend, target)
    finally:
        await backend.aclose()


async def _served(backend: OpenAIBackend, target: Target) -> None:
    import openai

    url = backend.base_url
    try:
        served = [model.id async for model in backend.client.models.list()]
    except openai.APIConnectionError as error:
        raise PreflightFailed(
            f"nothing answers at {url} ({error}). Start the server there, or point OPENAI_BASE_URL at it "
            "(with its /v1)."
        ) from error
    except openai.APIStatusError as error:
        if error.status_code in (401, 403):  # the backend's words for a refused key, as a job would give them
            raise PreflightFailed(str(backend.failure(error))) from error
        return  # a server without a model list: the probe finds out
    if served and target.model not in served:
        raise PreflightFailed(
            f"{url} does not serve the model {target.model!r}; it serves {', '.join(map(repr, served[:10]))}. "
            f"Set {target.model_keys} to one of them."
        )


async def _probe(backend: OpenAIBackend, target: Target) -> None:
    mode = target.structured_output
    request = Request(
        model=target.model,
        messages=[{"role": "user", "content": 'Reply with the JSON object {"ok": true} and nothing else.'}],
        params={"temperature": 0, "max_tokens": PROBE_TOKENS},
        schema=None if mode is None else PROBE_SCHEMA,
        schema_name="preflight",
        structured_output=mode or KEYED_AS_BEFORE,
    )
    fix = (
        "Set llm.structured_output: json_object (llama-cpp-python and many servers) or prompt."
        if mode == "json_schema"
        else "Set llm.structured_output: prompt, or json_schema if the server takes it."
    )
    try:
        reply = await backend.complete(request)
    except (EndpointError, TransientError) as error:
        advice = "" if "structured_output" in str(error) else f". {fix}"
        raise PreflightFailed(f"a {mode} request for {target.model!r} failed: {error}{advice}") from error
    invalid = reply_error(request, reply)
    if invalid is not None and mode in ("json_schema", "json_object"):
        raise PreflightFailed(
            f"{backend.base_url} answered a {mode} request for {target.model!r} with an invalid reply ({invalid}). "
            + fix
        )


def preflight(targets: list[Target], settings: dict) -> None:
    """Check every target at once; the first failure, as one message."""

    async def run() -> None:
        await asyncio.gather(*(check(target, settings) for target in targets))

    asyncio.run(run())
