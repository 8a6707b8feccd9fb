"""Any OpenAI-compatible chat-completions endpoint: OpenAI, Azure's v1 API, vLLM, llama.cpp server, Ollama.

The endpoint and key come from OPENAI_BASE_URL and OPENAI_API_KEY, as the openai client reads them.
The key authenticates; it is never part of the identity, the cache or the logs. The client (and
the openai package, slow to import) is made at the first cache miss: a cached job never loads it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from glan.llm.request import Reply, Request
from glan.llm.retry import EndpointError, TransientError

if TYPE_CHECKING:
    import openai

OPENAI_SAMPLING = {"temperature", "top_p", "max_tokens", "stop", "presence_penalty", "frequency_penalty"}
# What the client's `create` takes by name; anything else of a body goes as `extra_body`.
CREATE_ARGUMENTS = {"model", "messages", "seed", "response_format", *OPENAI_SAMPLING}
USAGE = {"prompt_tokens", "completion_tokens", "total_tokens"}


def chat_body(request: Request) -> dict:
    """The JSON body of the chat completion a request is sent as: online, and in a Batch API input line."""
    body = {"model": request.model, "messages": request.messages, "seed": request.seed}
    body.update((k, v) for k, v in request.params.items() if k != "seed")
    if request.schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": request.schema_name or "reply", "schema": request.schema, "strict": True},
        }
    return body


def reply_of(completion: dict) -> Reply | None:
    """A chat completion's JSON (a Batch API output line's body) as a Reply; None when it has no choice."""
    if not completion.get("choices"):
        return None
    choice = completion["choices"][0]
    usage = completion.get("usage") or {}
    return Reply(
        text=(choice.get("message") or {}).get("content") or "",
        finish_reason=choice.get("finish_reason"),
        usage={k: usage[k] for k in USAGE if k in usage},
        model=completion.get("model"),
    )


DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIBackend:
    def __init__(self, settings: dict):
        self.timeout = settings["timeout"]
        self.base_url = (os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.identity = settings.get("endpoint") or f"openai:{self.base_url}"  # optional: unset means the base URL
        self._client: openai.AsyncOpenAI | None = None

    @property
    def client(self):
        if self._client is None:
            import openai

            self._client = openai.AsyncOpenAI(
                api_key=os.environ.get("OPENAI_API_KEY") or "no-key",
                base_url=self.base_url,
                timeout=self.timeout,
                max_retries=0,  # glan.llm.retry retries, the same way for every backend
            )
        return self._client

    async def complete(self, request: Request) -> Reply:
        import openai

        body = chat_body(request)
        extra = {k: body.pop(k) for k in list(body) if k not in CREATE_ARGUMENTS}
        try:
            response = await self.client.chat.completions.create(**body, extra_body=extra or None)
        except openai.APIConnectionError as error:  # timeouts included
            raise TransientError(type(error).__name__) from error
        except openai.APIStatusError as error:
            status = error.status_code
            if status in (408, 409, 429) or status >= 500:
                raise TransientError(f"HTTP {status}", _retry_after(error.response), status == 429) from error
            if status == 401:
                raise EndpointError(f"{self.identity} refused the key (HTTP 401): set OPENAI_API_KEY") from error
            raise EndpointError(f"{self.identity} answered HTTP {status}: {error.message}") from error
        if not response.choices:
            raise TransientError("reply without choices")
        choice = response.choices[0]
        return Reply(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason,
            usage=response.usage.model_dump(include=USAGE) if response.usage else {},
            model=response.model,
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()


def _retry_after(response) -> float | None:
    try:
        return float(response.headers.get("retry-after"))
    except (TypeError, ValueError):
        return None
