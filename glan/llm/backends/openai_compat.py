"""Any OpenAI-compatible chat-completions endpoint: OpenAI, Azure's v1 API, vLLM, llama.cpp server, Ollama.

The endpoint and key come from OPENAI_BASE_URL and OPENAI_API_KEY, as the openai client reads them.
The key authenticates; it is never part of the identity, the cache or the logs. The client (and
the openai package, slow to import) is made at the first cache miss: a cached job never loads it.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

import orjson

from glan.llm.request import Reply, Request
from glan.llm.retry import EndpointError, TransientError

if TYPE_CHECKING:
    import openai

USAGE = ("prompt_tokens", "completion_tokens", "total_tokens")
# Of each details dict of a usage, what accounting prices or reports; a server that gives none is stored as before.
USAGE_DETAILS = {"prompt_tokens_details": ("cached_tokens",), "completion_tokens_details": ("reasoning_tokens",)}
SCHEMA_IN_PROMPT = "Reply with only a JSON object, and no other text, that matches this JSON Schema:"
# llama.cpp's grammar parser takes no string longer than 1001 characters, and llama-cpp-python's server
# (0.3.36) crashes on such a schema. json_object mode (llama-cpp-python's) sends string limits capped here.
# No key changes (keys hash requests, not bodies); online, a reply is validated against the request's own
# schema, and a batch line against the body's (glan.llm.batch reads the schema back from it).
GRAMMAR_MAX_LENGTH = 1000


def chat_body(request: Request) -> dict:
    """The JSON body of the chat completion a request is sent as: online, and in a Batch API input line."""
    body = {"model": request.model, "messages": request.messages, "seed": request.seed}
    body.update((k, v) for k, v in request.params.items() if k != "seed")
    if request.schema is None:
        return body
    if request.structured_output == "json_schema":
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": request.schema_name or "reply", "schema": request.schema, "strict": True},
        }
    elif request.structured_output == "json_object":
        body["response_format"] = {"type": "json_object", "schema": _grammar_safe(request.schema)}
    else:  # prompt: for a server that takes no response_format; the reply is validated all the same
        *before, last = request.messages
        instruction = f"{last['content']}\n\n{SCHEMA_IN_PROMPT}\n{orjson.dumps(request.schema).decode()}"
        body["messages"] = [*before, {**last, "content": instruction}]
    return body


def _grammar_safe(schema):
    if isinstance(schema, dict):
        safe = {k: _grammar_safe(v) for k, v in schema.items()}
        if isinstance(safe.get("maxLength"), int) and safe["maxLength"] > GRAMMAR_MAX_LENGTH:
            safe["maxLength"] = GRAMMAR_MAX_LENGTH
        return safe
    if isinstance(schema, list):
        return [_grammar_safe(item) for item in schema]
    return schema


def schema_of(body: dict) -> dict | None:
    """The schema a chat body asks its reply to match, whichever way chat_body put it there."""
    response_format = body.get("response_format") or {}
    if "schema" in response_format:
        return response_format["schema"]
    if "json_schema" in response_format:
        return response_format["json_schema"].get("schema")
    last = body["messages"][-1]["content"] if body.get("messages") else ""
    _, found, schema = last.rpartition(f"\n\n{SCHEMA_IN_PROMPT}\n")
    return orjson.loads(schema) if found else None


def usage_of(usage: dict | None) -> dict:
    """The usage a reply stores: the token counts, and the cached and reasoning tokens nested as the server
    gives them (a null or absent one left out, an empty details dict too)."""
    usage = usage or {}
    kept = {k: usage[k] for k in USAGE if k in usage}
    for name, fields in USAGE_DETAILS.items():
        given = usage.get(name) or {}
        details = {f: given[f] for f in fields if given.get(f) is not None}
        if details:
            kept[name] = details
    return kept


def reply_of(completion: dict) -> Reply | None:
    """A chat completion's JSON (a Batch API output line's body) as a Reply; None when it has no choice."""
    if not completion.get("choices"):
        return None
    choice = completion["choices"][0]
    return Reply(
        text=(choice.get("message") or {}).get("content") or "",
        finish_reason=choice.get("finish_reason"),
        usage=usage_of(completion.get("usage")),
        model=completion.get("model"),
    )


DEFAULT_BASE_URL = "https://api.openai.com/v1"


def base_url() -> str:
    return (os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


def identity(settings: dict) -> str:
    """The endpoint's identity in cache keys: `llm.endpoint`, or unset, the base URL (never the key)."""
    return settings.get("endpoint") or f"openai:{base_url()}"


