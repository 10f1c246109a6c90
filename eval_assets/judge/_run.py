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
from eval_assets.progress import counter


class JudgeBackend(Protocol):
    """A judge: its identity and a batch call. ``complete`` returns one reply per request, in order; a call that
    failed after the backend's transport retries comes back with ``error`` set (a request the backend refuses
    outright, such as a bad key, raises). A backend that judges one request at a time may set ``chunk_size``
    (an int attribute): :func:`judge_pairs` then hands it that many at a time, caching and reporting each chunk.
    """

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
    report_as: tuple[str, str] | None = None,
) -> list[OrderedJudgement]:
    """Every pair in both orders. Cached verdicts are reused; the rest go to the backend in chunks of its
    ``chunk_size`` (all at once when it has none: one Message Batch), each chunk's parsed verdicts cached as it
    returns, so a run killed midway resumes from them; replies that do not parse go again (up to
    ``max_parse_retries`` more times), then count as errors. ``report_as`` (checkpoint, suite): progress events
    for the console (:mod:`eval_assets.progress`)."""
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
    usage: dict[str, list[JudgeReply]] = {}
    progress = (
        counter(*report_as, "judge verdicts", "judgements", total=len(jobs), cache_hits=len(hits))
        if report_as
        else None
    )
    chunk_size = getattr(backend, "chunk_size", None) or max(1, len(pending))
    #: each judged key's final verdict (position None: an error) with what all its attempts spent
    final: dict[str, tuple[str | None, CachedVerdict]] = {}

    def settle(key: str, position: str | None, rationale: str, attempts: int) -> None:
        """Record a key's final verdict (parsed, unparseable after the last attempt, or a transport failure),
        and cache a parsed one now."""
        spent = usage[key]
        verdict = CachedVerdict(
            position or "", rationale, sum(r.input_tokens for r in spent), sum(r.output_tokens for r in spent),
            sum(r.cost_usd for r in spent), sum(r.latency_s for r in spent), attempts,
        )  # fmt: skip
        final[key] = (position, verdict)
        if position is not None and cache is not None:
            cache.put_many({key: verdict})

    attempt = 0
    while pending and attempt <= max_parse_retries:
        attempt += 1
        again = []
        for start in range(0, len(pending), chunk_size):
            chunk = pending[start : start + chunk_size]
            replies = backend.complete([job[3] for job in chunk])
            if len(replies) != len(chunk):
                raise RuntimeError(f"judge backend returned {len(replies)} replies for {len(chunk)} requests")
            for job, reply in zip(chunk, replies, strict=True):
                key = job[2]
                usage.setdefault(key, []).append(reply)
                if reply.error is not None:  # a transport failure was already retried by the backend
                    settle(key, None, f"judge call failed: {reply.error}", attempt)
                    continue
                parsed = parse_verdict(reply.text)
                if parsed.position is not None:
                    settle(key, parsed.position, parsed.rationale, attempt)
                elif attempt <= max_parse_retries:
                    again.append(job)
                else:
                    why = f"unparseable after {attempt} attempts; last reply: {parsed.rationale[:300]!r}"
                    settle(key, None, why, attempt)
            if progress is not None:
                progress(len(final))
        pending = again
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
        position, v = final[key]
        results.append(OrderedJudgement(
            pair.item_id, order, to_verdict(position, order), position, v.rationale, v.input_tokens,  # type: ignore[arg-type]
            v.output_tokens, v.cost_usd, v.latency_s, v.attempts, False, *lengths,
        ))  # fmt: skip
    return results
