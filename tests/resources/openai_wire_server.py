"""A real HTTP server that speaks OpenAI's ``/v1/completions`` wire protocol, answering from a real model
loaded with transformers. Tests point the official ``openai`` client at it.

It follows what ``vllm serve`` does (``vllm/entrypoints/openai/serving_completion.py``): prompts are
tokenized with the tokenizer's default special tokens; ``echo=True`` with ``max_tokens=0`` returns the prompt
with one logprob per token (``None`` for the first), ``top_logprobs`` holding the actual token and the top
``logprobs`` tokens keyed by their decoded text, and ``text_offset`` the running sum of the decoded tokens'
lengths; generation drops the stop sequence from the text. A list of prompts gives one choice per prompt.
``GET /v1/models`` lists the served model as vLLM does (``id``, ``created``, ``owned_by``, ``root``, ``parent``,
``max_model_len``) and ``GET /version`` answers ``{"version": ...}``.

Failures can be scripted: :meth:`WireServer.fail_next` makes the next requests answer with given statuses.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import torch


@dataclass
class WireServer:
    model: Any
    tokenizer: Any
    served_name: str
    #: What ``GET /v1/models`` reports beside the name (vLLM: the model path it loaded, its context length).
    root: str = "/models/smollm2-135m"
    max_model_len: int = 8192
    version: str = "0.0.test"
    #: Every request body received, in order (failed ones included).
    requests: list[dict[str, Any]] = field(default_factory=list)
    _failures: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _model_lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def fail_next(self, *statuses: int) -> None:
        with self._lock:
            self._failures.extend(statuses)

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()
            self.requests.clear()

    # -- protocol -------------------------------------------------------------------------------------------
    def handle_get(self, path: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append({"GET": path})
        if path == "/v1/models":
            entry = {
                "id": self.served_name, "object": "model", "created": int(time.time()), "owned_by": "vllm",
                "root": self.root, "parent": None, "max_model_len": self.max_model_len, "permission": [],
            }  # fmt: skip
            return 200, {"object": "list", "data": [entry]}
        if path == "/version":
            return 200, {"version": self.version}
        return 404, _error(f"no route {path}", "not_found")

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(body)
            scripted = self._failures.pop(0) if self._failures else None
        if scripted is not None:
            return scripted, _error(
                f"scripted failure {scripted}", "server_error" if scripted >= 500 else "invalid_request_error"
            )
        if path != "/v1/completions":
            return 404, _error(f"no route {path}", "not_found")
        if body.get("model") != self.served_name:
            return 404, _error(f"The model `{body.get('model')}` does not exist.", "NotFoundError")
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            return 400, _error("prompt must be a string or a non-empty list of strings", "BadRequestError")
        raw_max_tokens = body.get("max_tokens")
        max_tokens = 16 if raw_max_tokens is None else int(raw_max_tokens)
        if body.get("echo"):
            if max_tokens != 0:
                return 400, _error("this server echoes only with max_tokens=0", "BadRequestError")
            top_n = body.get("logprobs")
            choices = [self._echo(i, p, top_n) for i, p in enumerate(prompts)]
        else:
            stop = body.get("stop") or []
            stop = [stop] if isinstance(stop, str) else list(stop)
            choices = [
                self._generate(
                    i,
                    p,
                    max_tokens,
                    float(body.get("temperature", 1.0)),
                    float(body.get("top_p", 1.0)),
                    stop,
                    body.get("seed"),
                )
                for i, p in enumerate(prompts)
            ]
        return 200, {
            "id": "cmpl-test",
            "object": "text_completion",
            "created": 0,
            "model": self.served_name,
            "choices": choices,
        }

    def _echo(self, index: int, prompt: str, top_n: int | None) -> dict[str, Any]:
        ids = self.tokenizer(prompt)["input_ids"]
        with self._model_lock, torch.inference_mode():
            logits = self.model(torch.tensor([ids])).logits[0].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        tokens: list[str] = []
        token_logprobs: list[float | None] = []
        top_logprobs: list[dict[str, float] | None] = []
        text_offset: list[int] = []
        offset = 0
        for position, token_id in enumerate(ids):
            text = self.tokenizer.decode([token_id])
            tokens.append(text)
            text_offset.append(offset)
            offset += len(text)
            if position == 0:
                token_logprobs.append(None)
                top_logprobs.append(None)
                continue
            row = logprobs[position - 1]
            token_logprobs.append(float(row[token_id]))
            if top_n is None:
                top_logprobs.append(None)
                continue
            # vLLM: the actual token first, then the top-n, keyed by decoded text.
            entries = {text: float(row[token_id])}
            for candidate in torch.topk(row, int(top_n)).indices.tolist() if top_n else []:
                entries[self.tokenizer.decode([candidate])] = float(row[candidate])
            top_logprobs.append(entries)
        return {
            "index": index,
            "text": prompt,
            "finish_reason": "length",
            "logprobs": {
                "tokens": tokens,
                "token_logprobs": token_logprobs,
                "top_logprobs": top_logprobs,
                "text_offset": text_offset,
            },
        }

    def _generate(
        self,
        index: int,
        prompt: str,
        max_tokens: int,
        temperature: float,
        top_p: float,
        stop: list[str],
        seed: int | None,
    ) -> dict[str, Any]:
        ids = torch.tensor([self.tokenizer(prompt)["input_ids"]])
        kwargs: dict[str, Any] = {"max_new_tokens": max_tokens, "pad_token_id": self.tokenizer.eos_token_id}
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with self._model_lock, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(int(seed))
            generated = self.model.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)
        new = generated[0, ids.shape[1] :]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        finish = "stop" if new.numel() < max_tokens else "length"
        cuts = [text.find(s) for s in stop if s in text]
        if cuts:
            text, finish = text[: min(cuts)], "stop"
        return {"index": index, "text": text, "finish_reason": finish, "logprobs": None}

    # -- lifecycle --------------------------------------------------------------------------------------
    @contextmanager
    def running(self) -> Iterator[WireServer]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    status, payload = 400, _error("body is not JSON", "BadRequestError")
                else:
                    status, payload = server.handle(self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                status, payload = server.handle_get(self.path)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        thread = threading.Thread(target=self._httpd.serve_forever, name="openai-wire-server", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
            thread.join(timeout=10)


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}
