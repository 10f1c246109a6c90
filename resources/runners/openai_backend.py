"""A production backend for any server that speaks OpenAI's completions protocol (``vllm serve``, TGI,
llama.cpp's server), through the official ``openai`` client.

- **Generation**: ``POST /v1/completions`` with the rendered prompt text, ``temperature``, ``top_p``,
  ``max_tokens``, ``stop`` and ``seed``. Prompts go as a list, ``prompts_per_request`` at a time, and up to
  ``max_concurrency`` requests are in flight (use ``prompts_per_request=1`` for a server that takes one prompt
  per request).
- **Likelihood**: ``POST /v1/completions`` with the context and continuation as one prompt and ``echo=True,
  logprobs=1, max_tokens=0`` (the legacy protocol that ``vllm serve`` implements): the continuation's logprob
  is the sum over the echoed tokens from the one that starts at the context's end (by ``text_offset``), and
  it is greedy when each of those tokens is the best of its ``top_logprobs``. The context's trailing
  whitespace moves to the continuation first, as lm-eval does. Where the echoed token texts do not spell the
  prompt (byte-level tokens of non-ASCII text decode to U+FFFD, which shifts every later offset) or no token
  starts at the context's end, the context alone is echoed too and its token count marks the boundary,
  which is how lm-eval itself splits a pair. Servers that cannot echo prompt logprobs (OpenAI's hosted
  models, llama.cpp) fail here with a clear message; use them for generation only.
- **Chat**: ``render_chat`` renders with the served model's chat template from its tokenizer, loaded locally
  with transformers (``tokenizer=``, default: the served model name as a Hub id or path). Rendering on the
  client keeps the rendered prompt the thing we hash and cache (README "Reproducibility and the cache") and
  the same text every backend sees; ``/v1/chat/completions`` would hide the rendering inside the server.
- **Identity**: the engine id is the served model as the server reports it (``GET /v1/models``: its id,
  ``owned_by``, and where the server says so its ``root``, ``parent`` and ``max_model_len``; ``GET /version``
  when the server has it) plus the declared ``model_hash`` of the weights it serves, never the URL: two
  servers of one model share cached outputs, and a server that now serves something else does not. Generation
  seeds each prompt with its own seed; prompts of one seed share a request, others go one per request.
- **Errors**: only ``APIConnectionError`` (timeouts included), ``RateLimitError`` and ``InternalServerError``
  are retried, with exponential backoff and a cap on attempts. Anything else, and a transient error past the
  cap, raises :class:`OpenAIBackendError` naming the endpoint, the model and the prompts of the request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from typing import Any

from resources.retry_after import retry_after_seconds
from resources.runners.base import (
    LogLikelihood,
    Progress,
    SamplingParams,
    prompt_seeds,
    request_sampling_fields,
    truncate_at_stop,
)

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'evalgate[openai]'"


class OpenAIBackendError(RuntimeError):
    """A request to the server failed for good; ``status_code`` is the HTTP status when there was one."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class RetryPolicy:
    """How transient errors are retried: at most ``max_attempts`` tries in all, waiting
    ``initial_delay_s * 2**k`` (at most ``max_delay_s``, at least a 429's ``Retry-After``) between them."""

    max_attempts: int = 5
    initial_delay_s: float = 0.5
    max_delay_s: float = 20.0

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        backoff = self.initial_delay_s * (2 ** (attempt - 1))
        if retry_after_s is not None:
            backoff = max(backoff, retry_after_s)
        return min(backoff, self.max_delay_s)


def _import_openai() -> Any:
    try:
        import openai
    except ImportError as exc:
        raise ImportError(f"the openai-compatible backend needs the openai client: {INSTALL_HINT}") from exc
    return openai


# -- pure helpers: protocol fields -> numbers ---------------------------------------------------------------


def split_trailing_whitespace(context: str, continuation: str) -> tuple[str, str]:
    """Move the context's trailing whitespace to the continuation, as lm-eval's ``_encode_pair`` does, so
    a word's leading space is scored with the word."""
    stripped = context.rstrip()
    return stripped, context[len(stripped) :] + continuation


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


