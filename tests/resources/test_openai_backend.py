"""The OpenAI-compatible backend against a real local HTTP server speaking the completions wire protocol,
which answers from the real SmolLM2-135M weights; its numbers are checked against the transformers backend
(lm-eval's HFLM) on the same checkpoint."""

from __future__ import annotations

import importlib.util
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from resources.runners.base import SamplingParams
from resources.runners.openai_backend import (
    EchoedPrompt,
    OpenAIBackendError,
    OpenAICompatibleBackend,
    RetryPolicy,
    completion_kwargs,
    continuation_start_by_offset,
    loglikelihood_from_echo,
    seed_spans,
    split_trailing_whitespace,
)

#: Holds the converted (safetensors) copy of the GGUF checkpoint, made once by ``ensure_loadable_dir``.
SERVED = "smollm2-135m-test"
FAST_RETRY = RetryPolicy(max_attempts=3, initial_delay_s=0.01, max_delay_s=0.05)

REQUESTS = [
    ("Question: What is the capital of France?\nAnswer:", " Paris"),
    ("Question: What is the capital of France?\nAnswer:", " London"),
    ("1, 2, 3, 4, 5,", " 6, 7"),
    ("The quick brown fox jumps over the lazy ", "dog"),  # trailing space moves to the continuation
    ("Water boils at a temperature of", " 100 degrees Celsius at sea level."),
    ("Zürich und München sind", " Städte in Europa"),
    # Byte-level tokens of 東京 decode to U+FFFD, so offsets drift: the context-count fallback.
    ("In Japanese, Tokyo is written 東京 and", " it is the capital"),
]


