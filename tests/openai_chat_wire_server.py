"""A real HTTP server that speaks OpenAI's ``POST /v1/chat/completions`` wire protocol, for the official ``openai``
SDK (its ``base_url`` pointed here), as any OpenAI-compatible server (``vllm serve``) answers it: a
``chat.completion`` object with one choice (``message.role`` ``assistant``, ``message.content``,
``finish_reason``) and ``usage`` (``prompt_tokens``, ``completion_tokens``, ``total_tokens``); errors as
``{"error": {"message", "type", "param", "code"}}`` with the HTTP status.

What the model says is computed by ``responder(system, user) -> reply text`` (a test decides what the judge
says); failures can be scripted with :meth:`ChatWireServer.fail_next` (statuses answered in turn, with
``retry-after: 0``). Token counts are ``len(text) // 4`` (at least 1) of the system and user messages and of the
reply, so a test can compute the usage it expects.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
               429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}  # fmt: skip


def tokens(text: str) -> int:
    return max(1, len(text) // 4)


@dataclass
class ChatWireServer:
    responder: Callable[[str, str], str]
    served_model: str = "judge-model"
    #: every request received: (method, path, headers, body)
    requests: list[tuple[str, str, dict[str, str], dict[str, Any] | None]] = field(default_factory=list)
    _failures: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def fail_next(self, *statuses: int) -> None:
        with self._lock:
            self._failures.extend(statuses)

    def posts(self) -> list[dict[str, Any]]:
        """The bodies of every ``POST /v1/chat/completions`` received (failed ones included)."""
        return [
            b for m, p, _, b in self.requests if m == "POST" and p == "/v1/chat/completions" and b is not None
        ]

    def completion(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("model") != self.served_model:
            return 404, error(f"The model `{body.get('model')}` does not exist.", 404)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return 400, error("messages must be a non-empty list", 400)
        system = "".join(m["content"] for m in messages if m.get("role") == "system")
        user = "".join(m["content"] for m in messages if m.get("role") == "user")
        text = self.responder(system, user)
        prompt_tokens = tokens(system) + tokens(user)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": tokens(text),
                 "total_tokens": prompt_tokens + tokens(text)}  # fmt: skip
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                  "logprobs": None}  # fmt: skip
        return 200, {"id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": 0,
                     "model": self.served_model, "choices": [choice], "usage": usage}  # fmt: skip

    @contextmanager
    def running(self) -> Iterator[ChatWireServer]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK wait

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                if status >= 400:
                    self.send_header("retry-after", "0")
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send(400, error("body is not JSON", 400))
                    return
                with server._lock:
                    server.requests.append(
                        ("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    failure = server._failures.pop(0) if server._failures else None
                if failure is not None:
                    self._send(failure, error(f"scripted failure {failure}", failure))
                elif self.path == "/v1/chat/completions":
                    self._send(*server.completion(body))
                else:
                    self._send(404, error(f"no route {self.path}", 404))

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        thread = threading.Thread(
            target=self._httpd.serve_forever, name="openai-chat-wire-server", daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
            thread.join(timeout=10)


def error(message: str, status: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "server_error"), "param": None,
                      "code": None}}  # fmt: skip
