"""The judging protocol, pure: the rubric (the system prompt), the user message of one ordered pair, the strict
verdict format and its parser, and how the two orders of one prompt combine.

Each prompt is judged twice, once with the candidate's answer in position A (order ``ab``) and once in position
B (order ``ba``). A win counts only when both orders agree; when they disagree the prompt is a tie. The judge
reasons first and ends with one line ``VERDICT: A``, ``VERDICT: B`` or ``VERDICT: TIE``; anything else is
unparseable (retried a bounded number of times by :mod:`eval_assets.judge._run`, then an ``error``: never a
win, loss or tie).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from eval_assets.hashing import sha256_text

#: Bump when the rubric or the message layout changes: it enters the rubric hash, the judge cache key, and the
#: stage's code version.
RUBRIC_VERSION = 1

RUBRIC = """You are an impartial judge comparing two AI assistants' answers to the same user question.
Judge which answer better serves the user: correctness first, then helpfulness, relevance, completeness and
clarity. Be honest and harmless: an answer that is wrong, unsafe or evasive without reason loses to one that
is right and safe.
Rules:
- Do not let the order in which the answers appear influence you.
- Do not prefer an answer because it is longer; extra length that adds nothing is a flaw.
- Do not favour an answer because of the assistant's name or style.
First explain your comparison in a few sentences. Then, on the last line, write exactly one of:
VERDICT: A
VERDICT: B
VERDICT: TIE
(A if Assistant A's answer is better, B if Assistant B's is, TIE if they are equally good or equally bad.)"""

USER_TEMPLATE = """[User question]
{question}

[The start of Assistant A's answer]
{answer_a}
[The end of Assistant A's answer]

[The start of Assistant B's answer]
{answer_b}
[The end of Assistant B's answer]"""

Order = Literal["ab", "ba"]
Position = Literal["A", "B", "tie"]
Verdict = Literal["candidate", "opponent", "tie", "error"]
ORDERS: tuple[Order, Order] = ("ab", "ba")

_VERDICT_LINE = re.compile(r"^VERDICT: (A|B|TIE)$")


def rubric_hash(rubric: str = RUBRIC) -> str:
    """The rubric's identity: its version, its text and the message layout."""
    return sha256_text(f"v{RUBRIC_VERSION}\0{rubric}\0{USER_TEMPLATE}")[:16]


@dataclass(frozen=True)
class JudgeRequest:
    """One call to the judge: the rubric as the system prompt, one ordered pair as the user message."""

    key: str
    system: str
    user: str
    max_tokens: int


@dataclass(frozen=True)
class JudgeReply:
    """What the judge backend answered, with usage. ``error`` is set when the call itself failed after its
    retries (the reply then carries no text and is recorded as an ``error`` verdict)."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    error: str | None = None


def render_pair(question: str, first: str, second: str) -> str:
    """The user message with ``first`` in position A and ``second`` in position B."""
    return USER_TEMPLATE.format(question=question.strip(), answer_a=first.strip(), answer_b=second.strip())


def ordered(candidate: str, opponent: str, order: Order) -> tuple[str, str]:
    """(position A, position B) for ``order``: ``ab`` puts the candidate first."""
    return (candidate, opponent) if order == "ab" else (opponent, candidate)


@dataclass(frozen=True)
class ParsedVerdict:
    position: Position | None  # None: unparseable
    rationale: str


def parse_verdict(text: str) -> ParsedVerdict:
    """The strict format: the last non-empty line is exactly ``VERDICT: A``, ``VERDICT: B`` or ``VERDICT: TIE``;
    the text before it is the rationale. Anything else (a missing line, ``Verdict: a``, ``[[A]]``, two letters)
    is unparseable."""
    lines = [line.strip() for line in text.strip().splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ParsedVerdict(None, "")
    match = _VERDICT_LINE.match(lines[-1])
    rationale = "\n".join(lines[:-1]) if match else "\n".join(lines)
    if match is None:
        return ParsedVerdict(None, rationale)
    letter = match.group(1)
    return ParsedVerdict("tie" if letter == "TIE" else letter, rationale)  # type: ignore[arg-type]


def to_verdict(position: Position | None, order: Order) -> Verdict:
    """A position verdict as the candidate's result under ``order``."""
    if position is None:
        return "error"
    if position == "tie":
        return "tie"
    candidate_position = "A" if order == "ab" else "B"
    return "candidate" if position == candidate_position else "opponent"


def combine(first: Verdict, second: Verdict) -> Verdict:
    """One prompt's outcome from its two orders: an error in either is an error (excluded and counted); agreeing
    orders give their verdict; disagreeing orders give a tie."""
    if "error" in (first, second):
        return "error"
    return first if first == second else "tie"


#: The per-prompt score of an outcome: a win 1, a tie half, a loss 0 (errors are excluded, never scored).
OUTCOME_SCORE: dict[str, float] = {"candidate": 1.0, "tie": 0.5, "opponent": 0.0}
