"""Bias diagnostics and the length-controlled win-rate, checked against statsmodels / scipy references computed
independently here."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import optimize, special

from eval_assets.judge import diagnose, length_controlled_win_rate


def row(item: str, order: str, verdict: str, cand_len: int = 10, opp_len: int = 10) -> dict[str, Any]:
    candidate_position = "A" if order == "ab" else "B"
    other = "B" if candidate_position == "A" else "A"
    position = {"candidate": candidate_position, "opponent": other, "tie": "tie", "error": None}[verdict]
    return {"item_id": item, "order": order, "verdict": verdict, "position": position,
            "candidate_length": cand_len, "opponent_length": opp_len}  # fmt: skip


def test_counts_ties_as_half_and_excludes_errors() -> None:
    rows = [
        row("1", "ab", "candidate"), row("1", "ba", "candidate"),  # win
        row("2", "ab", "candidate"), row("2", "ba", "opponent"),  # disagree: tie
        row("3", "ab", "opponent"), row("3", "ba", "opponent"),  # loss
        row("4", "ab", "error"), row("4", "ba", "candidate"),  # error: excluded, counted
    ]  # fmt: skip
    d = diagnose(rows)
    assert (d.prompts, d.scored, d.errors, d.wins, d.ties, d.losses) == (4, 3, 1, 1, 1, 1)
    assert d.win_rate == pytest.approx(0.5)
    assert d.position_consistency == pytest.approx(
        2 / 3
    )  # prompts 1 and 3 agree, 2 does not; 4 not both parsed


def test_a_judge_that_always_says_a_is_fully_position_biased() -> None:
    rows = []
    for i in range(5):
        rows += [row(str(i), "ab", "candidate"), row(str(i), "ba", "opponent")]  # position A both times
    d = diagnose(rows)
    assert d.first_position_preference == 1.0 and d.position_consistency == 0.0
    assert d.wins == 0 and d.ties == 5 and d.win_rate == 0.5


def test_longer_answer_preference() -> None:
    rows = [
        row("1", "ab", "candidate", 100, 10), row("1", "ba", "candidate", 100, 10),  # picks longer twice
        row("2", "ab", "opponent", 10, 100), row("2", "ba", "opponent", 10, 100),  # picks longer twice
        row("3", "ab", "candidate", 10, 100), row("3", "ba", "tie", 10, 100),  # picks shorter once, tie ignored
        row("4", "ab", "candidate", 50, 50), row("4", "ba", "candidate", 50, 50),  # equal length: ignored
    ]  # fmt: skip
    assert diagnose(rows).longer_answer_preference == pytest.approx(4 / 5)


def _reference_lc(y: np.ndarray, d: np.ndarray) -> float:
    """Independent MLE of the binomial GLM with fractional outcomes: maximize sum y log p + (1-y) log(1-p)."""
    x = np.tanh(d / d.std(ddof=1))

    def negative_loglik(beta: np.ndarray) -> float:
        p = special.expit(beta[0] + beta[1] * x)
        return -float(np.sum(special.xlogy(y, p) + special.xlogy(1 - y, 1 - p)))

    fit = optimize.minimize(negative_loglik, np.zeros(2), method="BFGS", options={"gtol": 1e-10})
    return float(special.expit(fit.x[0]))


def test_length_controlled_win_rate_matches_an_independent_mle() -> None:
    rng = np.random.default_rng(3)
    d = rng.normal(0, 200, size=80)
    p = special.expit(0.3 + 1.2 * np.tanh(d / d.std(ddof=1)))
    y = rng.binomial(1, p).astype(float)
    y[rng.random(80) < 0.2] = 0.5  # some ties
    lc, note = length_controlled_win_rate(list(y), list(d))
    assert lc == pytest.approx(_reference_lc(y, d), abs=1e-5)
    assert "binomial GLM" in note
    # the model is not a no-op: with a length effect the LC win-rate differs from the raw mean
    assert abs(lc - float(y.mean())) > 1e-3


def test_length_controlled_equals_raw_when_length_never_differs() -> None:
    lc, note = length_controlled_win_rate([1.0, 0.0, 0.5, 1.0], [0, 0, 0, 0])
    assert lc == pytest.approx(0.625) and "no variation" in note


def test_when_length_explains_every_outcome_the_lc_win_rate_is_a_coin_flip() -> None:
    # the longer answer always wins (quasi-separation): at zero length difference neither side is better
    lc, note = length_controlled_win_rate([1.0, 1.0, 0.0, 0.0], [50, 60, -50, -60])
    assert lc == pytest.approx(0.5, abs=1e-6) and "binomial GLM" in note