def _load_wire_server_module() -> ModuleType:
    # Loaded by path: it sits beside this file, which is not a package, under either pytest import mode.
    path = Path(__file__).with_name("openai_wire_server.py")
    spec = importlib.util.spec_from_file_location("evalgate_tests_openai_wire_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def wire(reference: Any, smollm2_dir: Path) -> Iterator[Any]:
    from transformers import AutoTokenizer

    module = _load_wire_server_module()
    # Same weights, its own tokenizer instance and an unbatched forward pass: an independent code path.
    server = module.WireServer(reference.model, AutoTokenizer.from_pretrained(str(smollm2_dir)), SERVED)
    with server.running():
        yield server


@pytest.fixture
def server(wire: Any) -> Any:
    wire.reset()
    return wire


def _backend(server: Any, **kwargs: Any) -> OpenAICompatibleBackend:
    kwargs.setdefault("retry", FAST_RETRY)
    return OpenAICompatibleBackend(server.base_url, "EMPTY", SERVED, **kwargs)


# -- against the real model ------------------------------------------------------------------------------


@pytest.mark.slow
def test_loglikelihood_equals_transformers_backend(server: Any, reference: Any) -> None:
    expected = reference.loglikelihood(REQUESTS)
    seen: list[tuple[int, int]] = []
    backend = _backend(server, prompts_per_request=2, max_concurrency=2)
    got = backend.loglikelihood(REQUESTS, progress=lambda done, total: seen.append((done, total)))
    for (context, continuation), want, have in zip(REQUESTS, expected, got, strict=True):
        assert have.logprob == pytest.approx(want.logprob, abs=1e-3), (context, continuation)
        assert have.is_greedy == want.is_greedy, (context, continuation)
    assert {r.is_greedy for r in expected} == {True, False}, (
        "the requests should exercise both greedy outcomes"
    )
    assert seen[-1] == (len(REQUESTS), len(REQUESTS))
    bodies = [b for b in server.requests if b.get("echo")]
    assert all(b["max_tokens"] == 0 and b["logprobs"] == 1 for b in bodies)
    assert sorted(len(b["prompt"]) for b in bodies) == [1, 1, 2, 2, 2], (
        "batches of 2, 2, 2 and 1, plus 1 context alone"
    )


@pytest.mark.slow
def test_greedy_generation_equals_transformers_backend(server: Any, reference: Any) -> None:
    prompts = ["The three primary colors are", "def fibonacci(n):\n    "]
    params = SamplingParams(temperature=0.0, max_new_tokens=12)
    expected = reference.generate(prompts, params)
    got = _backend(server).generate(prompts, params)
    assert got == expected
    assert all(text.strip() for text in got)


@pytest.mark.slow
def test_stop_sequences_truncate(server: Any) -> None:
    prompt = "List the days of the week: Monday, Tuesday,"
    backend = _backend(server)
    full = backend.generate([prompt], SamplingParams(max_new_tokens=12))[0]
    stop = full.split()[1]  # a word the unstopped output contains, past its first
    stopped = backend.generate([prompt], SamplingParams(max_new_tokens=12, stop=(stop, "\n\n\n")))[0]
    assert stopped == full[: full.index(stop)]
    assert server.requests[-1]["stop"] == [stop, "\n\n\n"]


@pytest.mark.slow
def test_prompts_are_batched_and_returned_in_order(server: Any) -> None:
    prompts = ["One", "Two", "Three", "Four", "Five"]
    params = SamplingParams(max_new_tokens=3)
    singly = [_backend(server).generate([p], params)[0] for p in prompts]
    server.reset()
    batched = _backend(server, prompts_per_request=2, max_concurrency=3).generate(prompts, params)
    assert batched == singly
    assert sorted(len(b["prompt"]) for b in server.requests) == [1, 2, 2]


@pytest.mark.slow
def test_render_chat_uses_the_served_models_template(server: Any, reference: Any, smollm2_dir: Path) -> None:
    messages = [("user", "What is 2+2?")]
    backend = _backend(server, tokenizer=str(smollm2_dir))
    assert backend.render_chat(messages) == reference.render_chat(messages)


# -- errors and retries (the server answers the scripted statuses) -------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("status", [503, 500, 429])
def test_transient_errors_are_retried(server: Any, status: int) -> None:
    server.fail_next(status)
    assert _backend(server).generate(["Hello"], SamplingParams(max_new_tokens=2))[0] is not None
    assert len(server.requests) == 2


@pytest.mark.slow
def test_transient_errors_give_up_at_the_cap(server: Any) -> None:
    server.fail_next(503, 503, 503)
    with pytest.raises(OpenAIBackendError, match="gave up after 3 attempts") as raised:
        _backend(server).generate(["Hello"], SamplingParams(max_new_tokens=2))
    assert raised.value.status_code == 503
    assert len(server.requests) == 3


@pytest.mark.slow
def test_bad_request_raises_at_once_with_its_location(server: Any) -> None:
    server.fail_next(400)
    with pytest.raises(OpenAIBackendError) as raised:
        _backend(server).generate(["a", "b"], SamplingParams(max_new_tokens=2))
    message = str(raised.value)
    assert "HTTP 400" in message and "scripted failure 400" in message
    assert (
        f"{server.base_url}/completions" in message and SERVED in message and "prompts 0..1 of 2" in message
    )
    assert raised.value.status_code == 400
    assert len(server.requests) == 1, "a 400 is not retried"


@pytest.mark.slow
def test_unknown_model_is_not_retried(server: Any) -> None:
    backend = OpenAICompatibleBackend(server.base_url, "EMPTY", "no-such-model", retry=FAST_RETRY)
    with pytest.raises(OpenAIBackendError, match=r"HTTP 404.*does not exist"):
        backend.loglikelihood([("a", " b")])
    assert len(server.requests) == 1


def test_connection_refused_is_retried_then_raises() -> None:
    with socket.socket() as sock:  # a port nobody listens on once this closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = OpenAICompatibleBackend(f"http://127.0.0.1:{port}/v1", "EMPTY", SERVED, retry=FAST_RETRY)
    with pytest.raises(OpenAIBackendError, match=r"gave up after 3 attempts: APIConnectionError"):
        backend.generate(["x"], SamplingParams(max_new_tokens=1))


def test_empty_context_is_refused() -> None:
    backend = OpenAICompatibleBackend("http://127.0.0.1:9/v1", "EMPTY", SERVED)
    with pytest.raises(ValueError, match=r"empty \(or blank\) context"):
        backend.loglikelihood([("", "text")])


def test_render_chat_without_a_tokenizer_says_what_to_pass(tmp_path: Path) -> None:
    backend = OpenAICompatibleBackend(
        "http://127.0.0.1:9/v1", "EMPTY", SERVED, tokenizer=str(tmp_path / "none")
    )
    with pytest.raises(OpenAIBackendError, match="Pass tokenizer="):
        backend.render_chat([("user", "hi")])


# -- pure helpers ------------------------------------------------------------------------------------------


def _echo(
    tokens: list[str], logprobs: list[float | None], tops: list[dict[str, float] | None]
) -> EchoedPrompt:
    offsets = [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    return EchoedPrompt(tokens=tokens, token_logprobs=logprobs, top_logprobs=tops, text_offset=offsets)


def test_boundary_by_offset_handles_a_bos_prefix_and_refuses_straddling_or_drifting_tokens() -> None:
    plain = _echo(["Answer", ":", " Paris"], [None, -1.0, -2.0], [None, {":": -1.0}, {" Paris": -2.0}])
    assert continuation_start_by_offset(plain, "Answer: Paris", len("Answer:")) == 2
    with_bos = _echo(["<s>", "Answer", ":", " Paris"], [None, -3.0, -1.0, -2.0], [None] * 4)
    assert continuation_start_by_offset(with_bos, "Answer: Paris", len("Answer:")) == 3
    straddling = _echo(["foob", "ar"], [None, -1.0], [None, None])
    assert continuation_start_by_offset(straddling, "foobar", 3) is None
    drifting = _echo(["Z", "\ufffd", "\ufffd", "rich", " is"], [None] * 5, [None] * 5)
    assert continuation_start_by_offset(drifting, "Zürich is", len("Zürich")) is None


def test_loglikelihood_from_echo_sums_the_continuation_and_checks_greedy() -> None:
    echo = _echo(
        ["Answer", ":", " Par", "is"],
        [None, -1.0, -2.0, -0.5],
        [None, {":": -1.0}, {" Par": -2.0, " Lon": -1.5}, {"is": -0.5}],
    )
    result = loglikelihood_from_echo(echo, 2, "here")
    assert result.logprob == pytest.approx(-2.5)
    assert result.is_greedy is False
    assert loglikelihood_from_echo(echo, 3, "here").is_greedy is True
    with pytest.raises(OpenAIBackendError, match="encodes to no tokens"):
        loglikelihood_from_echo(echo, 4, "here")


def test_echo_from_wire_explains_a_server_without_prompt_logprobs() -> None:
    with pytest.raises(OpenAIBackendError, match="returned no logprobs"):
        EchoedPrompt.from_wire(None, "here")
    with pytest.raises(OpenAIBackendError, match="lack top_logprobs"):
        EchoedPrompt.from_wire({"tokens": ["a"], "token_logprobs": [None], "text_offset": [0]}, "here")


def test_trailing_whitespace_moves_to_the_continuation() -> None:
    assert split_trailing_whitespace("lazy \n ", "dog") == ("lazy", " \n dog")
    assert split_trailing_whitespace("Answer:", " B") == ("Answer:", " B")


def test_completion_kwargs_map_sampling_params() -> None:
    greedy = completion_kwargs(SamplingParams(temperature=0.0, top_p=0.9, max_new_tokens=7, seed=3))
    assert greedy == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 7, "seed": 3}
    sampled = completion_kwargs(
        SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=5, stop=("\n",), seed=1)
    )
    assert sampled == {"temperature": 0.7, "top_p": 0.9, "max_tokens": 5, "seed": 1, "stop": ["\n"]}


