"""Bias diagnostics and the win-rate of a pairwise run, pure (numpy, statsmodels).

Input: the ordered judgements of one run (one row per prompt and order: ``item_id``, ``order``, ``verdict``
candidate/opponent/tie/error, ``position`` A/B/tie or None, ``candidate_length``, ``opponent_length``).

* **win-rate**: per prompt, the two orders combined (a win only when both agree, else a tie), ties counted as
  half, prompts with an error excluded and counted;
* **position consistency**: the share of prompts (both orders parsed) whose two orders agree;
* **first-position preference**: of the decisive ordered verdicts, the share that picked position A (0.5: none);
* **longer-answer preference**: of the decisive ordered verdicts between answers of different length, the share
  that picked the longer one (0.5: none);
* **length-controlled win-rate** (AlpacaEval 2's idea): a binomial GLM of the per-prompt outcome on an intercept
  and ``tanh(length difference / its standard deviation)``; the LC win-rate is the fitted probability at zero
  length difference, ``expit(intercept)``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from eval_assets.judge._protocol import OUTCOME_SCORE, Verdict, combine


@dataclass(frozen=True)
class PromptOutcome:
    item_id: str
    outcome: Verdict
    ab: Verdict
    ba: Verdict
    length_difference: int  # candidate - opponent, characters


def prompt_outcomes(rows: Sequence[Mapping[str, Any]]) -> list[PromptOutcome]:
    """One outcome per prompt from its two ordered rows (a prompt missing an order is an error)."""
    by_item: dict[str, dict[str, Mapping[str, Any]]] = {}
    for row in rows:
        by_item.setdefault(str(row["item_id"]), {})[str(row["order"])] = row
    outcomes = []
    for item_id in sorted(by_item):
        orders = by_item[item_id]
        ab = orders.get("ab", {}).get("verdict", "error")
        ba = orders.get("ba", {}).get("verdict", "error")
        any_row = orders.get("ab") or orders.get("ba") or {}
        diff = int(any_row.get("candidate_length", 0)) - int(any_row.get("opponent_length", 0))
        outcomes.append(PromptOutcome(item_id, combine(ab, ba), ab, ba, diff))
    return outcomes


@dataclass(frozen=True)
class Diagnostics:
    prompts: int
    scored: int
    errors: int
    wins: int
    ties: int
    losses: int
    win_rate: float
    position_consistency: float
    first_position_preference: float
    longer_answer_preference: float
    length_controlled_win_rate: float
    length_model: str

    def as_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def _share(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def length_controlled_win_rate(
    scores: Sequence[float], length_differences: Sequence[float]
) -> tuple[float, str]:
    """``expit(b0)`` of the binomial GLM ``logit E[score] = b0 + b1 * tanh(diff / sd(diff))`` (scores 0, 0.5, 1),
    and a note on the fit. Without variation in length the raw win-rate is returned, said so."""
    y = np.asarray(scores, dtype=float)
    d = np.asarray(length_differences, dtype=float)
    if y.size == 0:
        return math.nan, "no prompt scored"
    sd = float(d.std(ddof=1)) if d.size > 1 else 0.0
    if sd == 0.0:
        return float(y.mean()), "no variation in length difference: LC win-rate = raw win-rate"
    if y.min() == y.max():
        return float(y.mean()), "every prompt has the same outcome: LC win-rate = raw win-rate"
    import statsmodels.api as sm

    x = sm.add_constant(np.tanh(d / sd), has_constant="add")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = sm.GLM(y, x, family=sm.families.Binomial()).fit()
        except Exception as exc:  # perfect separation and friends: say so rather than invent a number
            return math.nan, f"length model not estimable ({type(exc).__name__}: {exc})"
    b0, b1 = (float(v) for v in fit.params)
    if not (math.isfinite(b0) and math.isfinite(b1)):
        return math.nan, "length model not estimable (non-finite coefficients)"
    return float(
        1.0 / (1.0 + math.exp(-b0))
    ), f"binomial GLM, logit = {b0:+.3f} {b1:+.3f}*tanh(dlen/{sd:.0f} chars)"


def diagnose(rows: Sequence[Mapping[str, Any]]) -> Diagnostics:
    """Every diagnostic of one run's ordered judgements."""
    outcomes = prompt_outcomes(rows)
    scored = [o for o in outcomes if o.outcome != "error"]
    both_parsed = [o for o in outcomes if "error" not in (o.ab, o.ba)]
    decisive = [r for r in rows if r.get("position") in ("A", "B")]
    first = sum(1 for r in decisive if r["position"] == "A")
    differing = [r for r in decisive if int(r["candidate_length"]) != int(r["opponent_length"])]
    longer = 0
    for r in differing:
        candidate_longer = int(r["candidate_length"]) > int(r["opponent_length"])
        longer += int((r["verdict"] == "candidate") == candidate_longer)
    scores = [OUTCOME_SCORE[o.outcome] for o in scored]
    lc, note = length_controlled_win_rate(scores, [o.length_difference for o in scored])
    return Diagnostics(
        prompts=len(outcomes),
        scored=len(scored),
        errors=len(outcomes) - len(scored),
        wins=sum(1 for o in scored if o.outcome == "candidate"),
        ties=sum(1 for o in scored if o.outcome == "tie"),
        losses=sum(1 for o in scored if o.outcome == "opponent"),
        win_rate=float(np.mean(scores)) if scores else math.nan,
        position_consistency=_share(sum(1 for o in both_parsed if o.ab == o.ba), len(both_parsed)),
        first_position_preference=_share(first, len(decisive)),
        longer_answer_preference=_share(longer, len(differing)),
        length_controlled_win_rate=lc,
        length_model=note,
    )
