"""A judge on any OpenAI-compatible server (``vllm serve`` of a strong open model) through the official ``openai``
SDK: chat completions, the rubric as the system message, temperature 0. The served weights' hash must be
declared (the judge refuses to judge a checkpoint with the same weights). Self-hosted: cost 0 unless priced.
Retries only 429, 5xx, timeouts and dropped connections, capped (the SDK's own retries are off)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from eval_assets.judge._cache import JudgeIdentity
from eval_assets.judge._prices import ModelPrice
from eval_assets.judge._protocol import JudgeReply, JudgeRequest
from resources.judges._retry import with_retries

BACKEND_VERSION = "openai-1"


def is_transient(exc: BaseException) -> bool:
    import openai

    if isinstance(exc, openai.APIConnectionError):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


class OpenAICompatibleJudge:
    def __init__(
        self, *, base_url: str, model: str, model_hash: str, family: str, api_key: str = "EMPTY",
        price: ModelPrice | None = None, max_retries: int = 3, timeout_s: float = 120.0, backoff_s: float = 1.0,
    ) -> None:  # fmt: skip
        import openai

        self.model = model
        self.model_hash = model_hash
        self.family = family
        self.price = price
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout_s)

    @property
    def identity(self) -> JudgeIdentity:
        return JudgeIdentity(judge_id=f"openai:{self.model}", version=BACKEND_VERSION, model_hash=self.model_hash,
                             family=self.family)  # fmt: skip

    def _one(self, request: JudgeRequest) -> JudgeReply:
        started = time.perf_counter()
        try:
            response = with_retries(
                lambda: self.client.chat.completions.create(
                    model=self.model, temperature=0.0, max_tokens=request.max_tokens,
                    messages=[{"role": "system", "content": request.system}, {"role": "user", "content": request.user}],
                ),
                transient=is_transient, max_retries=self.max_retries, backoff_s=self.backoff_s,
            )  # fmt: skip
        except Exception as exc:
            if not is_transient(exc):
                raise
            return JudgeReply(text="", latency_s=time.perf_counter() - started,
                              error=f"{type(exc).__name__} after {self.max_retries} retries: {exc}")  # fmt: skip
        usage = response.usage
        tokens_in = usage.prompt_tokens if usage else 0
        tokens_out = usage.completion_tokens if usage else 0
        cost = self.price.cost(input_tokens=tokens_in, output_tokens=tokens_out) if self.price else 0.0
        return JudgeReply(
            text=response.choices[0].message.content or "", input_tokens=tokens_in, output_tokens=tokens_out,
            cost_usd=cost, latency_s=time.perf_counter() - started,
        )  # fmt: skip

    def complete(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        return [self._one(request) for request in requests]