@dataclass(frozen=True)
class EchoedPrompt:
    """The ``logprobs`` object of an echoed completion: one entry per prompt token."""

    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None]
    text_offset: list[int]

    @classmethod
    def from_wire(cls, logprobs: Any, where: str) -> EchoedPrompt:
        if logprobs is None:
            raise OpenAIBackendError(f"{where}: the server returned no logprobs; it cannot score likelihoods")
        fields = {
            name: _field(logprobs, name)
            for name in ("tokens", "token_logprobs", "top_logprobs", "text_offset")
        }
        missing = [name for name, value in fields.items() if value is None]
        if missing:
            raise OpenAIBackendError(
                f"{where}: the server's logprobs lack {', '.join(missing)}; it does not implement echo with "
                "logprobs (vllm serve does)"
            )
        lengths = {name: len(value) for name, value in fields.items()}
        if len(set(lengths.values())) != 1:
            raise OpenAIBackendError(f"{where}: logprob fields of different lengths {lengths}")
        return cls(
            tokens=[str(token) for token in fields["tokens"]],
            token_logprobs=[None if value is None else float(value) for value in fields["token_logprobs"]],
            top_logprobs=[
                None if top is None else {str(k): float(v) for k, v in dict(top).items()}
                for top in fields["top_logprobs"]
            ],
            text_offset=[int(offset) for offset in fields["text_offset"]],
        )


def continuation_start_by_offset(echo: EchoedPrompt, prompt: str, boundary: int) -> int | None:
    """Index of the first continuation token, found by text offset: the token that starts exactly at
    ``boundary`` (the context's length in ``prompt``). ``None`` when offsets cannot be trusted: the token texts
    do not spell the prompt (allowing text the server put before it, such as a BOS token's), or no token
    starts at the boundary (one straddles it)."""
    spelled = "".join(echo.tokens)
    if not echo.tokens or not spelled.endswith(prompt):
        return None
    shift = len(spelled) - len(prompt) + echo.text_offset[0]
    for index, offset in enumerate(echo.text_offset):
        if offset == boundary + shift:
            return index
        if offset > boundary + shift:
            return None
    return None


def loglikelihood_from_echo(echo: EchoedPrompt, start: int, where: str) -> LogLikelihood:
    """Sum the logprobs of tokens ``start:`` and check each was the best of its ``top_logprobs``."""
    if not 1 <= start < len(echo.tokens):
        raise OpenAIBackendError(
            f"{where}: the continuation starts at token {start} of {len(echo.tokens)}; it encodes to no tokens "
            "or the context to none (lm-eval refuses both)"
        )
    total = 0.0
    is_greedy = True
    for index in range(start, len(echo.tokens)):
        logprob = echo.token_logprobs[index]
        top = echo.top_logprobs[index]
        if logprob is None:
            raise OpenAIBackendError(f"{where}: no logprob for prompt token {index} ({echo.tokens[index]!r})")
        if not top:
            raise OpenAIBackendError(
                f"{where}: no top_logprobs for prompt token {index}; the server must honour logprobs=1"
            )
        total += logprob
        # The top-1 alternative and the actual token come from the same distribution: the token is the
        # argmax exactly when nothing returned beats it.
        if logprob < max(top.values()):
            is_greedy = False
    return LogLikelihood(logprob=total, is_greedy=is_greedy)


def completion_kwargs(params: SamplingParams) -> dict[str, Any]:
    """The sampling fields of a ``/v1/completions`` request. Temperature 0 is greedy on vLLM, TGI and
    llama.cpp; ``top_p`` is sent as 1 then, since some servers reject other values with greedy decoding."""
    return request_sampling_fields(params)


def _chunks(count: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, count)) for start in range(0, count, size)]


def seed_spans(seeds: Sequence[int], size: int) -> list[tuple[int, int]]:
    """Spans of consecutive prompts that share a seed, at most ``size`` long: one request each, since a
    request carries one seed."""
    spans: list[tuple[int, int]] = []
    start = 0
    for index in range(1, len(seeds) + 1):
        if index == len(seeds) or seeds[index] != seeds[start] or index - start == size:
            spans.append((start, index))
            start = index
    return spans


#: Fields of a ``/v1/models`` entry that identify what is served (``created`` is left out: it is the time the
#: server started, not what it serves).
IDENTITY_FIELDS = ("id", "owned_by", "root", "parent", "max_model_len")


def served_identity(models: Sequence[Mapping[str, Any]], model: str, version: str | None) -> dict[str, Any]:
    """The identity of ``model`` in a ``/v1/models`` listing, plus the server's version when it reports one."""
    entry = next((m for m in models if m.get("id") == model), None)
    if entry is None:
        served = sorted(str(m.get("id")) for m in models)
        raise OpenAIBackendError(f"the server does not serve model {model!r} (it serves {served})")
    identity = {name: entry[name] for name in IDENTITY_FIELDS if entry.get(name) is not None}
    if version:
        identity["server_version"] = version
    return identity


