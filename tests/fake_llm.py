"""A loopback server speaking the OpenAI chat-completions API, for tests and benchmarks.

It shares no code with the package it tests: what it reads of a request (the schema asked for) and
what it reports (cached prompt tokens) it works out on its own, from the OpenAI API's documented
behaviour, so a bug in the product's request building or prefix counting shows in a test.

Replies are deterministic functions of the request (model, messages, seed): a JSON document that
fits the requested schema, or a line of text. It counts requests and keeps their bodies and
headers, so tests can assert exactly what was sent.

Faults can be injected: `faults` is the share of requests (chat completions and `GET /v1/models`,
drawn at random from the server's seeded generator, so any request may fail, the first one too, and
the same request sent again may pass) answered with a transport fault (429 with Retry-After, 500,
503, a dropped connection, a reply slower than the client waits); `bad_replies` the share of
requests (chosen by their content, so the same request is always bad) answered with an invalid reply
(not JSON, the wrong shape, cut off by the token cap, empty).

As real servers differ: `GET /v1/models` lists `listed_models`, apart from `answered_models` (a
request for a model not among them is answered 404 `model_not_found`; by default any model is
answered); with `api_key` set, a request with another key is answered `wrong_key_status` with
`wrong_key_message` (401, as OpenAI; LiteLLM's proxy without a database says 400 `No connected db.`).
A `json_schema` response_format OpenAI refuses (a bad name; in strict mode an object left open or with
a property not required) is answered 400 with OpenAI's words, so a schema the product sends that OpenAI
would refuse fails the tests too.

It also speaks the Files and Batches endpoints of the OpenAI Batch API (upload, create, retrieve,
list, cancel, output and error files), so batch mode is tested through the real client. A batch
moves through `validating`, `in_progress` and `finalizing` to `completed` in `batch_seconds`, its
lines answered one by one as time passes (by `reply_to`, as online) and written to the output file
in a shuffled order. Its faults: `batch_line_faults` (a share of lines answered with status 500,
chosen by custom_id and attempt), `batch_expire` (the share of lines done before a batch expires),
`batch_fail` (the next batch fails validation), `token_limit_failures` (the next N batches fail
with `token_limit_exceeded`), `hold_create_seconds` (a created batch's id is answered late),
`batch_line_rejects` (a share of lines refused with a permanent 400, every time they are sent),
`batch_api_faults` (the next calls of a Files or Batches operation answered 429, 5xx, a 4xx or a
dropped connection), `lost_output_files` and `malformed_output_lines` (an output file deleted before
it is read; a line that is not JSON amid the others). Files can be listed and deleted, and keep the
expiry they were given (`expires_after` on upload, a batch's `output_expires_after`): `held_files`
is what the provider still holds. What a provider would bill is counted per custom_id
(`billed_per_key`, `lines_billed`), apart from the online `requests`; the calls of the Files and
Batches endpoints per operation (`api_calls`).
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import orjson


def _digest(*parts) -> str:
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _chance(*parts) -> float:
    """A number in [0, 1] that the parts fix."""
    return int(_digest(*parts)[:8], 16) / 0xFFFFFFFF


def fake_value(schema: dict, seed: str, name: str = "value"):
    """The same schema and seed give the same value; array items and fields differ from one another."""
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][int(_digest(seed, name)[:8], 16) % len(schema["enum"])]
    if kind == "object":
        return {key: fake_value(sub, _digest(seed, key), key) for key, sub in schema["properties"].items()}
    if kind == "array":
        count = schema.get("maxItems", 3)
        return [fake_value(schema["items"], _digest(seed, i), name) for i in range(count)]
    if kind == "integer":
        return int(_digest(seed)[:4], 16)
    if kind == "number":
        return int(_digest(seed)[:4], 16) / 7
    if kind == "boolean":
        return int(_digest(seed)[:1], 16) % 2 == 0
    text = f"{name} {_digest(seed)[:10]}"
    return text[: schema.get("maxLength", len(text))]


def requested_schema(body: dict) -> dict | None:
    """The JSON Schema a chat body asks its reply to fit, read as the API documents it: OpenAI's
    `response_format.json_schema.schema`, llama.cpp's `response_format.schema` (its json_object mode), or,
    with no response_format, a schema the prompt ends with (its last line, a JSON object with a type)."""
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return (response_format.get("json_schema") or {}).get("schema")
    if isinstance(response_format.get("schema"), dict):
        return response_format["schema"]
    messages = body.get("messages") or [{}]
    content = messages[-1].get("content")
    last_line = content.rstrip().rsplit("\n", 1)[-1] if isinstance(content, str) else ""
    if not last_line.startswith("{"):
        return None
    try:
        schema = orjson.loads(last_line)
    except orjson.JSONDecodeError:
        return None
    return schema if isinstance(schema, dict) and "type" in schema else None


SCHEMA_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def response_format_error(response_format: dict) -> str | None:
    """Why OpenAI refuses a `json_schema` response_format (None if it takes it): a name of 1-64 letters,
    digits, _ or -, a schema, and in strict mode every object closed (`additionalProperties: false`) with
    every property required."""
    if response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema") or {}
    if not isinstance(spec.get("name"), str) or not SCHEMA_NAME.match(spec["name"]):
        return "Invalid 'response_format.json_schema.name': a string of 1-64 letters, digits, underscores or dashes."
    if not isinstance(spec.get("schema"), dict):
        return "Missing required parameter: 'response_format.json_schema.schema'."
    if not spec.get("strict"):
        return None
    for where, node in subschemas(spec["schema"], ()):
        if node.get("type") != "object":
            continue
        if node.get("additionalProperties") is not False:
            return (
                f"Invalid schema for response_format '{spec['name']}': In context={where}, 'additionalProperties' "
                "is required to be supplied and to be false."
            )
        missing = [key for key in node.get("properties", {}) if key not in node.get("required", [])]
        if missing:
            return (
                f"Invalid schema for response_format '{spec['name']}': In context={where}, 'required' is required "
                f"to be supplied and to be an array including every key in properties. Missing '{missing[0]}'."
            )
    return None


def subschemas(schema: dict, where: tuple):
    """Every schema within `schema` (itself included), with the path of keys to it."""
    yield where, schema
    for key, sub in (schema.get("properties") or {}).items():
        yield from subschemas(sub, (*where, "properties", key))
    for keyword in ("items", "additionalProperties"):
        if isinstance(schema.get(keyword), dict):
            yield from subschemas(schema[keyword], (*where, keyword))
    for keyword in ("anyOf", "allOf", "oneOf"):
        for index, sub in enumerate(schema.get(keyword) or []):
            yield from subschemas(sub, (*where, keyword, str(index)))
    for keyword in ("$defs", "definitions"):
        for name, sub in (schema.get(keyword) or {}).items():
            yield from subschemas(sub, (*where, keyword, name))


class PromptCache:
    """What a provider's prompt cache holds for one model: a hash of each prompt's prefix at every step
    boundary. A prefix sent before has all its shorter boundaries in the set too, so the longest one in it
    is the prompt's longest prefix an earlier prompt had, in whole steps."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.prefixes: set[bytes] = set()

    def add(self, prompt: bytes) -> int:
        """Remember `prompt`; the bytes of its longest prefix, in whole steps, that an earlier prompt had."""
        seen = 0
        for end in range(self.step, len(prompt) + 1, self.step):
            digest = hashlib.sha256(prompt[:end]).digest()
            if digest in self.prefixes:
                seen = end
            self.prefixes.add(digest)
        return seen


