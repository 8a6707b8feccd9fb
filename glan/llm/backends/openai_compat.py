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

        sampling = {k: v for k, v in request.params.items() if k in OPENAI_SAMPLING}
        extra = {k: v for k, v in request.params.items() if k not in OPENAI_SAMPLING and k != "seed"}
        kwargs = {}
        if request.schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.schema_name or "reply", "schema": request.schema, "strict": True},
            }
        try:
            response = await self.client.chat.completions.create(
                model=request.model,
                messages=request.messages,
                seed=request.seed,
                extra_body=extra or None,
                **sampling,
                **kwargs,
            )
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
            usage=response.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"})
            if response.usage
            else {},
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
