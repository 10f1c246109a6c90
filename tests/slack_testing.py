"""For the alert tests: a real HTTP server that speaks Slack's Web API wire protocol for ``chat.postMessage``,
and a small gate graph whose check is the real ``no_regression_vs_production`` check.

The server follows https://api.slack.com/methods/chat.postMessage: ``POST {base}/chat.postMessage`` with a
JSON body (what ``slack_sdk.WebClient`` sends), the token in ``Authorization: Bearer``; it answers HTTP 200
with ``{"ok": true, "channel": ..., "ts": ..., "message": {...}}``, or ``{"ok": false, "error":
"invalid_auth"}`` for a wrong token, ``"channel_not_found"`` without a channel and ``"no_text"`` without text.
:meth:`SlackWireServer.refuse_next` scripts error answers (``{"ok": false, "error": ...}``).
"""

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dagster as dg

from eval_assets.defs.gate_checks import build_rule_check
from eval_assets.defs.partitions import checkpoints
from eval_assets.gate import load_gate_policy, registered_rules


@dataclass
class SlackWireServer:
    token: str
    #: Every accepted message: the JSON body.
    messages: list[dict[str, Any]] = field(default_factory=list)
    #: Every request: (path, headers, raw body).
    requests: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    _refusals: list[str | None] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/api/"

    def refuse_next(self, *errors: str | None) -> None:
        """Script the answers to the next messages: an error code refuses one, None accepts one."""
        with self._lock:
            self._refusals.extend(errors)

    def texts(self) -> list[str]:
        return [str(m["text"]) for m in self.messages]

    def handle(self, path: str, headers: dict[str, str], raw: str) -> dict[str, Any]:
        with self._lock:
            self.requests.append((path, headers, raw))
            if not path.endswith("/chat.postMessage"):
                return {"ok": False, "error": "unknown_method"}
            if headers.get("authorization") != f"Bearer {self.token}":
                return {"ok": False, "error": "invalid_auth"}
            body = json.loads(raw) if raw else {}
            if not body.get("channel"):
                return {"ok": False, "error": "channel_not_found"}
            if not body.get("text") and not body.get("blocks"):
                return {"ok": False, "error": "no_text"}
            refusal = self._refusals.pop(0) if self._refusals else None
            if refusal is not None:
                return {"ok": False, "error": refusal}
            self.messages.append(body)
            ts = f"{time.time():.6f}"
            return {
                "ok": True,
                "channel": body["channel"],
                "ts": ts,
                "message": {"text": body.get("text"), "ts": ts},
            }


@contextmanager
def slack_wire_server(token: str) -> Iterator[SlackWireServer]:
    server = SlackWireServer(token=token)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8")
            headers = {k.lower(): v for k, v in self.headers.items()}
            payload = json.dumps(server.handle(self.path, headers, raw)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server._httpd = httpd
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


# -- a small gate graph: a comparison asset per scenario, the real regression check, a failing asset -------

SUITE = "arc_easy"
PRODUCTION = "base"
_BASE = {
    "confidence": 0.95, "method": "newcombe", "production": PRODUCTION,
    "production_model_hash": "sha256:" + "b" * 64, "is_production": False,
}  # fmt: skip
#: partition -> the comparison row the check judges
COMPARISONS: dict[str, dict[str, Any]] = {
    "regressed": {"difference": -0.185, "low": -0.263, "high": -0.108, "n": 200, "regressions": 53,
                  "improvements": 16, "mcnemar_p": 1e-5},
    "unsure": {"difference": -0.025, "low": -0.094, "high": 0.044, "n": 40, "regressions": 6,
               "improvements": 5, "mcnemar_p": 0.76},
    "fine": {"difference": 0.01, "low": -0.004, "high": 0.024, "n": 200, "regressions": 1, "improvements": 3,
             "mcnemar_p": 0.62},
}  # fmt: skip
BROKEN = "broken"
SECRET_ENV = "EVALGATE_TEST_LEAKED_SECRET"


@dg.asset(key=["comparison", SUITE], partitions_def=checkpoints, group_name="gate")
def comparison(context: dg.AssetExecutionContext) -> dict[str, Any]:
    return {**_BASE, **COMPARISONS[context.partition_key]}


@dg.asset(key=["predictions", SUITE], partitions_def=checkpoints)
def broken_predictions(context: dg.AssetExecutionContext) -> None:
    # an error message that happens to carry the Slack token: the alert must not
    raise ConnectionError(f"model server refused the request (credential {os.environ.get(SECRET_ENV, '')})")


def regression_check() -> dg.AssetChecksDefinition:
    rule = registered_rules()["no_regression_vs_production"]
    return build_rule_check(rule, SUITE, load_gate_policy(), code_version="test")


def materialize_scenarios(
    instance: dg.DagsterInstance, evalgate: Any, partitions: tuple[str, ...]
) -> list[str]:
    """One run per partition; ``BROKEN`` runs the failing asset. Returns the run ids in order."""
    instance.add_dynamic_partitions(
        checkpoints.name, [p for p in partitions if not instance.has_dynamic_partition(checkpoints.name, p)]
    )
    check = regression_check()
    run_ids = []
    for partition in partitions:
        assets = [broken_predictions] if partition == BROKEN else [comparison, check]
        result = dg.materialize(
            assets, instance=instance, partition_key=partition, resources={"evalgate": evalgate},
            raise_on_error=False,
        )  # fmt: skip
        run_ids.append(result.run_id)
    return run_ids