def cached_tokens(prefix_tokens: int, prompt_tokens: int, rule: tuple[int, int]) -> int:
    """What OpenAI reports as `cached_tokens`: nothing for a prompt or a prefix under the minimum, else the
    prefix in whole steps."""
    minimum, step = rule
    if prompt_tokens < minimum or prefix_tokens < minimum:
        return 0
    return prefix_tokens - prefix_tokens % step


BATCH_ENDPOINT = "/v1/chat/completions"
BATCH_API = re.compile(r"^/v1/(files|batches)(/|\?|$)")  # the paths of the Files and Batches endpoints
MAX_BATCH_LINES = 50_000
# When a batch's phases end, as shares of its batch_seconds: validating, then in_progress (its lines are
# answered evenly over it), then finalizing to the end. A cancelled batch is `cancelling` for CANCEL_DELAY.
VALIDATED, ANSWERED, CANCEL_DELAY = 0.1, 0.8, 0.1
TERMINAL = {"completed", "expired", "cancelled", "failed"}
JSON = "application/json"
TOKEN_BYTES = 4  # what the server counts as a token, of a prompt and of a reply
# OpenAI's prompt caching: prompts of 1,024 tokens or more, hits in steps of 128 tokens.
OPENAI_CACHING = (1024, 128)


class ApiError(Exception):
    """An error answer of the Files or Batches endpoints, as OpenAI shapes it."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code

    def document(self) -> dict:
        return api_error(str(self), self.code)


def api_error(message: str, code: str | None) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


def batch_error(code: str, message: str, line: int | None = None) -> dict:
    return {"code": code, "message": message, "param": None, "line": line}


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))
    expires_at: int | None = None

    def document(self) -> dict:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


@dataclass
class BatchLine:
    number: int  # its line in the input file, from 1
    custom_id: str
    body: dict
    fails: bool = False  # answered with status 500
    rejected: bool = False  # answered with status 400, a request no retry makes valid


@dataclass
class FakeBatch:
    id: str
    input_file_id: str
    metadata: dict | None
    custom_ids: list[str]  # in the input file's order
    lines: list[BatchLine]  # in the order they are answered (shuffled); none if the batch fails validation
    stop: int  # how many of `lines` are answered before the batch ends
    errors: list[dict] | None  # why it fails validation
    seconds: float
    expires: bool  # ends as expired after `stop` lines, not completed
    model: str | None = None
    output_expiry: int | None = None  # seconds after creation its output and error files expire
    created: float = field(default_factory=time.monotonic)
    wall: float = field(default_factory=time.time)
    status: str = "validating"
    answered: int = 0
    output: list[bytes] = field(default_factory=list)
    failures: list[bytes] = field(default_factory=list)
    times: dict[str, int] = field(default_factory=dict)
    cancel_at: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None

    def at(self, share: float) -> float:
        return self.created + share * self.seconds

    def due(self, index: int) -> float:
        """When line `index` (in answering order) is answered: evenly over the in_progress phase."""
        return self.at(VALIDATED + (ANSWERED - VALIDATED) * (index + 1) / len(self.lines))

    def enter(self, status: str, when: float) -> None:
        self.status = status
        self.times.setdefault(f"{status}_at", int(self.wall + when - self.created))

    def document(self) -> dict:
        times = ("in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at")
        validated = self.status not in ("validating", "failed")
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": BATCH_ENDPOINT,
            "model": self.model,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": int(self.wall),
            "expires_at": int(self.wall) + 24 * 3600,
            **{name: self.times.get(name) for name in (*times, "cancelling_at", "cancelled_at")},
            "request_counts": {
                "total": len(self.lines) if validated else 0,
                "completed": len(self.output),
                "failed": len(self.failures),
            },
            "metadata": self.metadata,
        }


def read_batch_input(data: bytes) -> tuple[list[BatchLine], list[dict]]:
    """The lines of a batch input file, and what makes it fail validation (codes as OpenAI names them)."""
    lines: list[BatchLine] = []
    errors: list[dict] = []
    seen: set[str] = set()
    models: set[str] = set()
    for number, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            errors.append(batch_error("invalid_json_line", "This line is not parseable as valid JSON.", number))
            continue
        body = line.get("body") if isinstance(line, dict) else None
        if not isinstance(body, dict) or not isinstance(line.get("custom_id"), str) or line.get("method") != "POST":
            errors.append(batch_error("invalid_request", "A line needs a custom_id, method POST and a body.", number))
        elif line.get("url") != BATCH_ENDPOINT:
            errors.append(
                batch_error("url_mismatch", f"The url must be the batch's endpoint {BATCH_ENDPOINT}.", number)
            )
        elif line["custom_id"] in seen:
            errors.append(batch_error("duplicate_custom_id", "The custom_id of this line is not unique.", number))
        elif not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list):
            errors.append(batch_error("invalid_request", "The body needs a model and messages.", number))
        elif models and body["model"] not in models:
            errors.append(batch_error("model_mismatch", "All lines of a file must use the same model.", number))
        else:
            seen.add(line["custom_id"])
            models.add(body["model"])
            lines.append(BatchLine(number, line["custom_id"], body))
    if not lines and not errors:
        errors.append(batch_error("empty_file", "The input file is empty."))
    if len(lines) > MAX_BATCH_LINES:
        errors.append(batch_error("too_many_tasks", f"A batch holds at most {MAX_BATCH_LINES} requests."))
    return lines, errors


def expiry_of(expires_after) -> int | None:
    """The seconds of an `expires_after` ({"anchor": "created_at", "seconds": N}), as OpenAI bounds them."""
    if expires_after is None:
        return None
    if not isinstance(expires_after, dict) or expires_after.get("anchor") != "created_at":
        raise ApiError(400, "expires_after.anchor must be created_at.")
    seconds = expires_after.get("seconds")
    if not isinstance(seconds, int) or not 3600 <= seconds <= 2_592_000:
        raise ApiError(400, "expires_after.seconds must be from 3600 (one hour) to 2592000 (30 days).")
    return seconds


def list_page(items: list, query: dict[str, str], most: int, default: str) -> dict:
    """One page of a list endpoint: `limit` items (1 to `most`) after the one whose id is `after`."""
    limit = query.get("limit", default)
    if not limit.isdigit() or not 1 <= int(limit) <= most:
        raise ApiError(400, f"limit must be an integer from 1 to {most}, not {limit}.")
    ids = [item.id for item in items]
    start = ids.index(query["after"]) + 1 if query.get("after") in ids else 0
    end = start + int(limit)
    page = [item.document() for item in items[start:end]]
    first, last = (page[0]["id"], page[-1]["id"]) if page else (None, None)
    return {"object": "list", "data": page, "first_id": first, "last_id": last, "has_more": end < len(ids)}


def valid_metadata(metadata) -> bool:
    """Up to 16 string pairs, keys up to 64 characters and values up to 512."""
    if not isinstance(metadata, dict) or len(metadata) > 16:
        return False
    return all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512 for k, v in metadata.items()
    )


def multipart_fields(headers: Message, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a multipart/form-data body: name -> (filename, the bytes exactly as sent)."""
    boundary = headers.get_boundary()
    if headers.get_content_type() != "multipart/form-data" or not boundary:
        raise ApiError(400, "An upload is a multipart/form-data request.")
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in (b"\r\n" + body).split(b"\r\n--" + boundary.encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part.partition(b"\r\n\r\n")
        part_headers = BytesParser().parsebytes(head.lstrip(b"\r\n") + b"\r\n\r\n", headersonly=True)
        name = part_headers.get_param("name", header="content-disposition")
        if isinstance(name, str):
            fields[name] = (part_headers.get_filename(), data)
    return fields


class FakeLLM:
    FAULTS = ("429", "500", "503", "drop", "slow")

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        faults: float = 0.0,
        bad_replies: float = 0.0,
        slow_seconds: float = 3.0,
        seed: int = 0,
        batch_seconds: float = 1.0,
        batch_line_faults: float = 0.0,
        batch_expire: float = 0.0,
        batch_fail: bool = False,
        token_limit_failures: int = 0,
        hold_create_seconds: float = 0.0,
        hold_upload_seconds: float = 0.0,
        hold_content_seconds: float = 0.0,
        batch_line_rejects: float = 0.0,
        batch_api_faults: dict[str, list[str]] | None = None,
        lost_output_files: int = 0,
        malformed_output_lines: int = 0,
        cache_rule: tuple[int, int] = OPENAI_CACHING,
        reasoning_tokens: int = 0,
        listed_models: list[str] | None = None,
        answered_models: list[str] | None = None,
        api_key: str | None = None,
        wrong_key_status: int = 401,
        wrong_key_message: str = "Incorrect API key provided.",
    ):
        """Models and keys: `GET /v1/models` lists `listed_models` (by default `answered_models`, or none);
        chat completions answer any model unless `answered_models` names them (others: 404
        `model_not_found`). With `api_key`, a request to any endpoint whose bearer token is another one is
        answered `wrong_key_status` with `wrong_key_message`; without it, any key is taken.

        Batch knobs, read when a batch is created (so they may be changed between runs):
        batch_seconds: how long a batch takes from create to completed;
        batch_line_faults: the share of lines answered with status 500 (by custom_id and how many times
            it was sent before, so a line sent again may succeed);
        batch_expire: if set (0 < share <= 1), every batch expires with this share of its lines done
            (rounded down; 0 is off);
        batch_fail: the next valid batch fails validation (the knob is spent on it);
        token_limit_failures: the next N valid batches fail with `token_limit_exceeded`;
        hold_create_seconds: a batch is created and counted, and only then is the create answered;
        hold_upload_seconds, hold_content_seconds: likewise for an upload (stored and counted first) and
            for the download of a file's content (counted in `downloads` first);
        batch_line_rejects: the share of lines (by custom_id alone, so a line sent again is refused again)
            answered with status 400 `context_length_exceeded`, not billed;
        batch_api_faults: operation -> the faults its next calls answer, one a call, in order: "429",
            "500", "503", "drop" (the connection closed unanswered) or a 4xx status such as "400"; the
            operations are upload, create, retrieve, list, cancel, content, delete and files (the list);
        lost_output_files: the next N batches that end with an output file have it deleted at once (its
            id is named by the batch, its content answers 404), as an expired or deleted file;
        malformed_output_lines: the next batch that ends with an output file gets so many lines that are
            not JSON amid its lines (lines of no request: every request's line is still there).

        Usage, online and in batch: a token is 4 bytes (of the reply's text; of the request's messages as
        JSON), and `prompt_tokens_details.cached_tokens` is the prompt's longest prefix, in whole steps
        of `cache_rule` (minimum, step; OpenAI's by default), that an earlier request of the same model
        had, and none below the minimum, as a provider with prefix caching counts it (so what is cached
        follows the order requests arrive in). At the test configs' sizes prompts are under 1,024 tokens:
        `cache_rule=(0, 128)` counts their shared prefixes. `reasoning_tokens`: so many more a reply,
        reported as `completion_tokens_details.reasoning_tokens` and counted in `completion_tokens`."""
        self.latency = latency
        self.faults = faults
        self.bad_replies = bad_replies
        self.slow_seconds = slow_seconds
        self.faults_injected: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._rng = random.Random(seed)
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self._lock = threading.Lock()
        self.batch_seconds = batch_seconds
        self.batch_line_faults = batch_line_faults
        self.batch_expire = batch_expire
        self.batch_fail = batch_fail
        self.token_limit_failures = token_limit_failures
        self.hold_create_seconds = hold_create_seconds
        self.hold_upload_seconds = hold_upload_seconds
        self.hold_content_seconds = hold_content_seconds
        self.batch_line_rejects = batch_line_rejects
        self.batch_api_faults = {name: list(faults) for name, faults in (batch_api_faults or {}).items()}
        self.lost_output_files = lost_output_files
        self.malformed_output_lines = malformed_output_lines
        self.api_calls: Counter[str] = Counter()  # operation of the Files and Batches endpoints -> calls
        self.files_deleted: list[str] = []
        self.cache_rule = cache_rule
        self.reasoning_tokens = reasoning_tokens
        self.answered_models = answered_models
        self.listed_models = listed_models if listed_models is not None else list(answered_models or [])
        self.api_key = api_key
        self.wrong_key_status = wrong_key_status
        self.wrong_key_message = wrong_key_message
        self._prompts: dict[str, PromptCache] = {}  # model -> the prefixes of its prompts: the provider's cache
        self._prompts_lock = threading.Lock()  # apart from _lock, which batch lines are answered under
        self.downloads = 0
        self.batches_created: list[str] = []  # batch ids, in creation order
        self.files_uploaded = 0
        self._batch_requests: list[dict] = []  # bodies of the batch lines answered (200 or 500)
        self._billed: Counter[str] = Counter()  # custom_id -> times answered with status 200
        self._attempts: Counter[str] = Counter()  # custom_id -> times sent in a batch that passed validation
        self._files: dict[str, StoredFile] = {}
        self._batches: dict[str, FakeBatch] = {}  # in creation order
        self._ids = itertools.count(1)
        self._closing = threading.Event()
        ThreadingHTTPServer.request_queue_size = 1024  # the default backlog of 5 stalls bursts for a second
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        # shutdown() waits for the loop's next poll: 50 ms, not the default half second, at the end of every test
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def reset(self) -> None:
        """Clear the counters, online and batch; files and batches stay, as they would at a provider."""
        with self._lock:
            self._advance_batches()  # what was done before the reset is billed before it
            self.requests.clear()
            self.headers.clear()
            self.max_in_flight = 0
            self.batches_created.clear()
            self.files_uploaded = 0
            self.api_calls.clear()
            self.files_deleted.clear()
            self.downloads = 0
            self._batch_requests.clear()
            self._billed.clear()

    @property
    def billed_per_key(self) -> Counter[str]:
        """custom_id -> how many times a batch answered it with status 200 (what a provider bills)."""
        with self._lock:
            self._advance_batches()
            return Counter(self._billed)

    @property
    def lines_billed(self) -> int:
        return self.billed_per_key.total()

    @property
    def batch_requests(self) -> list[dict]:
        """The bodies of the batch lines answered so far (apart from the online `requests`)."""
        with self._lock:
            self._advance_batches()
            return list(self._batch_requests)

    @property
    def held_files(self) -> list[dict]:
        """The documents of the files the provider still holds (not deleted), output files included."""
        with self._lock:
            self._advance_batches()
            return [stored.document() for stored in self._files.values()]

    def batch_custom_ids(self, batch_id: str) -> list[str]:
        """The custom_ids of a batch's input file, in its order."""
        with self._lock:
            return list(self._batches[batch_id].custom_ids)

    def pick_fault(self) -> str | None:
        with self._lock:
            if self._rng.random() >= self.faults:
                return None
            fault = self._rng.choice(self.FAULTS)
            self.faults_injected.append(fault)
            return fault

    def refusal(self, headers: Message, body: dict | None) -> tuple[int, dict] | None:
        """Status and error document of a request with a wrong key or (a chat body) for a model not
        answered or with a json_schema OpenAI refuses, as OpenAI words them; None for one that is answered."""
        if self.api_key is not None and headers.get("Authorization") != f"Bearer {self.api_key}":
            return self.wrong_key_status, api_error(self.wrong_key_message, "invalid_api_key")
        if body is not None and self.answered_models is not None and body.get("model") not in self.answered_models:
            message = f"The model `{body.get('model')}` does not exist or you do not have access to it."
            return 404, api_error(message, "model_not_found")
        invalid = None if body is None else response_format_error(body.get("response_format") or {})
        return None if invalid is None else (400, api_error(invalid, None))

    def model_list(self) -> dict:
        models = [{"id": name, "object": "model", "created": 0, "owned_by": "fake"} for name in self.listed_models]
        return {"object": "list", "data": models}

    def reply_to(self, body: dict) -> dict:
        seed = _digest(body["model"], body["messages"], body.get("seed"))
        schema = requested_schema(body)
        structured = schema is not None
        finish_reason = "stop"
        if int(seed[-8:], 16) / 0xFFFFFFFF < self.bad_replies:
            kinds = ["not-json", "wrong-shape", "length", "empty"] if structured else ["length", "empty"]
            kind = kinds[int(seed[:8], 16) % len(kinds)]
            content = {
                "not-json": '{"subjects": [',
                "wrong-shape": '{"unexpected": 1}',
                "length": "It is",
                "empty": "",
            }[kind]
            finish_reason = "length" if kind == "length" else "stop"
        elif structured:
            content = orjson.dumps(fake_value(schema, seed)).decode()
            if not body.get("response_format"):  # as a chat model answers a schema in the prompt
                content = f"Here is the JSON:\n```json\n{content}\n```\nI hope it helps."
        else:
            content = f"Reply {seed[:16]} to: {body['messages'][-1]['content'][:80]}"
        return {
            "id": f"chatcmpl-{seed[:12]}",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}
            ],
            "usage": self.usage(body, content),
        }

    def usage(self, body: dict, content: str) -> dict:
        """Tokens of a reply, with the prompt's cached prefix (see __init__); the prefix is remembered."""
        prompt = orjson.dumps(body["messages"])
        prompt_tokens = len(prompt) // TOKEN_BYTES
        completion_tokens = len(content) // TOKEN_BYTES + self.reasoning_tokens
        with self._prompts_lock:
            cache = self._prompts.setdefault(body["model"], PromptCache(self.cache_rule[1] * TOKEN_BYTES))
            prefix = cache.add(prompt) // TOKEN_BYTES
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens(prefix, prompt_tokens, self.cache_rule)},
        }
        if self.reasoning_tokens:
            usage["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return usage

    # -- Files and Batches endpoints ----------------------------------------------------------------

    def answer_batch_api(self, method: str, target: str, headers: Message, body: bytes) -> tuple[int, bytes, str]:
        """Status, payload and content type of a request to the Files or Batches endpoints."""
        url = urlsplit(target)
        route = url.path.strip("/").split("/")[1:]
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        try:
            match method, route:
                case "POST", ["files"]:
                    document = self._upload(multipart_fields(headers, body))
                case "GET", ["files"]:
                    document = self._list_files(query)
                case "GET", ["files", file_id]:
                    document = self._file(file_id).document()
                case "DELETE", ["files", file_id]:
                    document = self._delete(file_id)
                case "GET", ["files", file_id, "content"]:
                    return 200, self._download(file_id), "application/octet-stream"
                case "POST", ["batches"]:
                    document = self._create_batch(body)
                case "GET", ["batches"]:
                    document = self._list_batches(query)
                case "GET", ["batches", batch_id]:
                    with self._lock:
                        document = self._batch(batch_id).document()
                case "POST", ["batches", batch_id, "cancel"]:
                    document = self._cancel(batch_id)
                case _:
                    raise ApiError(404, f"Unknown request URL: {method} {url.path}")
        except ApiError as error:
            return error.status, orjson.dumps(error.document()), JSON
        return 200, orjson.dumps(document), JSON

    def api_fault(self, method: str, target: str) -> str | None:
        """Count a call of the Files or Batches endpoints by its operation; the fault it is answered with, if any."""
        route = urlsplit(target).path.strip("/").split("/")[1:]
        operation = {
            ("POST", 1): "upload" if route[0] == "files" else "create",
            ("GET", 1): "files" if route[0] == "files" else "list",
            ("GET", 2): "retrieve",
            ("DELETE", 2): "delete",
            ("GET", 3): "content",
            ("POST", 3): "cancel",
        }.get((method, len(route)), "other")
        with self._lock:
            self.api_calls[operation] += 1
            faults = self.batch_api_faults.get(operation)
            return faults.pop(0) if faults else None

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{_digest(prefix, next(self._ids))[:24]}"

    def _store_file(self, filename: str, purpose: str, data: bytes, expiry: int | None = None) -> StoredFile:
        stored = StoredFile(self._new_id("file-"), filename, purpose, data)
        stored.expires_at = None if expiry is None else stored.created_at + expiry
        self._files[stored.id] = stored
        return stored

    def _upload(self, fields: dict[str, tuple[str | None, bytes]]) -> dict:
        if "file" not in fields or "purpose" not in fields:
            raise ApiError(400, "An upload needs the fields file and purpose.")
        filename, data = fields["file"]
        given = {
            name: fields[f"expires_after[{name}]"][1].decode()
            for name in ("anchor", "seconds")
            if f"expires_after[{name}]" in fields
        }
        seconds = given.get("seconds", "")
        expiry = expiry_of({**given, "seconds": int(seconds) if seconds.isdigit() else seconds} if given else None)
        with self._lock:
            self.files_uploaded += 1
            stored = self._store_file(filename or "upload", fields["purpose"][1].decode(), data, expiry)
            document = stored.document()
        if self.hold_upload_seconds:
            self._closing.wait(self.hold_upload_seconds)
        return document

    def _download(self, file_id: str) -> bytes:
        data = self._file(file_id).data
        with self._lock:
            self.downloads += 1
        if self.hold_content_seconds:
            self._closing.wait(self.hold_content_seconds)
        return data

    def _list_files(self, query: dict[str, str]) -> dict:
        """Files newest first (oldest first with order=asc), of one purpose if asked."""
        with self._lock:
            self._advance_batches()
            chosen = [f for f in self._files.values() if query.get("purpose") in (None, f.purpose)]
            return list_page(chosen if query.get("order") == "asc" else chosen[::-1], query, 10000, "10000")

    def _delete(self, file_id: str) -> dict:
        with self._lock:
            self._advance_batches()  # a batch that ended before the delete has its files first
            if self._files.pop(file_id, None) is None:
                raise ApiError(404, f"No such File object: {file_id}")
            self.files_deleted.append(file_id)
        return {"id": file_id, "object": "file", "deleted": True}

    def _file(self, file_id: str) -> StoredFile:
        with self._lock:
            if file_id not in self._files:
                raise ApiError(404, f"No such File object: {file_id}")
            return self._files[file_id]

    def _batch(self, batch_id: str) -> FakeBatch:
        """The batch, brought up to now (under the lock)."""
        if batch_id not in self._batches:
            raise ApiError(404, f"No batch found with id '{batch_id}'.")
        batch = self._batches[batch_id]
        self._advance(batch, time.monotonic())
        return batch

    def _create_batch(self, body: bytes) -> dict:
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise ApiError(400, f"The body is not JSON: {error}") from error
        if request.get("endpoint") != BATCH_ENDPOINT:
            raise ApiError(400, f"The fake server batches only {BATCH_ENDPOINT}, not {request.get('endpoint')}.")
        if request.get("completion_window") != "24h":
            raise ApiError(400, "completion_window must be 24h.")
        metadata = request.get("metadata")
        if metadata is not None and not valid_metadata(metadata):
            raise ApiError(400, "metadata is up to 16 string pairs (keys up to 64 characters, values up to 512).")
        output_expiry = expiry_of(request.get("output_expires_after"))
        stored = self._file(str(request.get("input_file_id")))
        if stored.purpose != "batch":
            raise ApiError(400, f"The input file's purpose must be batch, not {stored.purpose}.")
        lines, errors = read_batch_input(stored.data)
        model = lines[0].body["model"] if lines else None
        with self._lock:
            if not errors and self.batch_fail:
                self.batch_fail = False
                errors = [batch_error("invalid_request", "line 1: the request was rejected (batch_fail).", 1)]
            elif not errors and self.token_limit_failures > 0:
                self.token_limit_failures -= 1
                message = f"Enqueued token limit reached for model {model}: limit 90,000 enqueued tokens."
                errors = [batch_error("token_limit_exceeded", message)]
            batch_id = self._new_id("batch_")
            work = [] if errors else self._plan(batch_id, lines)
            expires = 0 < self.batch_expire <= 1
            stop = int(len(work) * self.batch_expire) if expires else len(work)
            batch = FakeBatch(
                batch_id,
                stored.id,
                metadata,
                [line.custom_id for line in lines],
                work,
                stop,
                errors or None,
                self.batch_seconds,
                expires,
                model,
                output_expiry,
            )
            self._batches[batch_id] = batch
            self.batches_created.append(batch_id)
            document = batch.document()
        if self.hold_create_seconds:
            self._closing.wait(self.hold_create_seconds)
        return document

    def _plan(self, batch_id: str, lines: list[BatchLine]) -> list[BatchLine]:
        """The lines in the order they will be answered, each marked to fail or not (by its attempt)."""
        for line in lines:
            attempt = self._attempts[line.custom_id]
            self._attempts[line.custom_id] += 1
            line.fails = _chance("batch line", line.custom_id, attempt) < self.batch_line_faults
            line.rejected = _chance("rejected line", line.custom_id) < self.batch_line_rejects
        order = list(lines)
        random.Random(batch_id).shuffle(order)
        return order

    def _list_batches(self, query: dict[str, str]) -> dict:
        with self._lock:
            self._advance_batches()
            return list_page(list(reversed(self._batches.values())), query, 100, "20")

    def _cancel(self, batch_id: str) -> dict:
        with self._lock:
            batch = self._batch(batch_id)
            if batch.status in TERMINAL:
                raise ApiError(409, f"Cannot cancel a batch with status '{batch.status}'.")
            if batch.cancel_at is None:
                batch.cancel_at = time.monotonic()
                batch.enter("cancelling", batch.cancel_at)
            return batch.document()

    def _advance_batches(self) -> None:
        now = time.monotonic()
        for batch in self._batches.values():
            self._advance(batch, now)

    def _advance(self, batch: FakeBatch, now: float) -> None:
        """Bring a batch to where time has taken it: answer the lines now due, enter the phase of now."""
        if batch.status in TERMINAL:
            return
        if batch.errors and batch.cancel_at is None and now >= batch.at(VALIDATED):
            self._end(batch, "failed", batch.at(VALIDATED))
            return
        until = now if batch.cancel_at is None else min(now, batch.cancel_at)
        while batch.answered < batch.stop and batch.due(batch.answered) <= until:
            self._answer_line(batch, batch.lines[batch.answered])
            batch.answered += 1
        if batch.cancel_at is not None:
            if now >= batch.cancel_at + CANCEL_DELAY * batch.seconds:
                self._end(batch, "cancelled", batch.cancel_at + CANCEL_DELAY * batch.seconds)
            return
        for status, share in (("in_progress", VALIDATED), ("finalizing", ANSWERED)):
            if now >= batch.at(share):
                batch.enter(status, batch.at(share))
        if now >= batch.at(1.0):
            self._end(batch, "expired" if batch.expires else "completed", batch.at(1.0))

    def _answer_line(self, batch: FakeBatch, line: BatchLine) -> None:
        self._batch_requests.append(line.body)
        response: dict = {"status_code": 200, "request_id": f"req_{_digest(batch.id, line.custom_id)[:24]}"}
        if line.rejected:
            message = "This model's maximum context length is 128000 tokens (batch_line_rejects)."
            error = {"message": message, "type": "invalid_request_error", "param": "messages"}
            response |= {"status_code": 400, "body": {"error": error | {"code": "context_length_exceeded"}}}
        elif line.fails:
            error = {"message": "injected batch line fault", "type": "server_error", "param": None, "code": None}
            response |= {"status_code": 500, "body": {"error": error}}
        else:
            response["body"] = self.reply_to(line.body)
            self._billed[line.custom_id] += 1
        record = {"id": self._new_id("batch_req_"), "custom_id": line.custom_id, "response": response, "error": None}
        (batch.failures if line.fails or line.rejected else batch.output).append(orjson.dumps(record) + b"\n")

    def _end(self, batch: FakeBatch, status: str, when: float) -> None:
        """Enter a terminal status; the lines answered go to the output file (200) and the error file."""
        batch.enter(status, when)
        output = list(batch.output)
        if output and self.malformed_output_lines:
            middle = len(output) // 2
            output[middle:middle] = [b'{"id": "batch_req_cut", "custom_id": \n'] * self.malformed_output_lines
            self.malformed_output_lines = 0
        batch.output_file_id = self._result_file(batch, "output", output)
        batch.error_file_id = self._result_file(batch, "error", batch.failures)
        if batch.output_file_id and self.lost_output_files > 0:
            self.lost_output_files -= 1
            del self._files[batch.output_file_id]

    def _result_file(self, batch: FakeBatch, kind: str, lines: list[bytes]) -> str | None:
        if not lines:
            return None
        data = b"".join(lines)
        return self._store_file(f"{batch.id}_{kind}.jsonl", "batch_output", data, batch.output_expiry).id

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: Nagle would hold the body 40 ms

            def log_message(self, *args):
                pass

            def do_GET(self):
                if urlsplit(self.path).path.rstrip("/") == "/v1/models":
                    self.answered = True  # not a chat completion: neither counted nor in flight
                    self.answer(None)
                    return
                self.batch_api()

            def do_DELETE(self):
                self.batch_api()

            def do_POST(self):
                if BATCH_API.match(self.path):
                    self.batch_api()
                    return
                body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake._lock:
                    fake.requests.append(body)
                    fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                self.answered = False
                try:
                    self.answer(body)
                finally:
                    self.done()

            def done(self):
                """Leave the in-flight count before the client can see the reply and send its next request."""
                if not self.answered:
                    self.answered = True
                    with fake._lock:
                        fake.in_flight -= 1

            def answer(self, body: dict | None):
                """A chat completion (`body`) or the model list (None): a fault, a refusal or the answer."""
                if fake.latency and body is not None:
                    time.sleep(fake.latency)
                fault = fake.pick_fault()
                if fault == "drop":
                    self.done()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if fault == "slow":
                    time.sleep(fake.slow_seconds)
                if fault in ("429", "500", "503"):
                    self.send_json(int(fault), {"error": {"message": f"injected {fault}"}}, retry_after=fault == "429")
                    return
                refused = fake.refusal(self.headers, body)
                if refused is not None:
                    self.send_json(*refused)
                    return
                self.send_json(200, fake.model_list() if body is None else fake.reply_to(body))

            def batch_api(self):
                """A Files or Batches request: not an online request, so neither counted nor in flight."""
                self.answered = True
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                refused = fake.refusal(self.headers, None)
                if refused is not None:
                    self.send_json(*refused)
                    return
                fault = fake.api_fault(self.command, self.path)
                if fault == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if fault is not None:
                    message = f"injected {fault} (batch_api_faults)"
                    self.send_json(int(fault), api_error(message, None), retry_after=fault == "429")
                    return
                status, payload, content_type = fake.answer_batch_api(self.command, self.path, self.headers, body)
                self.send_bytes(status, payload, content_type)

            def send_json(self, status: int, document: dict, retry_after: bool = False):
                payload = orjson.dumps(document)
                self.done()
                self.send_bytes(status, payload, JSON, retry_after)

            def send_bytes(self, status: int, payload: bytes, content_type: str, retry_after: bool = False):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                if retry_after:
                    self.send_header("Retry-After", "0.2")
                try:
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a slow reply, a killed run)
                    self.close_connection = True

        return Handler

    def __enter__(self) -> FakeLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Close the port (a test may stop the server before its `with` ends: a closed upstream)."""
        self._closing.set()  # a held create answers now
        self._server.shutdown()
        self._server.server_close()
