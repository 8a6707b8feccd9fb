"""A loopback server speaking the OpenAI chat-completions API, for tests and benchmarks.

Replies are deterministic functions of the request (model, messages, seed): a JSON document that
fits the requested schema, or a line of text. It counts requests and keeps their bodies and
headers, so tests can assert exactly what was sent.
"""

from __future__ import annotations

import hashlib
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
    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0):
        self.latency = latency
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
        return f"http://{host}:{port}/v1"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.headers.clear()

    def reply_to(self, body: dict) -> dict:
        seed = _digest(body["model"], body["messages"], body.get("seed"))
        response_format = body.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            content = orjson.dumps(fake_value(response_format["json_schema"]["schema"], seed)).decode()
        else:
            content = f"Reply {seed[:16]} to: {body['messages'][-1]['content'][:80]}"
        tokens = len(content) // 4
        return {
            "id": f"chatcmpl-{seed[:12]}",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
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

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake._lock:
                    fake.requests.append(body)
                    fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                if fake.latency:
                    time.sleep(fake.latency)
                payload = orjson.dumps(fake.reply_to(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler

    def __enter__(self) -> FakeLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
