"""Retrying a judge call only on named transient failures (429, 5xx, timeouts and dropped connections), capped,
with exponential backoff that honours ``retry-after``. Anything else (400, 401, 403, 404 ...) is raised at once."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from resources.retry_after import retry_after_seconds

T = TypeVar("T")


def with_retries(
    call: Callable[[], T],
    *,
    transient: Callable[[BaseException], bool],
    max_retries: int,
    backoff_s: float = 1.0,
    max_backoff_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> T:
    """``call()``, retried up to ``max_retries`` times when ``transient(exc)``; the last failure is raised."""
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            if not transient(exc) or attempt >= max_retries:
                raise
            wait = retry_after_seconds(exc)
            wait = min(max_backoff_s, wait if wait is not None else backoff_s * 2**attempt)
            attempt += 1
            if on_retry is not None:
                on_retry(attempt, exc)
            sleep(wait)
