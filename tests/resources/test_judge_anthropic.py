"""The Anthropic judge through the official SDK against a local server speaking the Messages and Message Batches
wire protocol: request shapes, usage and cost, retries of 429/5xx only, and garbage verdicts as errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
from anthropic_wire_server import AnthropicWireServer
from judge_testing import judge_says

from eval_assets.judge import RUBRIC, JudgeCache, Pair, diagnose, judge_pairs, load_prices
from resources.judges.anthropic_judge import DEFAULT_MODEL, AnthropicJudge

PRICE = load_prices().price(DEFAULT_MODEL)


@pytest.fixture
def server() -> Iterator[AnthropicWireServer]:
    with AnthropicWireServer(responder=judge_says).running() as running:
        yield running


def make_judge(server: AnthropicWireServer, **kwargs: object) -> AnthropicJudge:
    options: dict[str, object] = {"api_key": "sk-test", "price": PRICE, "base_url": server.base_url,
                                  "backoff_s": 0.0, "batch_poll_s": 0.01} | kwargs  # fmt: skip
    return AnthropicJudge(**options)  # type: ignore[arg-type]


PAIRS = [
    Pair("win", "What is 2+2?", "GOOD: 4", "5"),
    Pair("loss", "Capital of France?", "Lyon", "GOOD: Paris"),
    Pair("tie", "Say hi.", "hi", "hello"),
]


def test_messages_request_shape_verdicts_usage_and_cost(server: AnthropicWireServer, tmp_path: Path) -> None:
    judge = make_judge(server)
    results = judge_pairs(judge, PAIRS, JudgeCache(tmp_path / "c.sqlite"), max_tokens=321)
    bodies = server.posts("/v1/messages")
    assert len(bodies) == 6  # 3 prompts x 2 orders
    for body in bodies:
        assert body["model"] == DEFAULT_MODEL == "claude-sonnet-4-5-20250929"
        assert body["max_tokens"] == 321
        assert "temperature" not in body
        assert body["system"] == [{"type": "text", "text": RUBRIC, "cache_control": {"type": "ephemeral"}}]
        assert [m["role"] for m in body["messages"]] == ["user"]
    headers = [h for method, _, h, _ in server.requests if method == "POST"]
    assert all(
        "sk-test" in (h.get("x-api-key"), h.get("authorization", "").removeprefix("Bearer ")) for h in headers
    )
    assert all("anthropic-version" in h for h in headers)
    # both orders: the candidate's answer sits in position A for "ab" and in position B for "ba"
    first = {r.order: r for r in results if r.item_id == "win"}
    assert first["ab"].position == "A" and first["ba"].position == "B"
    verdicts = {(r.item_id, r.order): r.verdict for r in results}
    assert verdicts == {("win", "ab"): "candidate", ("win", "ba"): "candidate", ("loss", "ab"): "opponent",
                        ("loss", "ba"): "opponent", ("tie", "ab"): "tie", ("tie", "ba"): "tie"}  # fmt: skip
    # usage -> USD: the first call writes the system prompt to the cache, every later call reads it
    writes = [r for r in results if r.cost_usd > 0]
    assert len(writes) == 6
    system_tokens = len(RUBRIC) // 4
    expected_first = PRICE.cost(input_tokens=results[0].input_tokens - system_tokens,
                                output_tokens=results[0].output_tokens, cache_write=system_tokens)  # fmt: skip
    assert results[0].cost_usd == pytest.approx(expected_first)
    expected_second = PRICE.cost(input_tokens=results[1].input_tokens - system_tokens,
                                 output_tokens=results[1].output_tokens, cache_read=system_tokens)  # fmt: skip
    assert results[1].cost_usd == pytest.approx(expected_second)
    assert results[1].cost_usd < results[0].cost_usd  # a cache read costs a tenth of a write
    diagnostics = diagnose([r.__dict__ for r in results])
    assert (diagnostics.wins, diagnostics.ties, diagnostics.losses, diagnostics.errors) == (1, 1, 1, 0)
    assert diagnostics.win_rate == pytest.approx(0.5)


def test_cache_reuses_verdicts_and_misses_on_a_new_answer(
    server: AnthropicWireServer, tmp_path: Path
) -> None:
    cache = JudgeCache(tmp_path / "c.sqlite")
    judge = make_judge(server)
    judge_pairs(judge, PAIRS, cache)
    again = judge_pairs(judge, PAIRS, cache)
    assert len(server.posts("/v1/messages")) == 6 and all(r.cached for r in again)
    changed = [Pair("win", "What is 2+2?", "GOOD: four", "5")]  # a new candidate answer: both orders miss
    fresh = judge_pairs(judge, changed, cache)
    assert len(server.posts("/v1/messages")) == 8 and not any(r.cached for r in fresh)
    other_rubric = judge_pairs(judge, PAIRS[:1], cache, rubric=RUBRIC + "\nBe brief.")
    assert not any(r.cached for r in other_rubric)


def test_429_and_500_are_retried_then_succeed(server: AnthropicWireServer, tmp_path: Path) -> None:
    server.fail_next(429, 500)
    results = judge_pairs(make_judge(server, max_retries=3), PAIRS[:1], None)
    assert [r.verdict for r in results] == ["candidate", "candidate"]
    assert len(server.posts("/v1/messages")) == 4  # two failures, then both orders


def test_transient_failures_past_the_cap_are_errors_never_verdicts(server: AnthropicWireServer) -> None:
    server.fail_next(500, 529, 500)
    results = judge_pairs(make_judge(server, max_retries=2), PAIRS[:1], None, max_parse_retries=0)
    ab = next(r for r in results if r.order == "ab")
    assert ab.verdict == "error" and ab.position is None and "InternalServerError" in ab.rationale
    assert len(server.posts("/v1/messages")) == 4  # 3 attempts for ab (all failed), 1 for ba


def test_a_400_is_not_retried(server: AnthropicWireServer) -> None:
    server.fail_next(400)
    with pytest.raises(anthropic.BadRequestError):
        judge_pairs(make_judge(server, max_retries=3), PAIRS[:1], None)
    assert len(server.posts("/v1/messages")) == 1


def test_garbage_verdicts_are_retried_a_bounded_number_of_times_then_recorded_as_errors(
    server: AnthropicWireServer, tmp_path: Path
) -> None:
    cache = JudgeCache(tmp_path / "c.sqlite")
    pairs = [Pair("garbage", "GARBAGE question", "x", "y"), *PAIRS[:1]]
    results = judge_pairs(make_judge(server), pairs, cache, max_parse_retries=2)
    garbage = [r for r in results if r.item_id == "garbage"]
    assert [r.verdict for r in garbage] == ["error", "error"]
    assert all(r.attempts == 3 and "unparseable after 3 attempts" in r.rationale for r in garbage)
    assert len(server.posts("/v1/messages")) == 2 * 3 + 2
    assert all(r.input_tokens > 0 and r.cost_usd > 0 for r in garbage)  # the retries' cost is counted
    diagnostics = diagnose([r.__dict__ for r in results])
    assert diagnostics.errors == 1 and diagnostics.scored == 1 and diagnostics.win_rate == 1.0
    # errors are not cached: the next run asks again
    judge_pairs(make_judge(server), pairs[:1], cache, max_parse_retries=0)
    assert len(server.posts("/v1/messages")) == 2 * 3 + 2 + 2


def test_message_batches_request_shape_discount_and_errored_results(server: AnthropicWireServer) -> None:
    server.polls_until_ended = 2
    server.errored_ids = {"r5"}  # the last request of the batch (tie, ba)
    results = judge_pairs(make_judge(server, use_batches=True), PAIRS, None, max_parse_retries=0)
    (batch,) = server.posts("/v1/messages/batches")
    assert [r["custom_id"] for r in batch["requests"]] == [f"r{i}" for i in range(6)]
    params = batch["requests"][0]["params"]
    assert params["model"] == DEFAULT_MODEL and params["max_tokens"] == 1024
    assert params["system"][0]["cache_control"] == {"type": "ephemeral"}
    polls = [p for m, p, _, _ in server.requests if m == "GET" and p.endswith("msgbatch_1")]
    assert len(polls) >= 2
    assert not server.posts("/v1/messages")  # nothing went through the one-at-a-time API
    ok = results[0]
    system_tokens = len(RUBRIC) // 4
    assert ok.cost_usd == pytest.approx(PRICE.cost(input_tokens=ok.input_tokens - system_tokens,
        output_tokens=ok.output_tokens, cache_write=system_tokens, batch=True))  # fmt: skip
    assert ok.cost_usd == pytest.approx(0.5 * PRICE.cost(input_tokens=ok.input_tokens - system_tokens,
        output_tokens=ok.output_tokens, cache_write=system_tokens))  # fmt: skip
    errored = results[5]
    assert (errored.item_id, errored.order, errored.verdict) == ("tie", "ba", "error")
    assert "scripted failure" in errored.rationale
