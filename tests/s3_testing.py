"""A local S3-compatible server for tests: moto's server (installed from PyPI) in a subprocess on a free port,
speaking the S3 wire protocol to deltalake's and polars' own clients. (In-process it would deadlock: some
deltalake calls hold the GIL while they wait on the network.) Credentials go through the environment, as in
production; the options carry only the endpoint. The server logs every request it answers (method, path,
``If-None-Match``, status) to a JSON-lines file, so tests can see what the clients asked of the store."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY = "evalgate-test-key"
SECRET_KEY = "evalgate-test-secret"  # a test credential for a local server, not a secret
REGION = "us-east-1"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    if_none_match: str | None
    status: int


@dataclass(frozen=True)
class RequestLog:
    """The requests the server answered, read from its log file."""

    path: Path

    def requests(self) -> list[Request]:
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [Request(**json.loads(line)) for line in lines if line.strip()]

    def commits(self, table_prefix: str) -> list[Request]:
        """PUTs of commit files (``_delta_log/<version>.json``) under ``table_prefix`` (``/bucket/key...``)."""
        return [
            r
            for r in self.requests()
            if r.method == "PUT"
            and r.path.startswith(table_prefix)
            and "/_delta_log/" in r.path
            and r.path.rsplit("/", 1)[-1].removesuffix(".json").isdigit()
            and r.path.endswith(".json")
        ]


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    client: Any  # a boto3 S3 client on the server
    log: RequestLog

    @property
    def options(self) -> dict[str, str]:
        """Non-secret storage options that reach the server."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": REGION, "AWS_ALLOW_HTTP": "true"}

    def bucket(self, name: str) -> str:
        self.client.create_bucket(Bucket=name)
        return f"s3://{name}"

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=bucket, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def _logged(app: Callable[..., Iterable[bytes]], log_file: Path) -> Callable[..., Iterable[bytes]]:
    handle = log_file.open("a", encoding="utf-8", buffering=1)

    def logged(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: Any, *args: Any) -> Any:
            entry = {
                "method": environ["REQUEST_METHOD"],
                "path": environ.get("PATH_INFO", ""),
                "if_none_match": environ.get("HTTP_IF_NONE_MATCH"),
                "status": int(status.split()[0]),
            }
            handle.write(json.dumps(entry) + "\n")
            return start_response(status, headers, *args)

        return app(environ, start)

    return logged


def serve(log_file: Path) -> None:
    """Run moto's S3 server on a free port of 127.0.0.1, print the port, serve until killed."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = _logged(DomainDispatcherApplication(create_backend_app), log_file)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


@contextmanager
def s3_server(monkeypatch: pytest.MonkeyPatch, log_dir: Path) -> Iterator[S3Server]:
    """moto's S3 server in a subprocess, with the credentials in the environment (as deltalake reads them)."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    log_file = log_dir / "s3-requests.jsonl"
    process = subprocess.Popen(
        [sys.executable, __file__, str(log_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=os.environ | {"PYTHONPATH": str(Path(__file__).parent)},
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().strip() or 0)
        if not port:
            raise RuntimeError(f"the moto S3 server did not start (exit code {process.poll()})")
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                client.list_buckets()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield S3Server(endpoint=endpoint, client=client, log=RequestLog(log_file))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