def openai_engine_id(identity: Mapping[str, Any], model_hash: str) -> str:
    """The engine id of a served model: what the server reports of it, and the declared weights hash."""
    parts = [f"{name}={identity[name]}" for name in sorted(identity)]
    return "openai-compatible/" + "/".join(parts) + f"/model_hash={model_hash}"


class OpenAICompatibleBackend:
    """A model served behind an OpenAI-compatible ``/v1/completions`` endpoint."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str,
        *,
        model_hash: str | None = None,
        tokenizer: str | None = None,
        prompts_per_request: int = 16,
        max_concurrency: int = 4,
        timeout_s: float = 600.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        if prompts_per_request < 1 or max_concurrency < 1:
            raise ValueError("prompts_per_request and max_concurrency must be at least 1")
        openai = _import_openai()
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.model_hash = model_hash
        self.timeout_s = timeout_s
        self._api_key = api_key
        self._engine: str | None = None
        self.tokenizer_name = tokenizer
        self.prompts_per_request = prompts_per_request
        self.max_concurrency = max_concurrency
        self.retry = retry or RetryPolicy()
        # The client's own retries are off: ours retry named transient errors only, and say so in the log.
        self._client: Any = openai.OpenAI(
            base_url=self.base_url, api_key=api_key, max_retries=0, timeout=timeout_s
        )
        self._openai = openai
        self._transient: tuple[type[BaseException], ...] = (
            openai.APIConnectionError,
            openai.APITimeoutError,
            openai.RateLimitError,
            openai.InternalServerError,
        )
        self._tokenizer: Any = None
        self._tokenizer_lock = threading.Lock()

    @property
    def engine(self) -> str:
        """The served model's identity as the server reports it now, and the declared weights hash (asked once
        per backend; no completion is requested)."""
        if self._engine is None:
            if self.model_hash is None:
                raise OpenAIBackendError(
                    f"the model served at {self.base_url} has no declared model_hash: set ModelRunner."
                    "openai_model_hash to the sha256 of the weights the server serves (`evalgate register` "
                    "prints it), so its outputs are keyed on what it serves"
                )
            self._engine = openai_engine_id(self.describe(), self.model_hash)
        return self._engine

    def describe(self) -> dict[str, Any]:
        """``GET /v1/models`` (the entry of this model) and, when the server has it, ``GET /version``."""
        where = f"GET {self.base_url}/models"
        page = self._retrying(where, lambda: self._client.models.list())
        models = [item.model_dump() if hasattr(item, "model_dump") else dict(item) for item in page.data]
        try:
            return served_identity(models, self.model, self._server_version())
        except OpenAIBackendError as exc:
            raise OpenAIBackendError(f"{where}: {exc}") from None

    def _server_version(self) -> str | None:
        import httpx

        root = self.base_url.removesuffix("/v1")
        try:
            response = httpx.get(
                f"{root}/version",
                headers={"Authorization": f"Bearer {self._api_key}"},
                timeout=self.timeout_s,
            )
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        try:
            version = response.json().get("version")
        except (ValueError, AttributeError):
            return None
        return str(version) if version else None

    # -- requests -----------------------------------------------------------------------------------------
    def _where(self, what: str, start: int, stop: int, total: int) -> str:
        return (
            f"POST {self.base_url}/completions (model {self.model!r}, {what} {start}..{stop - 1} of {total})"
        )

    def _complete(self, where: str, **kwargs: Any) -> Any:
        return self._retrying(where, lambda: self._client.completions.create(model=self.model, **kwargs))

    def _retrying(self, where: str, request: Callable[[], Any]) -> Any:
        openai = self._openai
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                return request()
            except self._transient as exc:
                status = getattr(exc, "status_code", None)
                if attempt == self.retry.max_attempts:
                    raise OpenAIBackendError(
                        f"{where}: gave up after {attempt} attempts: {type(exc).__name__}: {exc}", status
                    ) from exc
                delay = self.retry.delay(attempt, retry_after_seconds(exc))
                log.warning(
                    "%s: %s (attempt %d of %d); retrying in %.2fs",
                    where,
                    type(exc).__name__,
                    attempt,
                    self.retry.max_attempts,
                    delay,
                )
                time.sleep(delay)
            except openai.APIStatusError as exc:
                raise OpenAIBackendError(
                    f"{where}: HTTP {exc.status_code}: {exc.message}", exc.status_code
                ) from exc
            except openai.OpenAIError as exc:
                raise OpenAIBackendError(f"{where}: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _run_chunks(
        self,
        count: int,
        call: Callable[[int, int], list[Any]],
        progress: Progress | None,
        spans: list[tuple[int, int]] | None = None,
    ) -> list[Any]:
        """Run ``call(start, stop)`` over chunks of ``range(count)`` (or the given spans) concurrently; results
        in input order."""
        results: list[Any] = [None] * count
        spans = spans if spans is not None else _chunks(count, self.prompts_per_request)
        done = 0
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, max(len(spans), 1))) as pool:
            futures = {pool.submit(call, start, stop): (start, stop) for start, stop in spans}
            try:
                for future in as_completed(futures):
                    start, stop = futures[future]
                    results[start:stop] = future.result()
                    done += stop - start
                    if progress is not None:
                        progress(done, count)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return results

    def _choices(self, response: Any, expected: int, where: str) -> list[Any]:
        choices = sorted(response.choices, key=lambda choice: choice.index)
        if [choice.index for choice in choices] != list(range(expected)):
            raise OpenAIBackendError(
                f"{where}: expected choices 0..{expected - 1}, got indices {[c.index for c in choices]}"
            )
        return choices

    def _echo(self, prompts: Sequence[str], where: str) -> list[EchoedPrompt]:
        response = self._complete(
            where, prompt=list(prompts), echo=True, logprobs=1, max_tokens=0, temperature=0.0
        )
        return [
            EchoedPrompt.from_wire(choice.logprobs, where)
            for choice in self._choices(response, len(prompts), where)
        ]

    # -- likelihood ---------------------------------------------------------------------------------------
    def loglikelihood(
        self, requests: Sequence[tuple[str, str]], progress: Progress | None = None
    ) -> list[LogLikelihood]:
        for index, (context, _) in enumerate(requests):
            if not context.strip():
                raise ValueError(
                    f"request {index} has an empty (or blank) context. lm-eval scores it after the model's BOS/EOS token, "
                    "which a text-only protocol cannot send; give it a context or use the vllm or transformers "
                    "backend"
                )
        pairs = [split_trailing_whitespace(context, continuation) for context, continuation in requests]

        def score(start: int, stop: int) -> list[LogLikelihood]:
            where = self._where("likelihood requests", start, stop, len(requests))
            prompts = [context + continuation for context, continuation in pairs[start:stop]]
            echoes = self._echo(prompts, where)
            starts = [
                continuation_start_by_offset(echo, prompt, len(context))
                for echo, prompt, (context, _) in zip(echoes, prompts, pairs[start:stop], strict=True)
            ]
            unaligned = [i for i, found in enumerate(starts) if found is None]
            if unaligned:
                # Count the context's own tokens instead, as lm-eval splits a pair.
                contexts = self._echo([pairs[start + i][0] for i in unaligned], where + " (contexts alone)")
                for i, context_echo in zip(unaligned, contexts, strict=True):
                    starts[i] = len(context_echo.tokens)
            results = []
            for i, (echo, first) in enumerate(zip(echoes, starts, strict=True)):
                assert first is not None
                results.append(loglikelihood_from_echo(echo, first, f"{where}, request {start + i}"))
            return results

        return self._run_chunks(len(requests), score, progress)

    # -- generation ---------------------------------------------------------------------------------------
    def render_chat(self, messages: Sequence[tuple[str, str]]) -> str:
        from resources.runners.vllm_backend import render_chat_with

        return render_chat_with(self._chat_tokenizer(), messages)

    def _chat_tokenizer(self) -> Any:
        with self._tokenizer_lock:
            if self._tokenizer is None:
                from transformers import AutoTokenizer

                name = self.tokenizer_name or self.model
                try:
                    self._tokenizer = AutoTokenizer.from_pretrained(name)
                except (OSError, ValueError) as exc:
                    raise OpenAIBackendError(
                        f"render_chat needs the chat template of the model served at {self.base_url}: could not "
                        f"load a tokenizer from {name!r} ({exc}). Pass tokenizer=<local directory or Hub id of "
                        "the served model>"
                    ) from exc
            return self._tokenizer

    def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        progress: Progress | None = None,
        seeds: Sequence[int] | None = None,
    ) -> list[str]:
        row_seeds = prompt_seeds(len(prompts), params, seeds)

        def complete(start: int, stop: int) -> list[str]:
            where = self._where("prompts", start, stop, len(prompts))
            sampling = completion_kwargs(replace(params, seed=row_seeds[start]))
            response = self._complete(where, prompt=list(prompts[start:stop]), **sampling)
            # Servers drop the stop sequence already; cutting again guards against one that keeps it.
            return [
                truncate_at_stop(choice.text, params.stop)
                for choice in self._choices(response, stop - start, where)
            ]

        return self._run_chunks(
            len(prompts), complete, progress, spans=seed_spans(row_seeds, self.prompts_per_request)
        )

    def close(self) -> None:
        self._client.close()
