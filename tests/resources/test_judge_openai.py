"""The OpenAI-compatible judge through the official SDK against a local server speaking ``/v1/chat/completions``:
request shape, usage and cost, retries of 429/5xx only (capped), and garbage verdicts as errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from judge_testing import judge_says
from openai_chat_wire_server import ChatWireServer, tokens

from eval_assets.judge import RUBRIC, JudgeCache, ModelPrice, Pair, diagnose, judge_pairs, render_pair
from resources.judges.openai_judge import BACKEND_VERSION, OpenAICompatibleJudge

MODEL = "qwen2.5-72b-instruct"
PRICE = ModelPrice(input=0.5, output=1.5, cache_write=0.0, cache_read=0.0)


def judge_says_to(system: str, user: str) -> str:
    assert system == RUBRIC
    return judge_says(user)


@pytest.fixture
def server() -> Iterator[ChatWireServer]:
    with ChatWireServer(responder=judge_says_to, served_model=MODEL).running() as running:
        yield running


def make_judge(server: ChatWireServer, **kwargs: object) -> OpenAICompatibleJudge:
    options: dict[str, object] = {"base_url": server.base_url, "model": MODEL, "model_hash": "sha256:judge",
                                  "family": "qwen", "api_key": "sk-local", "price": PRICE, "backoff_s": 0.0,
                                  } | kwargs  # fmt: skip
    return OpenAICompatibleJudge(**options)  # type: ignore[arg-type]


PAIRS = [
    Pair("win", "What is 2+2?", "GOOD: 4", "5"),
    Pair("loss", "Capital of France?", "Lyon", "GOOD: Paris"),
    Pair("tie", "Say hi.", "hi", "hello"),
]


def test_chat_request_shape_verdicts_usage_and_cost(server: ChatWireServer, tmp_path: Path) -> None:
    judge = make_judge(server)
    assert judge.identity.judge_id == f"openai:{MODEL}" and judge.identity.version == BACKEND_VERSION
    results = judge_pairs(judge, PAIRS, JudgeCache(tmp_path / "c.sqlite"), max_tokens=321)
    bodies = server.posts()
    assert len(bodies) == 6  # 3 prompts x 2 orders
    for body in bodies:
        assert body["model"] == MODEL
        assert body["max_tokens"] == 321
        assert body["temperature"] == 0.0
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
        assert body["messages"][0]["content"] == RUBRIC
    # the user messages: each pair in both orders, the candidate's answer first in "ab"
    assert bodies[0]["messages"][1]["content"] == render_pair("What is 2+2?", "GOOD: 4", "5")
    assert bodies[1]["messages"][1]["content"] == render_pair("What is 2+2?", "5", "GOOD: 4")
    headers = [h for method, _, h, _ in server.requests if method == "POST"]
    assert all(h.get("authorization") == "Bearer sk-local" for h in headers)
    verdicts = {(r.item_id, r.order): r.verdict for r in results}
    assert verdicts == {("win", "ab"): "candidate", ("win", "ba"): "candidate", ("loss", "ab"): "opponent",
                        ("loss", "ba"): "opponent", ("tie", "ab"): "tie", ("tie", "ba"): "tie"}  # fmt: skip
    # usage -> tokens -> USD, per judgement
    for result, body in zip(results, bodies, strict=True):
        reply = judge_says_to(RUBRIC, body["messages"][1]["content"])
        expected_in = tokens(RUBRIC) + tokens(body["messages"][1]["content"])
        assert (result.input_tokens, result.output_tokens) == (expected_in, tokens(reply))
        assert result.cost_usd == pytest.approx((expected_in * 0.5 + tokens(reply) * 1.5) / 1e6)
        assert result.cost_usd > 0
    diagnostics = diagnose([r.__dict__ for r in results])
    assert (diagnostics.wins, diagnostics.ties, diagnostics.losses, diagnostics.errors) == (1, 1, 1, 0)


def test_unpriced_self_hosted_judge_costs_nothing(server: ChatWireServer) -> None:
    results = judge_pairs(make_judge(server, price=None), PAIRS[:1], None)
    assert all(r.cost_usd == 0.0 and r.input_tokens > 0 for r in results)


def test_429_and_500_are_retried_then_succeed(server: ChatWireServer) -> None:
    server.fail_next(429, 500)
    results = judge_pairs(make_judge(server, max_retries=3), PAIRS[:1], None)
    assert [r.verdict for r in results] == ["candidate", "candidate"]
    assert len(server.posts()) == 4  # two failures, then both orders


def test_transient_failures_past_the_cap_are_errors_never_verdicts(server: ChatWireServer) -> None:
    server.fail_next(500, 429, 503)
    results = judge_pairs(make_judge(server, max_retries=2), PAIRS[:1], None, max_parse_retries=0)
    ab = next(r for r in results if r.order == "ab")
    assert ab.verdict == "error" and ab.position is None
    assert "judge call failed" in ab.rationale and "after 2 retries" in ab.rationale
    assert next(r for r in results if r.order == "ba").verdict == "candidate"
    assert len(server.posts()) == 4  # 3 attempts for ab (all failed), 1 for ba


@pytest.mark.parametrize("status, exc", [(400, openai.BadRequestError), (401, openai.AuthenticationError)])
def test_a_client_error_is_not_retried(server: ChatWireServer, status: int, exc: type[Exception]) -> None:
    server.fail_next(status)
    with pytest.raises(exc):
        judge_pairs(make_judge(server, max_retries=3), PAIRS[:1], None)
    assert len(server.posts()) == 1


def test_garbage_verdicts_are_retried_a_bounded_number_of_times_then_recorded_as_errors(
    server: ChatWireServer, tmp_path: Path
) -> None:
    cache = JudgeCache(tmp_path / "c.sqlite")
    pairs = [Pair("garbage", "GARBAGE question", "x", "y"), *PAIRS[:1]]
    results = judge_pairs(make_judge(server), pairs, cache, max_parse_retries=2)
    garbage = [r for r in results if r.item_id == "garbage"]
    assert [r.verdict for r in garbage] == ["error", "error"]
    assert all(r.position is None for r in garbage)
    assert all(r.attempts == 3 and "unparseable after 3 attempts" in r.rationale for r in garbage)
    assert len(server.posts()) == 2 * 3 + 2
    assert all(r.input_tokens > 0 and r.cost_usd > 0 for r in garbage)  # the retries' usage is counted
    diagnostics = diagnose([r.__dict__ for r in results])
    assert diagnostics.errors == 1 and diagnostics.scored == 1 and diagnostics.win_rate == 1.0
    # errors are not cached: the next run asks again; verdicts are
    judge_pairs(make_judge(server), pairs, cache, max_parse_retries=0)
    assert len(server.posts()) == 2 * 3 + 2 + 2