def test_retry_delays_grow_and_are_capped() -> None:
    policy = RetryPolicy(max_attempts=6, initial_delay_s=0.5, max_delay_s=3.0)
    assert [policy.delay(k) for k in range(1, 5)] == [0.5, 1.0, 2.0, 3.0]
    assert policy.delay(1, retry_after_s=2.5) == 2.5
    assert policy.delay(1, retry_after_s=60) == 3.0


# -- identity: the served model as the server reports it, plus the declared weights hash ---------------------

DECLARED = "sha256:" + "ab" * 32


@pytest.fixture
def bare_server() -> Iterator[Any]:
    """The wire server without a model: it answers ``/v1/models`` and ``/version`` (identity needs no model)."""
    module = _load_wire_server_module()
    server = module.WireServer(None, None, SERVED)
    with server.running():
        yield server


def _manifest(tmp_path: Path, model_hash: str = DECLARED) -> Any:
    from eval_assets.checkpoints import CheckpointManifest

    return CheckpointManifest(
        name="served", path=str(tmp_path), format="hf", backend="openai", model_hash=model_hash,
        tokenizer_hash="sha256:t", config_hash="sha256:c", source="test", registered_at="2026-01-01T00:00:00Z",
    )  # fmt: skip


def test_engine_id_is_what_the_server_serves_not_where(bare_server: Any, tmp_path: Path) -> None:
    module = _load_wire_server_module()
    engine = OpenAICompatibleBackend(bare_server.base_url, "EMPTY", SERVED, model_hash=DECLARED).engine
    assert engine == (
        f"openai-compatible/id={SERVED}/max_model_len=8192/owned_by=vllm/root=/models/smollm2-135m/"
        f"server_version=0.0.test/model_hash={DECLARED}"
    )
    assert bare_server.base_url not in engine
    twin = module.WireServer(None, None, SERVED)
    with twin.running():
        assert (
            OpenAICompatibleBackend(twin.base_url, "EMPTY", SERVED, model_hash=DECLARED).engine == engine
        ), "two servers of one model share cached outputs"
        twin.max_model_len = 4096
        assert OpenAICompatibleBackend(twin.base_url, "EMPTY", SERVED, model_hash=DECLARED).engine != engine
    assert (
        OpenAICompatibleBackend(bare_server.base_url, "EMPTY", SERVED, model_hash="sha256:" + "0" * 64).engine
        != engine
    )