class OpenAIBackend:
    def __init__(self, settings: dict):
        self.timeout = settings["timeout"]
        self.base_url = base_url()
        self.identity = identity(settings)
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

    @property
    def batch_api(self):
        """The same client: an OpenAI-compatible endpoint's Batch API is at its base URL."""
        return self.client

    async def complete(self, request: Request) -> Reply:
        """Posted through the client's own HTTP layer (its auth, base URL, timeouts, connection pool and
        errors), not its typed `create`: that one's parameter transforms and response models took more
        CPU than the rest of a request's path (bench/edit.py). The reply's JSON is read as a batch line's."""
        import openai

        try:
            content = await self.client.post("/chat/completions", body=chat_body(request), cast_to=bytes)
        except openai.APIConnectionError as error:  # timeouts included
            raise TransientError(f"{self.base_url} did not answer ({type(error).__name__}: {error})") from error
        except openai.APIStatusError as error:
            raise self.failure(error) from error
        try:
            reply = reply_of(orjson.loads(content))
        except (orjson.JSONDecodeError, AttributeError) as error:
            raise TransientError(
                f"{self.base_url} answered what is not a chat completion: {content[:200]!r}"
            ) from error
        if reply is None:
            raise TransientError("reply without choices")
        return reply

    def failure(self, error) -> TransientError | EndpointError:
        """What an HTTP error status means: worth asking again, or a permanent error in the server's
        words with what to change. A 5xx whose body says the request is invalid is permanent too
        (llama-cpp-python answers an unsupported response_format with HTTP 500)."""
        status, words = error.status_code, server_words(error)
        said = f"{self.base_url} answered HTTP {status}: {words}"
        if status in (401, 403):
            return EndpointError(f"{said}. The key was refused: set OPENAI_API_KEY")
        if transient_status(status, words):
            return TransientError(said, retry_after(error.response), status == 429)
        if "response_format" in words or "json_schema" in words:
            return EndpointError(
                f"{said}. The server does not take this structured output: set llm.structured_output: "
                "json_object (llama-cpp-python, many servers) or prompt"
            )
        if status == 404 or "model" in words.lower():
            return EndpointError(f"{said}. Check llm.model (GET {self.base_url}/models lists the served models)")
        return EndpointError(said)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()


# A server's words for a request it will never accept (pydantic's, FastAPI's, OpenAI's own).
REQUEST_INVALID = re.compile(r"validation error|invalid_request|Input should be|unsupported|not supported", re.I)


def transient_status(status: int, words: str) -> bool:
    """Whether an HTTP error status is worth asking again: a timeout, a conflict, a 429 or a 5xx that does not
    say the request itself is invalid. Online replies and the Batch API's calls and lines are judged alike."""
    return status in (408, 409, 429) or (status >= 500 and not REQUEST_INVALID.search(words))


PYDANTIC_MESSAGE = re.compile(r"""'loc': \(([^)]*)\).*?'msg': (["'])(.*?)\2""", re.S)
WORDS = 300  # characters of a server's message kept in an error


def server_words(error) -> str:
    """The server's own message of an openai.APIStatusError, in a line: OpenAI's `error.message`, FastAPI's
    `detail`, or the field and message of a validation error (not its traceback)."""
    body = error.body
    message = None
    if isinstance(body, dict):
        detail = body.get("detail")  # FastAPI's, for an HTTPException
        message = body.get("message") or (detail if isinstance(detail, str) else None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = body["error"].get("message") or message
    text = str(message or body or error.message)
    found = PYDANTIC_MESSAGE.search(text)
    if found:
        where = ".".join(part.strip(" '\"") for part in found.group(1).split(",") if part.strip())
        text = f"{where}: {found.group(3)}" if where else found.group(3)
    text = " ".join(text.split("\n\n")[0].split())
    return text[:WORDS] + ("…" if len(text) > WORDS else "")


def retry_after(response) -> float | None:
    """A 429 or 503's Retry-After header, in seconds; None when absent or not a number."""
    try:
        return float(response.headers.get("retry-after"))
    except (TypeError, ValueError):
        return None
