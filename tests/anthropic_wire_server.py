"""A real HTTP server that speaks Anthropic's Messages and Message Batches wire protocol, for the official
``anthropic`` SDK (its ``base_url`` pointed here). It follows the public API reference: ``POST /v1/messages``
answers a ``message`` object with ``usage`` (``input_tokens`` uncached, ``cache_creation_input_tokens`` on the
first request with a ``cache_control``-marked system prompt, ``cache_read_input_tokens`` after), ``POST
/v1/messages/batches`` creates a ``message_batch`` that ends after ``polls_until_ended`` retrievals, and its
``results_url`` serves JSONL lines ``{"custom_id", "result": {"type": "succeeded", "message": ...}}``.

The judge's answer is computed by ``responder(user_text) -> reply text`` (a test decides what the judge says);
failures can be scripted with :meth:`AnthropicWireServer.fail_next` (HTTP statuses answered in turn, with the
API's error body and ``retry-after: 0``); batch results with :attr:`AnthropicWireServer.errored_ids`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error",
               500: "api_error", 529: "overloaded_error"}  # fmt: skip


def tokens(text: str) -> int:
    return max(1, len(text) // 4)


@dataclass
class AnthropicWireServer:
    responder: Callable[[str], str]
    polls_until_ended: int = 1
    #: every request received: (method, path, headers, body)
    requests: list[tuple[str, str, dict[str, str], dict[str, Any] | None]] = field(default_factory=list)
    errored_ids: set[str] = field(default_factory=set)
    _failures: list[int] = field(default_factory=list)
    _cached_systems: set[str] = field(default_factory=set)
    _batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail_next(self, *statuses: int) -> None:
        with self._lock:
            self._failures.extend(statuses)

    def posts(self, path: str) -> list[dict[str, Any]]:
        return [
            body
            for method, p, _, body in self.requests
            if method == "POST" and p == path and body is not None
        ]

    # -- protocol ---------------------------------------------------------------------------------------------
    def message(self, params: dict[str, Any]) -> dict[str, Any]:
        system = params.get("system") or []
        system_text = "".join(block["text"] for block in system) if isinstance(system, list) else str(system)
        cached = isinstance(system, list) and any("cache_control" in block for block in system)
        user = "".join(m["content"] if isinstance(m["content"], str) else json.dumps(m["content"])
                       for m in params["messages"])  # fmt: skip
        text = self.responder(user)
        write = read = 0
        if cached:
            with self._lock:
                if system_text in self._cached_systems:
                    read = tokens(system_text)
                else:
                    write = tokens(system_text)
                    self._cached_systems.add(system_text)
        usage = {"input_tokens": tokens(user) + (0 if cached else tokens(system_text)), "output_tokens": tokens(text),
                 "cache_creation_input_tokens": write, "cache_read_input_tokens": read}  # fmt: skip
        return {"id": f"msg_{len(self.requests)}", "type": "message", "role": "assistant", "model": params["model"],
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": usage}  # fmt: skip

    def batch_object(self, batch_id: str) -> dict[str, Any]:
        batch = self._batches[batch_id]
        ended = batch["polls"] >= self.polls_until_ended
        n = len(batch["requests"])
        errored = sum(1 for r in batch["requests"] if r["custom_id"] in self.errored_ids)
        return {
            "id": batch_id, "type": "message_batch", "processing_status": "ended" if ended else "in_progress",
            "request_counts": {"processing": 0 if ended else n, "succeeded": n - errored if ended else 0,
                               "errored": errored if ended else 0, "canceled": 0, "expired": 0},
            "created_at": "2026-12-01T00:00:00Z", "expires_at": "2026-12-02T00:00:00Z",
            "ended_at": "2026-12-01T00:01:00Z" if ended else None, "archived_at": None, "cancel_initiated_at": None,
            "results_url": f"{self.base_url}/v1/messages/batches/{batch_id}/results" if ended else None,
        }  # fmt: skip

    def results(self, batch_id: str) -> str:
        lines = []
        for request in self._batches[batch_id]["requests"]:
            if request["custom_id"] in self.errored_ids:
                result = {"type": "errored", "error": {"type": "error", "error": {
                    "type": "invalid_request_error", "message": "scripted failure"}}}  # fmt: skip
            else:
                result = {"type": "succeeded", "message": self.message(request["params"])}
            lines.append(json.dumps({"custom_id": request["custom_id"], "result": result}))
        return "\n".join(lines) + "\n"

    @contextmanager
    def running(self) -> Iterator[AnthropicWireServer]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: str, content_type: str = "application/json") -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", "req_test")
                if status >= 400:
                    self.send_header("retry-after", "0")
                    self.send_header("x-should-retry", "false")  # the judge decides, not the SDK
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with server._lock:
                    server.requests.append(
                        (method, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    failure = server._failures.pop(0) if server._failures else None
                if failure is not None:
                    kind = ERROR_TYPES.get(failure, "api_error")
                    self._send(
                        failure,
                        json.dumps(
                            {"type": "error", "error": {"type": kind, "message": f"scripted {failure}"}}
                        ),
                    )
                    return
                path = self.path.split("?")[0]
                if method == "POST" and path == "/v1/messages":
                    self._send(200, json.dumps(server.message(body or {})))
                elif method == "POST" and path == "/v1/messages/batches":
                    batch_id = f"msgbatch_{len(server._batches) + 1}"
                    server._batches[batch_id] = {"requests": (body or {})["requests"], "polls": 0}
                    self._send(200, json.dumps(server.batch_object(batch_id)))
                elif (
                    method == "GET" and path.startswith("/v1/messages/batches/") and path.endswith("/results")
                ):
                    self._send(200, server.results(path.split("/")[4]), "application/binary")
                elif method == "GET" and path.startswith("/v1/messages/batches/"):
                    batch_id = path.split("/")[4]
                    server._batches[batch_id]["polls"] += 1
                    self._send(200, json.dumps(server.batch_object(batch_id)))
                elif method == "POST" and path.endswith("/cancel"):
                    self._send(200, json.dumps(server.batch_object(path.split("/")[4])))
                else:
                    self._send(
                        404,
                        json.dumps({"type": "error", "error": {"type": "not_found_error", "message": path}}),
                    )

            def do_POST(self) -> None:
                self._handle("POST")

            def do_GET(self) -> None:
                self._handle("GET")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