def test_a_model_the_server_does_not_serve_is_named(bare_server: Any) -> None:
    backend = OpenAICompatibleBackend(bare_server.base_url, "EMPTY", "no-such-model", model_hash=DECLARED)
    with pytest.raises(
        OpenAIBackendError, match=rf"does not serve model 'no-such-model' \(it serves \['{SERVED}'\]\)"
    ):
        _ = backend.engine


def test_the_runner_needs_a_declared_model_hash_that_is_the_checkpoints(
    bare_server: Any, tmp_path: Path
) -> None:
    from resources.evalgate import ModelRunner

    manifest = _manifest(tmp_path)
    with pytest.raises(ValueError, match=r"set ModelRunner\.openai_model_hash"):
        ModelRunner(openai_base_url=bare_server.base_url, openai_model=SERVED).engine(manifest)
    other = ModelRunner(
        openai_base_url=bare_server.base_url, openai_model=SERVED, openai_model_hash="sha256:" + "0" * 64
    )
    with pytest.raises(ValueError, match="would be another model's"):
        other.open(manifest, tmp_path)
    runner = ModelRunner(
        openai_base_url=bare_server.base_url, openai_model=SERVED, openai_model_hash=DECLARED
    )
    backend = runner.open(manifest, tmp_path)
    assert isinstance(backend, OpenAICompatibleBackend)
    assert backend.engine == runner.engine(manifest)
    backend.close()


def test_a_server_that_now_serves_another_model_is_refused(bare_server: Any, tmp_path: Path) -> None:
    from eval_assets.predict import EngineMismatchError, predict_suite
    from eval_assets.suites import load_suite_specs
    from eval_assets.suites.items import LikelihoodItem
    from resources.evalgate import ModelRunner
    from resources.prediction_cache import PredictionCache

    manifest = _manifest(tmp_path)
    runner = ModelRunner(
        openai_base_url=bare_server.base_url, openai_model=SERVED, openai_model_hash=DECLARED
    )
    engine = runner.engine(manifest)  # what the key names
    bare_server.root = (
        "/models/another-finetune"  # the server was restarted on other weights under the same name
    )
    cache = PredictionCache(tmp_path / "cache")
    with pytest.raises(EngineMismatchError, match="root=/models/another-finetune"):
        predict_suite(
            checkpoint="served", **manifest.key_hashes(), spec=load_suite_specs()["arc_easy"],
            items=[LikelihoodItem("q", "Question?", (" a", " b"), 0)], cache=cache, engine=engine,
            open_backend=lambda: runner.open(manifest, tmp_path),
        )  # fmt: skip
    assert not [r for r in bare_server.requests if "GET" not in r], "no completion was requested"
    assert cache.count() == 0


def test_seed_spans_keep_one_seed_per_request() -> None:
    assert seed_spans([1, 1, 1, 1, 1], 2) == [(0, 2), (2, 4), (4, 5)]
    assert seed_spans([1, 2, 2, 3], 4) == [(0, 1), (1, 3), (3, 4)]
    assert seed_spans([], 4) == []


@pytest.mark.slow
def test_each_prompt_goes_with_its_own_seed(server: Any) -> None:
    params = SamplingParams(temperature=0.8, max_new_tokens=3, seed=0)
    prompts = ["One", "Two", "Three"]
    got = _backend(server, prompts_per_request=4).generate(prompts, params, seeds=[5, 5, 7])
    bodies = [b for b in server.requests if "prompt" in b]
    assert sorted((b["seed"], len(b["prompt"])) for b in bodies) == [(5, 2), (7, 1)]
    server.reset()
    alone = _backend(server).generate(["Three"], params, seeds=[7])
    assert alone == got[2:], "a prompt's sample does not depend on the prompts beside it"
