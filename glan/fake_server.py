"""A loopback server speaking the OpenAI chat-completions API, for tests and benchmarks.

Replies are deterministic functions of the request (model, messages, seed): a JSON document that
fits the requested schema, or a line of text. It counts requests and keeps their bodies and
headers, so tests can assert exactly what was sent.

Faults can be injected: `faults` is the share of requests answered with a transport fault
(429 with Retry-After, 500, 503, a dropped connection, a reply slower than the client waits);
`bad_replies` the share of requests (chosen by their content, so the same request is always bad)
answered with an invalid reply (not JSON, the wrong shape, cut off by the token cap, empty).
"""

from __future__ import annotations

import hashlib
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson


def _digest(*parts) -> str:
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()


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
    ):
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
        ThreadingHTTPServer.request_queue_size = 1024  # the default backlog of 5 stalls bursts for a second
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.headers.clear()
            self.max_in_flight = 0

    def pick_fault(self) -> str | None:
        with self._lock:
            if self._rng.random() >= self.faults:
                return None
            fault = self._rng.choice(self.FAULTS)
            self.faults_injected.append(fault)
            return fault

    def reply_to(self, body: dict) -> dict:
        seed = _digest(body["model"], body["messages"], body.get("seed"))
        response_format = body.get("response_format") or {}
        structured = response_format.get("type") == "json_schema"
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
            content = orjson.dumps(fake_value(response_format["json_schema"]["schema"], seed)).decode()
        else:
            content = f"Reply {seed[:16]} to: {body['messages'][-1]['content'][:80]}"
        tokens = len(content) // 4
        return {
            "id": f"chatcmpl-{seed[:12]}",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}
            ],
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": tokens,
                "total_tokens": 10 + tokens,
            },
        }

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: Nagle would hold the body 40 ms

            def log_message(self, *args):
                pass

            def do_POST(self):
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

            def answer(self, body: dict):
                if fake.latency:
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
                self.send_json(200, fake.reply_to(body))

            def send_json(self, status: int, document: dict, retry_after: bool = False):
                payload = orjson.dumps(document)
                self.done()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if retry_after:
                    self.send_header("Retry-After", "0.2")
                self.end_headers()
                self.wfile.write(payload)

        return Handler

    def __enter__(self) -> FakeLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
