"""The Anthropic judge through the official ``anthropic`` SDK: the Messages API one call at a time, or the Message
Batches API for bulk (half price, results within 24 h). The rubric is the system prompt, marked
``cache_control: ephemeral`` so every call after the first reads it from the prompt cache. The model id is pinned
and dated; usage (uncached input, output, cache writes and reads) is priced by the table in config.

The SDK's own retries are off (``max_retries=0``): this module retries 429, 5xx, timeouts and dropped connections
only, capped, so a 400 or 401 fails at once with the API's message rather than being retried.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from eval_assets.judge._cache import JudgeIdentity
from eval_assets.judge._prices import ModelPrice
from eval_assets.judge._protocol import JudgeReply, JudgeRequest
from resources.judges._retry import with_retries

if TYPE_CHECKING:
    import anthropic

#: The pinned, dated default judge model.
DEFAULT_MODEL = "claude-sonnet-4-5-20250929"
#: Bump when how this backend calls the model changes (parameters, message layout): it enters the cache key.
#: (The Messages API of this SDK generation takes no ``temperature``: sampling is the model's default.)
BACKEND_VERSION = "anthropic-1"


def is_transient(exc: BaseException) -> bool:
    """429, 5xx, timeouts and connection failures; never 4xx otherwise."""
    import anthropic

    if isinstance(exc, anthropic.APIConnectionError):  # APITimeoutError is one
        return True
    if isinstance(exc, anthropic.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


class AnthropicJudge:
    def __init__(
        self,
        *,
        api_key: str,
        model: str = DEFAULT_MODEL,
        price: ModelPrice,
        base_url: str | None = None,
        use_batches: bool = False,
        max_retries: int = 3,
        timeout_s: float = 120.0,
        backoff_s: float = 1.0,
        batch_poll_s: float = 10.0,
        batch_deadline_s: float = 24 * 3600.0,
        min_batch: int = 2,
    ) -> None:
        import anthropic

        self.model = model
        self.price = price
        self.use_batches = use_batches
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.batch_poll_s = batch_poll_s
        self.batch_deadline_s = batch_deadline_s
        self.min_batch = min_batch
        self.client: anthropic.Anthropic = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s
        )

    @property
    def identity(self) -> JudgeIdentity:
        return JudgeIdentity(judge_id=f"anthropic:{self.model}", version=BACKEND_VERSION, model_hash=None,
                             family="claude")  # fmt: skip

    def _params(self, request: JudgeRequest) -> dict[str, Any]:
        return {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "system": [{"type": "text", "text": request.system, "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": request.user}],
        }

    def _reply(self, message: Any, latency: float, *, batch: bool) -> JudgeReply:
        text = "".join(block.text for block in message.content if getattr(block, "type", "") == "text")
        usage = message.usage
        cache_write = int(getattr(usage, "cache_creation_input_tokens", 0) or 0)
        cache_read = int(getattr(usage, "cache_read_input_tokens", 0) or 0)
        cost = self.price.cost(
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, cache_write=cache_write,
            cache_read=cache_read, batch=batch,
        )  # fmt: skip
        return JudgeReply(
            text=text, input_tokens=usage.input_tokens + cache_write + cache_read, output_tokens=usage.output_tokens,
            cache_write_tokens=cache_write, cache_read_tokens=cache_read, cost_usd=cost, latency_s=latency,
        )  # fmt: skip

    def _one(self, request: JudgeRequest) -> JudgeReply:
        started = time.perf_counter()
        try:
            message = with_retries(
                lambda: self.client.messages.create(**self._params(request)),
                transient=is_transient, max_retries=self.max_retries, backoff_s=self.backoff_s,
            )  # fmt: skip
        except Exception as exc:
            if not is_transient(exc):
                raise
            return JudgeReply(text="", latency_s=time.perf_counter() - started,
                              error=f"{type(exc).__name__} after {self.max_retries} retries: {exc}")  # fmt: skip
        return self._reply(message, time.perf_counter() - started, batch=False)

    def complete(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        if self.use_batches and len(requests) >= self.min_batch:
            return self._batch(requests)
        return [self._one(request) for request in requests]

    def _batch(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        """One Message Batch: submitted, polled until it ends (bounded by the deadline), results by custom id.
        A request whose result errored or expired comes back as an error reply (counted, never a verdict)."""
        started = time.perf_counter()
        ids = [f"r{index}" for index in range(len(requests))]

        def transient_call(call: Any) -> Any:
            return with_retries(
                call, transient=is_transient, max_retries=self.max_retries, backoff_s=self.backoff_s
            )

        batch = transient_call(lambda: self.client.messages.batches.create(
            requests=[{"custom_id": cid, "params": self._params(r)} for cid, r in zip(ids, requests, strict=True)]  # type: ignore[typeddict-item]
        ))  # fmt: skip
        deadline = started + self.batch_deadline_s
        batch_id = str(batch.id)
        while batch.processing_status != "ended":
            if time.perf_counter() > deadline:
                transient_call(lambda: self.client.messages.batches.cancel(batch_id))
                raise TimeoutError(
                    f"message batch {batch_id} did not end within {self.batch_deadline_s:.0f} s; cancelled"
                )
            time.sleep(self.batch_poll_s)
            batch = transient_call(lambda: self.client.messages.batches.retrieve(batch_id))
        latency = (time.perf_counter() - started) / max(len(requests), 1)
        replies: dict[str, JudgeReply] = {}
        for entry in transient_call(lambda: list(self.client.messages.batches.results(batch_id))):
            result = entry.result
            if result.type == "succeeded":
                replies[entry.custom_id] = self._reply(result.message, latency, batch=True)
            else:
                detail = getattr(getattr(result, "error", None), "error", None)
                message = getattr(detail, "message", None) or result.type
                replies[entry.custom_id] = JudgeReply(
                    text="", latency_s=latency, error=f"batch result {result.type}: {message}"
                )
        return [replies.get(cid, JudgeReply(text="", error="missing from the batch results")) for cid in ids]
