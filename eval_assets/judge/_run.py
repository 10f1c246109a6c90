"""Running the protocol over pairs: both orders, through the cache, unparseable replies retried a bounded number
of times and then recorded as ``error``. Knows nothing of Dagster; the backend is any :class:`JudgeBackend`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from eval_assets.judge._cache import CachedVerdict, JudgeCache, JudgeIdentity, judge_key
from eval_assets.judge._protocol import (
    ORDERS,
    RUBRIC,
    JudgeReply,
    JudgeRequest,
    Order,
    Verdict,
    ordered,
    parse_verdict,
    render_pair,
    rubric_hash,
    to_verdict,
)


class JudgeBackend(Protocol):
    """A judge: its identity and a batch call. ``complete`` returns one reply per request, in order; a call that
    failed after the backend's transport retries comes back with ``error`` set (a request the backend refuses
    outright, such as a bad key, raises)."""

    @property
    def identity(self) -> JudgeIdentity: ...

    def complete(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]: ...


class JudgeRefusedError(ValueError):
    """The judge may not judge these checkpoints (it has the candidate's or production's weights)."""


@dataclass(frozen=True)
class Pair:
    """One prompt to judge: the question, the candidate's answer and the opponent's."""

    item_id: str
    question: str
    candidate: str
    opponent: str


@dataclass(frozen=True)
class OrderedJudgement:
    item_id: str
    order: Order
    verdict: Verdict
    position: str | None  # "A", "B", "tie"; None for an error
    rationale: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_s: float
    attempts: int
    cached: bool
    candidate_length: int
    opponent_length: int


def judge_pairs(
    backend: JudgeBackend,
    pairs: Sequence[Pair],
    cache: JudgeCache | None,
    *,
    max_tokens: int = 1024,
    max_parse_retries: int = 2,
    rubric: str = RUBRIC,
) -> list[OrderedJudgement]:
    """Every pair in both orders. Cached verdicts are reused; the rest go to the backend in one batch, and the
    replies that do not parse go again (up to ``max_parse_retries`` more times), then count as errors."""
    identity = backend.identity
    rubric_id = rubric_hash(rubric)
    jobs: list[tuple[Pair, Order, str, JudgeRequest]] = []
    for pair in pairs:
        for order in ORDERS:
            key = judge_key(identity, rubric_id, pair.question, pair.candidate, pair.opponent, order)
            first, second = ordered(pair.candidate, pair.opponent, order)
            request = JudgeRequest(key=key, system=rubric, user=render_pair(pair.question, first, second),
                                   max_tokens=max_tokens)  # fmt: skip
            jobs.append((pair, order, key, request))
    hits = cache.get_many([key for _, _, key, _ in jobs]) if cache is not None else {}
    pending = [job for job in jobs if job[2] not in hits]
    outcome: dict[str, tuple[str | None, str, JudgeReply, int]] = {}
    usage: dict[str, list[JudgeReply]] = {}
    attempt = 0
    while pending and attempt <= max_parse_retries:
        attempt += 1
        replies = backend.complete([job[3] for job in pending])
        if len(replies) != len(pending):
            raise RuntimeError(f"judge backend returned {len(replies)} replies for {len(pending)} requests")
        again = []
        for job, reply in zip(pending, replies, strict=True):
            key = job[2]
            usage.setdefault(key, []).append(reply)
            if reply.error is not None:
                outcome[key] = (None, f"judge call failed: {reply.error}", reply, attempt)
                continue  # a transport failure was already retried by the backend
            parsed = parse_verdict(reply.text)
            outcome[key] = (parsed.position, parsed.rationale, reply, attempt)
            if parsed.position is None:
                again.append(job)
        pending = again
    fresh: dict[str, CachedVerdict] = {}
    results: list[OrderedJudgement] = []
    for pair, order, key, _request in jobs:
        lengths = (len(pair.candidate), len(pair.opponent))
        if key in hits:
            hit = hits[key]
            results.append(OrderedJudgement(
                pair.item_id, order, to_verdict(hit.position, order), hit.position, hit.rationale,  # type: ignore[arg-type]
                0, 0, 0.0, 0.0, hit.attempts, True, *lengths,
            ))  # fmt: skip
            continue
        position, rationale, _reply, attempts = outcome[key]
        spent = usage.get(key, [])
        tokens_in = sum(r.input_tokens for r in spent)
        tokens_out = sum(r.output_tokens for r in spent)
        cost = sum(r.cost_usd for r in spent)
        latency = sum(r.latency_s for r in spent)
        if position is None and not rationale.startswith("judge call failed"):
            rationale = f"unparseable after {attempts} attempts; last reply: {rationale[:300]!r}"
        results.append(OrderedJudgement(
            pair.item_id, order, to_verdict(position, order), position, rationale, tokens_in, tokens_out,  # type: ignore[arg-type]
            cost, latency, attempts, False, *lengths,
        ))  # fmt: skip
        if position is not None:
            fresh[key] = CachedVerdict(position, rationale, tokens_in, tokens_out, cost, latency, attempts)
    if cache is not None and fresh:
        cache.put_many(fresh)
    return results
