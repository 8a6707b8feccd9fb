"""Any OpenAI-compatible chat-completions endpoint: OpenAI, Azure's v1 API, vLLM, llama.cpp server, Ollama.

The endpoint and key come from OPENAI_BASE_URL and OPENAI_API_KEY, as the openai client reads them.
The key authenticates; it is never part of the identity, the cache or the logs.
"""

from __future__ import annotations

import os

import openai

from glan.llm.request import Reply, Request

OPENAI_SAMPLING = {"temperature", "top_p", "max_tokens", "stop", "presence_penalty", "frequency_penalty"}


class OpenAIBackend:
    def __init__(self, settings: dict):
        self.client = openai.AsyncOpenAI(
            api_key=os.environ.get("OPENAI_API_KEY") or "no-key",
            timeout=settings.get("timeout", 120),
            max_retries=settings.get("client_retries", 2),
        )
        self.identity = settings.get("endpoint") or "openai:" + str(self.client.base_url).rstrip("/")

    async def complete(self, request: Request) -> Reply:
        sampling = {k: v for k, v in request.params.items() if k in OPENAI_SAMPLING}
        extra = {k: v for k, v in request.params.items() if k not in OPENAI_SAMPLING and k != "seed"}
        kwargs = {}
        if request.schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.schema_name or "reply", "schema": request.schema, "strict": True},
            }
        response = await self.client.chat.completions.create(
            model=request.model,
            messages=request.messages,
            seed=request.seed,
            extra_body=extra or None,
            **sampling,
            **kwargs,
        )
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
        await self.client.close()
