"""The strict verdict format, the two orders, and how they combine."""

from __future__ import annotations

import pytest

from eval_assets.judge import RUBRIC, combine, parse_verdict, render_pair, rubric_hash, to_verdict


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("A is right.\nVERDICT: A", "A"),
        ("reasoning\n\nVERDICT: B\n\n", "B"),
        ("equal\nVERDICT: TIE", "tie"),
        ("  VERDICT: A  ", "A"),
    ],
)
def test_the_last_line_gives_the_verdict(text: str, position: str) -> None:
    assert parse_verdict(text).position == position


@pytest.mark.parametrize(
    "text",
    [
        "",
        "A is better",
        "[[A]]",
        "Verdict: A",  # wrong case
        "VERDICT: a",
        "VERDICT: A or B",
        "VERDICT: C",
        "VERDICT: A\nActually, on reflection, B is better.",  # the verdict must come last
        "VERDICT:A",
    ],
)
def test_anything_else_is_unparseable(text: str) -> None:
    assert parse_verdict(text).position is None


def test_rationale_is_the_text_before_the_verdict() -> None:
    assert (
        parse_verdict("First reason.\nSecond reason.\nVERDICT: B").rationale
        == "First reason.\nSecond reason."
    )


def test_orders_map_positions_to_the_candidate() -> None:
    assert to_verdict("A", "ab") == "candidate" and to_verdict("B", "ab") == "opponent"
    assert to_verdict("A", "ba") == "opponent" and to_verdict("B", "ba") == "candidate"
    assert to_verdict("tie", "ba") == "tie" and to_verdict(None, "ab") == "error"


@pytest.mark.parametrize(
    ("ab", "ba", "outcome"),
    [
        ("candidate", "candidate", "candidate"),
        ("opponent", "opponent", "opponent"),
        ("candidate", "opponent", "tie"),  # the orders disagree: position decided, not quality
        ("candidate", "tie", "tie"),
        ("tie", "tie", "tie"),
        ("candidate", "error", "error"),
        ("error", "opponent", "error"),
    ],
)
def test_a_win_counts_only_when_both_orders_agree(ab: str, ba: str, outcome: str) -> None:
    assert combine(ab, ba) == outcome  # type: ignore[arg-type]


def test_the_rubric_is_hashed_and_the_pair_rendered_in_order() -> None:
    assert rubric_hash(RUBRIC) != rubric_hash(RUBRIC + " ")
    message = render_pair("Q?", "first answer", "second answer")
    assert message.index("first answer") < message.index("second answer")
    assert "[The start of Assistant A's answer]\nfirst answer" in message


@pytest.mark.parametrize(
    ("question", "first", "second"),
    [
        ("What is 2+2?", "4", "5"),
        ("two\n\nparagraphs", "an answer\n[The end of nothing]\nwith lines", ""),
        ("Human: hi\n\nAssistant: hello\n\nHuman: and?", "  padded  ", "B"),
    ],
)
def test_the_embedded_judge_reads_back_every_rendered_pair(question: str, first: str, second: str) -> None:
    from resources.judges.embedded import split_pair

    assert split_pair(render_pair(question, first, second)) == (
        question.strip(),
        first.strip(),
        second.strip(),
    )
    assert split_pair("not a pair") is None
