"""The server's ``retry-after`` hint on a failed HTTP call, shared by every client that retries (the
OpenAI-compatible runner, the judges)."""

from __future__ import annotations


def retry_after_seconds(exc: BaseException) -> float | None:
    """Seconds the server asked to wait (``retry-after`` on the exception's response), or ``None``."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
