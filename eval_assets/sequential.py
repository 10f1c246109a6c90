"""Group-sequential non-inferiority gate: grow the sample in planned stages instead of shrugging "inconclusive".

Pure (numpy/scipy, no Dagster). The gate rule ``no_regression_vs_production`` compares a candidate with
production on paired 0/1 per-item scores of shared items, with a margin ``m`` (a regression of more than ``m``
blocks). Write ``δ`` for the true accuracy difference candidate − production. At each look ``k`` there are two
one-sided tests, both with their null at the margin (the standard non-inferiority design):

* **fail** (block): reject ``H0_block: δ ≥ -m`` — the upper confidence bound of ``δ`` is below ``-m``
  (a regression beyond the margin is shown). Its error, *false block*, is blocking a candidate at the margin
  or better; it is at most ``alpha_block`` over all looks together, and much smaller for ``δ`` well above
  ``-m`` (at ``δ = 0`` it is far below ``alpha_block``).
* **pass**: reject ``H0_pass: δ ≤ -m`` — the lower confidence bound is at or above ``-m``
  (non-inferiority shown). Its error, *false pass*, is passing a candidate at the margin or worse; at most
  ``alpha_pass`` over all looks.
* otherwise **continue** to the next stage, or, at the final look, **inconclusive**, which the policy turns
  into a warning or a block (critical suites block).

With one look at ``alpha = 0.025`` each this is exactly today's fixed-size rule with a 95% two-sided interval.

**Boundaries.** Each test has its own Lan-DeMets (1983) alpha-spending function ``α(t)`` of the information
fraction ``t_k = n_k / n_K`` (information is proportional to the number of items: the per-item variance of the
paired difference does not change between stages). ``"obrien_fleming"``: ``α(t) = 2 - 2Φ(z_{1-α/2} / √t)``;
``"pocock"``: ``α(t) = α ln(1 + (e - 1) t)``. The z boundary ``c_k`` of look ``k`` solves
``P(Z_1 < c_1, ..., Z_{k-1} < c_{k-1}, Z_k ≥ c_k) = α(t_k) - α(t_{k-1})`` for the canonical joint distribution
of the standardized statistics (a Brownian motion observed at ``t_1..t_K``), computed by exact recursive
numerical integration (Armitage, McPherson and Rowe 1969; Jennison and Turnbull 2000, ch. 19) on a Simpson
grid of at least 16 points per standard deviation of each increment. The tests check the result against
published tables: Lan-DeMets O'Brien-Fleming with four equally spaced looks at one-sided 0.025 is 4.333,
2.963, 2.359, 2.014, and the same integration reproduces Pocock's and O'Brien-Fleming's constant boundaries.

The two sets of boundaries are **non-binding**: each is computed as if the other did not exist. Stopping early
for the other decision only removes paths on which an error could still happen, so each error rate stays at or
below its alpha whatever the other boundary does (this is what makes "stop when either bound decides" safe).

**The interval at each look.** The gate's own paired interval: Newcombe's hybrid score interval (method 10;
:func:`eval_assets.stats.paired_proportion_difference_interval_from_counts`) with the upper limit at one-sided
level ``α_block,k`` and the lower limit at ``α_pass,k`` (one two-sided interval of confidence ``1 - 2α_k``
when the two alphas are equal). Why Newcombe rather than a Wald or score z statistic: it is the interval the
gate reports everywhere else (one look reproduces today's decision exactly), and it stays informative with few
discordant items, where Wald collapses. Simulated at the margin (100,000-200,000 runs per cell, looks at
200/500/1000/2000 items, O'Brien-Fleming spending, ``alpha = 0.025``, production accuracy 0.3 or 0.55): false
block and false pass both 2.3-2.6% at 6-30% discordance, as at a single look of 200 or 2000 items with the same
interval, so the looks add no error (naive repeated testing at 1.96 on the same looks: 7%). With very few
discordant items (3% discordance) Newcombe's lower limit is slightly liberal and its upper limit conservative:
false pass 2.7-2.8% with four looks (2.3-3.1% at one look), false block 2.0-2.1%. A restricted-MLE score test
(Tango 1998) has the mirror image there (false block 2.6-3.5%), so it would not serve the gate better. The tests
check both rates at 6% and 15% discordance; ``benchmarks/bench_gate_simulation.py`` prints the table.

**Power.** :func:`gate_power` and :func:`items_needed` are the normal approximation of the *fixed-size* gate
rule against the margin: ``d̂ ~ N(δ, (ψ - δ²)/n)`` with discordance ``ψ`` (the share of items the two
checkpoints disagree on), so ``P(fail) = Φ((-m - δ)√n / σ - z_α)`` with ``σ = √(ψ - δ²)``.
:func:`operating_characteristics` gives the same for the whole sequential design (same integration, with a
drift); :func:`simulate` checks everything end to end on synthetic paired data through the same decision.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import optimize, stats

from eval_assets.stats import paired_proportion_difference_interval_from_counts
from eval_assets.stats._validation import as_binary_array, check_same_length

Spending = Literal["obrien_fleming", "pocock"]
SequentialOutcome = Literal["fail", "pass", "continue", "inconclusive"]
InconclusivePolicy = Literal["warn", "block"]
Decision = Literal["fail", "pass"]
FloatArray = npt.NDArray[np.float64]

SPENDING_FUNCTIONS: tuple[Spending, ...] = ("obrien_fleming", "pocock")
_SPENDING_LABELS = {"obrien_fleming": "O'Brien-Fleming-type", "pocock": "Pocock-type"}
#: Stage sizes (cumulative shared items) recommended for the regression gate: the smoke profile first.
DEFAULT_STAGES: tuple[int, ...] = (200, 500, 1000, 2000)
#: Below this nominal one-sided level a look cannot decide (the interval would need z > ~7.6): it spends
#: (next to) no alpha, as O'Brien-Fleming does at a very early look, and never rejecting is conservative.
_NO_DECISION_ALPHA = 1e-14
_METHOD = "newcombe-paired-score"


# --------------------------------------------------------------------------------------------- boundaries


def alpha_spent(spending: Spending, alpha: float, t: float) -> float:
    """Cumulative one-sided alpha the Lan-DeMets spending function allows by information fraction ``t``.

    ``"obrien_fleming"``: ``2 - 2Φ(z_{1-α/2} / √t)``; ``"pocock"``: ``α ln(1 + (e - 1) t)``. Both are 0 at
    ``t = 0`` and ``alpha`` at ``t = 1``.
    """
    _check_spending(spending)
    _check_alpha(alpha, "alpha")
    if not 0.0 <= t <= 1.0 or math.isnan(t):
        raise ValueError(f"information fraction t must be in [0, 1]; got {t!r}.")
    if t == 0.0:
        return 0.0
    if t == 1.0:
        return alpha
    if spending == "obrien_fleming":
        return float(2.0 * stats.norm.sf(stats.norm.isf(alpha / 2.0) / math.sqrt(t)))
    return alpha * math.log(1.0 + (math.e - 1.0) * t)


def _simpson(lo: float, hi: float, step: float, max_points: int = 2001) -> tuple[FloatArray, FloatArray]:
    """Grid on [lo, hi] with at most ``step`` spacing (odd number of points) and its Simpson weights."""
    intervals = max(2, math.ceil((hi - lo) / step))
    intervals = min(intervals + intervals % 2, max_points - 1)
    x = np.linspace(lo, hi, intervals + 1)
    w = np.ones(intervals + 1)
    w[1:-1:2] = 4.0
    w[2:-1:2] = 2.0
    return x, w * (hi - lo) / intervals / 3.0


def exit_probabilities(
    lower: Sequence[float],
    upper: Sequence[float],
    information_fractions: Sequence[float],
    drift: float = 0.0,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Probabilities that a group-sequential z statistic first leaves its continuation region at each look.

    ``Z_k = S_k / √t_k`` where ``S`` is a Brownian motion with drift ``drift`` (the mean of ``Z`` at
    ``t = 1``) observed at the information fractions ``t_1 < ... < t_K``. The trial continues at look ``k``
    while ``lower[k] < Z_k < upper[k]`` (use ``±math.inf`` for an absent boundary).

    Returns:
        ``(below, above)``: for each look, the probability of stopping there by crossing ``lower`` / ``upper``
        (first exit). Computed by recursive numerical integration of the sub-density of ``S_k`` on the
        continuation region (Simpson's rule, ±8 standard deviations, at least 16 points per standard deviation
        of the next increment, at most 2001 points per look); accurate to about 1e-7 for designs whose
        information increments are at least a few percent.
    """
    t = _check_fractions(information_fractions)
    if len(lower) != len(t) or len(upper) != len(t):
        raise ValueError(
            f"lower ({len(lower)}), upper ({len(upper)}) and information_fractions ({len(t)}) must have one "
            "entry per look."
        )
    below: list[float] = []
    above: list[float] = []
    x = w = dens = np.zeros(0)
    previous = 0.0
    alive = True
    for k, tk in enumerate(t):
        if not alive:
            below.append(0.0)
            above.append(0.0)
            continue
        sd, mean = math.sqrt(tk), drift * tk
        lo, hi = float(lower[k]) * sd, float(upper[k]) * sd  # boundaries on the S scale (inf stays inf)
        if lo >= hi:
            raise ValueError(
                f"look {k + 1}: lower boundary {lower[k]} is not below upper boundary {upper[k]}."
            )
        if k == 0:
            below.append(float(stats.norm.cdf((lo - mean) / sd)))
            above.append(float(stats.norm.sf((hi - mean) / sd)))
        else:
            step_sd, step_mean = math.sqrt(tk - previous), drift * (tk - previous)
            mass = w * dens
            below.append(float(np.sum(mass * stats.norm.cdf((lo - x - step_mean) / step_sd))))
            above.append(float(np.sum(mass * stats.norm.sf((hi - x - step_mean) / step_sd))))
        if k == len(t) - 1:
            break
        grid_lo, grid_hi = max(lo, mean - 8.0 * sd), min(hi, mean + 8.0 * sd)
        if grid_lo >= grid_hi:  # (next to) nothing continues
            alive = False
            continue
        next_sd = math.sqrt(t[k + 1] - tk)
        x_new, w_new = _simpson(grid_lo, grid_hi, min(next_sd, sd) / 16.0)
        if k == 0:
            dens_new = stats.norm.pdf(x_new, mean, sd)
        else:
            kernel = stats.norm.pdf((x_new[None, :] - x[:, None] - step_mean) / step_sd) / step_sd
            dens_new = (w * dens) @ kernel
        x, w, dens, previous = x_new, w_new, np.asarray(dens_new, dtype=np.float64), tk
    return tuple(below), tuple(above)


@functools.lru_cache(maxsize=256)
def _spending_boundaries(fractions: tuple[float, ...], alpha: float, spending: Spending) -> tuple[float, ...]:
    bounds: list[float] = []
    spent = 0.0
    for k, tk in enumerate(fractions):
        cumulative = alpha if k == len(fractions) - 1 else alpha_spent(spending, alpha, tk)
        target = cumulative - spent
        spent = cumulative
        if target < _NO_DECISION_ALPHA:
            bounds.append(math.inf)
            continue
        if k == 0:
            bounds.append(float(stats.norm.isf(target)))
            continue
        lower = [-math.inf] * (k + 1)
        head = tuple(fractions[: k + 1])

        def excess(
            c: float,
            k: int = k,
            lower: list[float] = lower,
            head: tuple[float, ...] = head,
            target: float = target,
        ) -> float:
            return exit_probabilities(lower, [*bounds, c], head)[1][k] - target

        bounds.append(float(optimize.brentq(excess, -8.0, 40.0, xtol=1e-10, rtol=1e-12)))
    return tuple(bounds)


def spending_boundaries(
    information_fractions: Sequence[float], alpha: float, spending: Spending = "obrien_fleming"
) -> tuple[float, ...]:
    """One-sided upper z boundaries ``c_1..c_K`` whose first-crossing probabilities under the null spend
    ``α(t_k) - α(t_{k-1})`` at each look (all of ``alpha`` by the last look, whatever ``t_K``'s spending).

    A look that would spend less than 1e-14 gets ``math.inf`` (it cannot decide). Cached.
    """
    fractions = tuple(float(f) for f in _check_fractions(information_fractions))
    _check_spending(spending)
    return _spending_boundaries(fractions, _check_alpha(alpha, "alpha"), spending)


def _nominal(z: float) -> float:
    return 0.0 if math.isinf(z) else float(stats.norm.sf(z))


# ------------------------------------------------------------------------------------------------- design


@dataclass(frozen=True)
class Boundaries:
    """Per-look boundaries of a :class:`SequentialDesign` (index ``k - 1`` for look ``k``).

    Attributes:
        z_block, z_pass: z boundaries of the block and pass tests (``inf``: that look cannot decide).
        alpha_block, alpha_pass: the nominal one-sided level of each test at each look (``Φ(-z)``).
        spent_block, spent_pass: the cumulative alpha each test has spent by each look.
    """

    z_block: tuple[float, ...]
    z_pass: tuple[float, ...]
    alpha_block: tuple[float, ...]
    alpha_pass: tuple[float, ...]
    spent_block: tuple[float, ...]
    spent_pass: tuple[float, ...]


@dataclass(frozen=True)
class SequentialDesign:
    """A group-sequential plan for the regression gate.

    Attributes:
        stages: cumulative numbers of shared items at the looks, strictly increasing (``(200, 500, 1000,
            2000)``); the prefix-stable item selection makes each stage a superset of the previous one. One
            stage is the fixed-size gate.
        alpha_block: overall one-sided error of the fail decision (false block at the margin).
        alpha_pass: overall one-sided error of the pass decision (false pass at the margin).
        spending: ``"obrien_fleming"`` (Lan-DeMets O'Brien-Fleming-type: spends little early, keeps nearly the
            fixed-size power at the last look) or ``"pocock"`` (spends evenly: stops earlier on large effects,
            loses power at the last look).
    """

    stages: tuple[int, ...] = DEFAULT_STAGES
    alpha_block: float = 0.025
    alpha_pass: float = 0.025
    spending: Spending = "obrien_fleming"

    def __post_init__(self) -> None:
        stages = tuple(self.stages)
        if not stages:
            raise ValueError(
                "stages is empty: give at least one cumulative item count, e.g. (200, 500, 1000)."
            )
        for s in stages:
            if isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 1:
                raise ValueError(
                    f"stages must be positive integers (cumulative item counts); got {stages!r}."
                )
        if any(b <= a for a, b in itertools.pairwise(stages)):
            raise ValueError(f"stages must be strictly increasing cumulative item counts; got {stages!r}.")
        object.__setattr__(self, "stages", tuple(int(s) for s in stages))
        _check_alpha(self.alpha_block, "alpha_block")
        _check_alpha(self.alpha_pass, "alpha_pass")
        _check_spending(self.spending)

    @classmethod
    def fixed(cls, n: int, *, alpha_block: float = 0.025, alpha_pass: float = 0.025) -> SequentialDesign:
        """The fixed-size gate on ``n`` items (one look; 95% two-sided interval at the default alphas)."""
        return cls(stages=(n,), alpha_block=alpha_block, alpha_pass=alpha_pass)

    @property
    def looks(self) -> int:
        return len(self.stages)

    @property
    def max_items(self) -> int:
        return self.stages[-1]

    @property
    def information_fractions(self) -> tuple[float, ...]:
        """``n_k / n_K`` for each look."""
        return tuple(s / self.stages[-1] for s in self.stages)

    def for_suite(self, suite_size: int) -> SequentialDesign:
        """The design capped at a suite of ``suite_size`` items: the stages below it, then the suite itself
        as the final look (a suite of 700 with stages 200/500/1000/2000 looks at 200, 500 and 700)."""
        if isinstance(suite_size, bool) or not isinstance(suite_size, int | np.integer) or suite_size < 1:
            raise ValueError(f"suite_size must be a positive integer; got {suite_size!r}.")
        kept = tuple(s for s in self.stages if s < suite_size)
        final = min(int(suite_size), self.stages[-1])
        return replace(self, stages=(*tuple(s for s in kept if s < final), final))

    def boundaries(self) -> Boundaries:
        """z boundaries and nominal levels of both tests at every look (cached per design)."""
        return _boundaries(self)

    def describe(self) -> str:
        """The design in words, for a verdict's metadata."""
        if self.looks == 1:
            return (
                f"fixed size, {self.stages[0]} items, one-sided alpha {self.alpha_block:g} (block) / "
                f"{self.alpha_pass:g} (pass)"
            )
        return (
            f"group-sequential, {_SPENDING_LABELS[self.spending]} alpha spending (Lan-DeMets), looks at "
            f"{'/'.join(str(s) for s in self.stages)} items, overall one-sided alpha {self.alpha_block:g} "
            f"(block) / {self.alpha_pass:g} (pass), non-binding"
        )


@functools.lru_cache(maxsize=256)
def _boundaries(design: SequentialDesign) -> Boundaries:
    t = design.information_fractions
    zb = spending_boundaries(t, design.alpha_block, design.spending)
    zp = spending_boundaries(t, design.alpha_pass, design.spending)

    def spent(alpha: float) -> tuple[float, ...]:
        return tuple(
            alpha if k == len(t) - 1 else alpha_spent(design.spending, alpha, tk) for k, tk in enumerate(t)
        )

    return Boundaries(
        z_block=zb,
        z_pass=zp,
        alpha_block=tuple(_nominal(z) for z in zb),
        alpha_pass=tuple(_nominal(z) for z in zp),
        spent_block=spent(design.alpha_block),
        spent_pass=spent(design.alpha_pass),
    )


def default_design(suite_size: int, stages: Sequence[int] = DEFAULT_STAGES) -> SequentialDesign:
    """The recommended design for a suite: ``stages`` capped at the suite size, O'Brien-Fleming-type
    spending, one-sided alpha 0.025 for each decision."""
    return SequentialDesign(stages=tuple(stages)).for_suite(suite_size)


# ------------------------------------------------------------------------------------------------- power


def _sigma(discordance: float, true_difference: float) -> float:
    if isinstance(discordance, bool) or not 0.0 < discordance <= 1.0:
        raise ValueError(
            f"discordance must be in (0, 1] (share of items the checkpoints disagree on); got {discordance!r}."
        )
    if math.isnan(true_difference) or abs(true_difference) > discordance:
        raise ValueError(
            f"|true_difference| ({true_difference!r}) cannot exceed discordance ({discordance!r}): the accuracy "
            "difference is at most the share of items on which the checkpoints disagree."
        )
    return math.sqrt(max(discordance - true_difference**2, 1e-12))


def _check_margin(margin: float) -> float:
    if isinstance(margin, bool) or math.isnan(margin) or not 0.0 <= margin < 1.0:
        raise ValueError(f"margin must be in [0, 1) (e.g. 0.01 for one point); got {margin!r}.")
    return float(margin)


def gate_power(
    n: int,
    discordance: float,
    true_difference: float,
    margin: float,
    *,
    alpha: float = 0.025,
    decision: Decision = "fail",
) -> float:
    """Probability that the fixed-size gate on ``n`` items fails (``decision="fail"``: upper bound below
    ``-margin``) or passes (``"pass"``: lower bound at or above ``-margin``) under a true difference.

    Normal approximation of the paired difference: ``d̂ ~ N(δ, σ²/n)``, ``σ² = ψ - δ²``;
    ``P(fail) = Φ((-m - δ)√n/σ - z_α)``, ``P(pass) = Φ((δ + m)√n/σ - z_α)``, with ``alpha`` the one-sided level
    of each bound (0.025 for the gate's 95% two-sided interval, i.e. ``(1 - confidence) / 2``). At
    ``δ = -m`` both equal ``alpha``.
    """
    n = _check_n(n)
    sigma = _sigma(discordance, true_difference)
    m = _check_margin(margin)
    z = float(stats.norm.isf(_check_alpha(alpha, "alpha")))
    if decision not in ("fail", "pass"):
        raise ValueError(f"decision must be 'fail' or 'pass'; got {decision!r}.")
    distance = (-m - true_difference) if decision == "fail" else (true_difference + m)
    return float(stats.norm.cdf(distance * math.sqrt(n) / sigma - z))


def items_needed(
    discordance: float,
    true_difference: float,
    margin: float,
    *,
    alpha: float = 0.025,
    power: float = 0.8,
    decision: Decision = "fail",
) -> int:
    """Smallest ``n`` at which :func:`gate_power` reaches ``power``: ``⌈((z_α + z_power) σ / |δ + m|)²⌉``.

    ``decision="fail"`` needs ``δ < -margin`` (a regression beyond the margin to block), ``"pass"`` needs
    ``δ > -margin``; otherwise no sample size suffices and ``ValueError`` says so.
    """
    sigma = _sigma(discordance, true_difference)
    m = _check_margin(margin)
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1); got {power!r}.")
    z = float(stats.norm.isf(_check_alpha(alpha, "alpha")))
    if power <= alpha:
        raise ValueError(f"power ({power}) must exceed alpha ({alpha}).")
    if decision not in ("fail", "pass"):
        raise ValueError(f"decision must be 'fail' or 'pass'; got {decision!r}.")
    distance = (-m - true_difference) if decision == "fail" else (true_difference + m)
    if distance <= 0.0:
        what = "below" if decision == "fail" else "above"
        raise ValueError(
            f"the gate can only {decision} with high power when the true difference is {what} -margin "
            f"({-m:g}); got {true_difference:g}."
        )
    n = max(1, math.ceil(((z + float(stats.norm.ppf(power))) * sigma / distance) ** 2 - 1e-9))
    while (
        n > 1 and gate_power(n - 1, discordance, true_difference, m, alpha=alpha, decision=decision) >= power
    ):
        n -= 1
    while gate_power(n, discordance, true_difference, m, alpha=alpha, decision=decision) < power:
        n += 1
    return n


def gate_resolution(n: int, discordance: float, *, alpha: float = 0.025, power: float = 0.8) -> float:
    """Distance from the margin the fixed-size gate resolves with ``power``: it fails true differences below
    ``-m - r`` and passes those above ``-m + r`` with at least that probability; ``r = (z_α + z_power)√ψ/√n``
    (``σ = √ψ`` is the largest per-item standard deviation, so ``r`` is slightly conservative)."""
    n = _check_n(n)
    sigma = _sigma(discordance, 0.0)
    z = float(stats.norm.isf(_check_alpha(alpha, "alpha")))
    return (z + float(stats.norm.ppf(power))) * sigma / math.sqrt(n)


@dataclass(frozen=True)
class OperatingCharacteristics:
    """Normal-approximation rates of a design under a true difference (see :func:`operating_characteristics`)."""

    fail: float
    pass_: float
    inconclusive: float
    expected_items: float
    stop_fail: tuple[float, ...]  # per look
    stop_pass: tuple[float, ...]


def operating_characteristics(
    design: SequentialDesign, discordance: float, true_difference: float, margin: float
) -> OperatingCharacteristics:
    """P(fail), P(pass), P(inconclusive at the last look) and the expected number of items of ``design``.

    The z statistic of the gate at look ``k`` is ``(d̂_k + m)√n_k / σ``, a Brownian motion in the information
    fraction with drift ``(δ + m)√n_K / σ`` (``σ² = ψ - δ²``); :func:`exit_probabilities` with the lower
    boundary ``-z_block`` (fail) and upper ``z_pass`` (pass). For one look this is :func:`gate_power`.
    """
    sigma = _sigma(discordance, true_difference)
    m = _check_margin(margin)
    b = design.boundaries()
    drift = (true_difference + m) * math.sqrt(design.max_items) / sigma
    low, high = exit_probabilities(
        [-z for z in b.z_block], list(b.z_pass), design.information_fractions, drift
    )
    stop = [lo + hi for lo, hi in zip(low, high, strict=True)]
    remaining = 1.0 - sum(stop)
    expected = sum(p * n for p, n in zip(stop, design.stages, strict=True)) + remaining * design.max_items
    return OperatingCharacteristics(sum(low), sum(high), max(remaining, 0.0), expected, low, high)


# ----------------------------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class SequentialVerdict:
    """The gate's decision at one look of a :class:`SequentialDesign`.

    Attributes:
        outcome: ``"fail"`` (regression beyond the margin shown: block), ``"pass"`` (non-inferiority shown),
            ``"continue"`` (undecided, a later stage exists: evaluate ``next_n`` items and decide again; hold
            promotion meanwhile) or ``"inconclusive"`` (undecided at the final look: ``policy`` decides).
        blocking: whether promotion is blocked now: ``fail``, ``continue`` (pending), and ``inconclusive``
            under ``policy="block"``.
        look, looks: this look (1-based) and the number of looks of the design.
        n, next_n: items at this look; items of the next stage (``None`` unless ``continue``).
        estimate, low, high: the difference candidate − production and the interval used at this look.
        confidence: two-sided coverage of ``[low, high]``: ``1 - alpha_pass - alpha_block``.
        method: how the interval was computed (``"newcombe-paired-score"``).
        alpha_block, alpha_pass, z_block, z_pass: this look's nominal one-sided levels and z boundaries.
        design: the design in words (:meth:`SequentialDesign.describe`).
        discordance: the share of discordant items (floored at 2/n for the power statements).
        resolution: :func:`gate_resolution` at this ``n`` and discordance, the design's alpha and ``power``.
        pass_power_at_zero: fixed-size probability of passing at this ``n`` if the true difference were 0.
        items_to_pass_at_zero: items the fixed-size gate needs to pass a true difference of 0 with ``power``
            (``None`` when ``margin`` is 0: it never can).
        reason: the decision in plain English, with the interval, its method and level, and for undecided
            outcomes the gate's power against the margin and the items it would need.
    """

    outcome: SequentialOutcome
    blocking: bool
    look: int
    looks: int
    n: int
    next_n: int | None
    estimate: float
    low: float
    high: float
    confidence: float
    method: str
    alpha_block: float
    alpha_pass: float
    z_block: float
    z_pass: float
    margin: float
    threshold: float
    improvements: int
    regressions: int
    design: str
    policy: InconclusivePolicy
    discordance: float
    resolution: float
    pass_power_at_zero: float
    items_to_pass_at_zero: int | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _level(alpha_pass: float, alpha_block: float) -> str:
    """The interval's level in words: this look's nominal one-sided alpha of each bound."""

    def one(alpha: float) -> str:
        return "none (this look spends no alpha)" if alpha < _NO_DECISION_ALPHA else f"{alpha:.3g}"

    if alpha_pass == alpha_block:
        if alpha_pass < _NO_DECISION_ALPHA:
            return "no decision possible at this look: it spends no alpha"
        return f"nominal one-sided alpha {alpha_pass:.3g} per bound, two-sided {1.0 - 2.0 * alpha_pass:.2%}"
    return f"nominal one-sided alpha {one(alpha_pass)} (lower bound) / {one(alpha_block)} (upper bound)"


def sequential_decision_from_counts(
    design: SequentialDesign,
    look: int,
    a: int,
    b: int,
    c: int,
    d: int,
    margin: float,
    *,
    policy: InconclusivePolicy = "warn",
    power: float = 0.8,
) -> SequentialVerdict:
    """:func:`sequential_decision` from the paired 2x2 counts at this look: ``a`` both right, ``b`` only the
    candidate right (improvements), ``c`` only production right (regressions), ``d`` both wrong."""
    if policy not in ("warn", "block"):
        raise ValueError(
            f"policy must be 'warn' or 'block' (what an inconclusive final look does); got {policy!r}."
        )
    if isinstance(look, bool) or not isinstance(look, int | np.integer) or not 1 <= look <= design.looks:
        raise ValueError(
            f"look must be 1..{design.looks} (1-based, one per stage of {design.stages}); got {look!r}."
        )
    m = _check_margin(margin)
    n = a + b + c + d
    planned = design.stages[look - 1]
    if n != planned:
        raise ValueError(
            f"look {look} of the design plans {planned} shared items but the counts hold {n}; evaluate both "
            "checkpoints on the first stages[look - 1] items of the prefix-stable selection (or build the design "
            "with SequentialDesign(stages=...) from the item counts actually shared)."
        )
    bounds = design.boundaries()
    z_block, z_pass = bounds.z_block[look - 1], bounds.z_pass[look - 1]
    alpha_block, alpha_pass = bounds.alpha_block[look - 1], bounds.alpha_pass[look - 1]
    estimate, low, high = _interval(a, b, c, d, alpha_pass, alpha_block)
    threshold = -m
    final = look == design.looks
    if high < threshold:
        outcome: SequentialOutcome = "fail"
    elif low >= threshold:
        outcome = "pass"
    else:
        outcome = "inconclusive" if final else "continue"
    blocking = outcome in ("fail", "continue") or (outcome == "inconclusive" and policy == "block")

    discordance = min(1.0, max((b + c) / n, 2.0 / n))
    resolution = gate_resolution(n, discordance, alpha=design.alpha_block, power=power)
    pass_power = gate_power(n, discordance, 0.0, m, alpha=design.alpha_pass, decision="pass")
    to_pass = (
        None
        if m == 0.0
        else items_needed(discordance, 0.0, m, alpha=design.alpha_pass, power=power, decision="pass")
    )

    where = f"look {look}/{design.looks} (n={n})"
    bound_text = (
        f"difference {estimate:+.4f}, interval [{low:+.4f}, {high:+.4f}] ({_METHOD}, "
        f"{_level(alpha_pass, alpha_block)}; {design.describe()}); {c} items lost / {b} gained"
    )
    if outcome == "fail":
        reason = f"regression beyond the {m:.1%} margin at {where}: upper bound {high:+.4f} < {threshold:+.4f}; {bound_text}"
    elif outcome == "pass":
        reason = f"no regression beyond {m:.1%} at {where}: lower bound {low:+.4f} >= {threshold:+.4f}; {bound_text}"
    else:
        power_text = (
            f"with the observed {discordance:.1%} discordance, {n} items give the gate (fixed-n normal "
            f"approximation, one-sided alpha {design.alpha_pass:g}) {pass_power:.0%} power to pass a candidate "
            f"with no true difference, and {power:.0%} power only for true differences below "
            f"{threshold - resolution:+.4f} (block) or above {threshold + resolution:+.4f} (pass)"
        )
        if to_pass is not None:
            power_text += f"; {to_pass:,} items would give {power:.0%} power to pass at no true difference"
        if outcome == "continue":
            next_n = design.stages[look]
            reason = (
                f"undecided at {where}: the interval contains the margin {threshold:+.4f}; evaluate the next "
                f"stage ({next_n} items) and decide again; {bound_text}; {power_text}"
            )
        else:
            action = "blocks (policy: block)" if policy == "block" else "warns (policy: warn)"
            reason = (
                f"inconclusive at the final {where}, {action}: the interval contains the margin "
                f"{threshold:+.4f}; {bound_text}; {power_text}"
            )
    return SequentialVerdict(
        outcome=outcome,
        blocking=blocking,
        look=int(look),
        looks=design.looks,
        n=n,
        next_n=design.stages[look] if outcome == "continue" else None,
        estimate=estimate,
        low=low,
        high=high,
        confidence=1.0 - alpha_pass - alpha_block,
        method=_METHOD,
        alpha_block=alpha_block,
        alpha_pass=alpha_pass,
        z_block=z_block,
        z_pass=z_pass,
        margin=m,
        threshold=threshold,
        improvements=b,
        regressions=c,
        design=design.describe(),
        policy=policy,
        discordance=discordance,
        resolution=resolution,
        pass_power_at_zero=pass_power,
        items_to_pass_at_zero=to_pass,
        reason=reason,
    )


def sequential_decision(
    design: SequentialDesign,
    look: int,
    cand: Any,
    prod: Any,
    margin: float,
    *,
    policy: InconclusivePolicy = "warn",
    power: float = 0.8,
) -> SequentialVerdict:
    """The gate's decision at look ``look`` (1-based) from 0/1 per-item scores on the shared items.

    ``cand`` and ``prod`` are aligned item by item and hold exactly ``design.stages[look - 1]`` items (the
    prefix of the stable selection). Fails when the Newcombe upper bound at this look's nominal level
    ``alpha_block`` is below ``-margin``, passes when the lower bound at ``alpha_pass`` is at or above it,
    otherwise continues (or is inconclusive at the last look, blocking under ``policy="block"``). ``power``
    is used only for the power statements in the reason.

    Raises:
        ValueError: non-binary, empty or mismatched scores; a count that does not match the look's stage;
            ``look`` outside 1..K; bad margin or policy.
    """
    c_arr = as_binary_array(cand, "cand")
    p_arr = as_binary_array(prod, "prod")
    check_same_length(cand=c_arr, prod=p_arr)
    a = int((c_arr & p_arr).sum())
    b = int((c_arr & ~p_arr).sum())
    c = int((~c_arr & p_arr).sum())
    d = int((~c_arr & ~p_arr).sum())
    return sequential_decision_from_counts(design, look, a, b, c, d, margin, policy=policy, power=power)


def _interval(
    a: int, b: int, c: int, d: int, alpha_pass: float, alpha_block: float
) -> tuple[float, float, float]:
    """Estimate, lower limit at one-sided ``alpha_pass`` and upper limit at ``alpha_block`` (Newcombe)."""
    n = a + b + c + d
    estimate = (b - c) / n

    def limits(alpha: float) -> tuple[float, float]:
        if alpha < _NO_DECISION_ALPHA:
            return -1.0, 1.0
        iv = paired_proportion_difference_interval_from_counts(a, b, c, d, confidence=1.0 - 2.0 * alpha)
        return iv.low, iv.high

    low_pass, high_pass = limits(alpha_pass)
    high = high_pass if alpha_block == alpha_pass else limits(alpha_block)[1]
    return estimate, low_pass, high


# ------------------------------------------------------------------------------- vectorized twin, simulation


def _effective_z(alpha: float) -> float:
    """The z that the stats function derives from ``confidence = 1 - 2 alpha`` (bit for bit)."""
    if alpha < _NO_DECISION_ALPHA:
        return math.inf
    return float(stats.norm.isf((1.0 - (1.0 - 2.0 * alpha)) / 2.0))


def _wilson(p: FloatArray, n: FloatArray, z: float) -> tuple[FloatArray, FloatArray]:
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = z * np.sqrt(np.maximum(p * (1.0 - p), 0.0) / n + z2 / (4.0 * n * n)) / denom
    low = np.where(p <= 0.0, 0.0, np.maximum(0.0, centre - half))
    high = np.where(p >= 1.0, 1.0, np.minimum(1.0, centre + half))
    return low, high


def newcombe_limits(
    a: npt.ArrayLike, b: npt.ArrayLike, c: npt.ArrayLike, d: npt.ArrayLike, z_low: float, z_high: float
) -> tuple[FloatArray, FloatArray]:
    """Vectorized Newcombe (method 10) limits of ``(b - c)/n`` for arrays of 2x2 counts: the lower limit with
    Wilson ``z_low``, the upper with ``z_high`` (``inf``: -1 / +1). Same arithmetic as
    :func:`eval_assets.stats.paired_proportion_difference_interval_from_counts` (the tests check they agree)."""
    fa, fb, fc, fd = (np.asarray(v, dtype=np.float64) for v in (a, b, c, d))
    n = fa + fb + fc + fd
    margins = (fa + fb) * (fc + fd) * (fa + fc) * (fb + fd)
    num = fa * fd - fb * fc
    num = np.where(num > n / 2.0, num - n / 2.0, np.where(num > 0.0, 0.0, num))
    phi = np.where(margins == 0.0, 0.0, num / np.sqrt(np.where(margins == 0.0, 1.0, margins)))
    p1, p2 = (fa + fb) / n, (fa + fc) / n
    theta = p1 - p2
    if math.isinf(z_low):
        low = np.full_like(theta, -1.0)
    else:
        l1, _ = _wilson(p1, n, z_low)
        _, u2 = _wilson(p2, n, z_low)
        down1, up2 = p1 - l1, u2 - p2
        low = np.maximum(-1.0, theta - np.sqrt(np.maximum(down1**2 - 2.0 * phi * down1 * up2 + up2**2, 0.0)))
    if math.isinf(z_high):
        high = np.full_like(theta, 1.0)
    else:
        _, u1 = _wilson(p1, n, z_high)
        l2, _ = _wilson(p2, n, z_high)
        up1, down2 = u1 - p1, p2 - l2
        high = np.minimum(1.0, theta + np.sqrt(np.maximum(up1**2 - 2.0 * phi * up1 * down2 + down2**2, 0.0)))
    return low, high


def decide_counts(
    design: SequentialDesign,
    look: int,
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    c: npt.ArrayLike,
    d: npt.ArrayLike,
    margin: float,
) -> npt.NDArray[np.int8]:
    """Vectorized :func:`sequential_decision_from_counts` outcomes for arrays of counts at one look:
    ``-1`` fail, ``+1`` pass, ``0`` undecided (continue, or inconclusive at the last look)."""
    bounds = design.boundaries()
    z_low = _effective_z(bounds.alpha_pass[look - 1])
    z_high = _effective_z(bounds.alpha_block[look - 1])
    low, high = newcombe_limits(a, b, c, d, z_low, z_high)
    out = np.zeros(low.shape, dtype=np.int8)
    out[low >= -margin] = 1
    out[high < -margin] = -1
    return out


@dataclass(frozen=True)
class SimulationResult:
    """Rates from :func:`simulate` (each a fraction of ``runs``)."""

    design: SequentialDesign
    true_difference: float
    agreement: float
    production_accuracy: float
    margin: float
    policy: InconclusivePolicy
    runs: int
    fail: float
    pass_: float
    inconclusive: float
    blocked: float  # fail, plus inconclusive under policy "block"
    mean_items: float
    stopped_at: tuple[float, ...]  # share of runs decided (fail or pass) at each look

    def mcse(self, rate: float) -> float:
        """Monte Carlo standard error of a rate estimated from ``runs`` runs."""
        return math.sqrt(max(rate * (1.0 - rate), 1e-12) / self.runs)


def cell_probabilities(
    true_difference: float, agreement: float, production_accuracy: float = 0.55
) -> tuple[float, float, float, float]:
    """Probabilities of (both right, only candidate right, only production right, both wrong) with
    ``P(agree) = agreement``, ``E[cand - prod] = true_difference`` and ``P(prod right) = production_accuracy``."""
    psi = 1.0 - agreement
    p10, p01 = (psi + true_difference) / 2.0, (psi - true_difference) / 2.0
    p11 = production_accuracy - p01
    p00 = 1.0 - psi - p11
    cells = (p11, p10, p01, p00)
    if not 0.0 < agreement <= 1.0 or min(cells) < -1e-12:
        raise ValueError(
            f"no paired distribution has agreement {agreement}, true difference {true_difference} and production "
            f"accuracy {production_accuracy} (cell probabilities {cells}); |difference| must not exceed "
            "1 - agreement and the accuracies must stay in [0, 1]."
        )
    return (max(p11, 0.0), max(p10, 0.0), max(p01, 0.0), max(p00, 0.0))


def simulate(
    design: SequentialDesign,
    true_difference: float,
    agreement: float,
    n_total: int | None = None,
    runs: int = 4000,
    seed: int = 0,
    margin: float = 0.01,
    policy_inconclusive: InconclusivePolicy = "warn",
    *,
    production_accuracy: float = 0.55,
    verify: int = 8,
) -> SimulationResult:
    """Monte Carlo rates of fail / pass / inconclusive and the mean items used by ``design`` on synthetic
    paired 0/1 data.

    Items are i.i.d. over the four paired cells (:func:`cell_probabilities`); each run draws the counts of
    each stage's new items (a multinomial per increment, which is the distribution of the cumulative counts of
    a prefix-stable item order), and every look is decided by :func:`decide_counts`, the vectorized twin of
    :func:`sequential_decision`. For the first ``verify`` runs the per-item arrays are built and passed through
    :func:`sequential_decision` itself; a disagreement raises ``AssertionError``. ``n_total`` (the suite size)
    caps the design with :meth:`SequentialDesign.for_suite`; a one-stage design is the fixed-size gate.
    """
    if n_total is not None:
        design = design.for_suite(n_total)
    if policy_inconclusive not in ("warn", "block"):
        raise ValueError(f"policy_inconclusive must be 'warn' or 'block'; got {policy_inconclusive!r}.")
    if runs < 1:
        raise ValueError(f"runs must be at least 1; got {runs}.")
    m = _check_margin(margin)
    probs = cell_probabilities(true_difference, agreement, production_accuracy)
    rng = np.random.default_rng(seed)
    counts = np.zeros((runs, 4), dtype=np.int64)
    increments: list[npt.NDArray[np.int64]] = []
    decision = np.zeros(runs, dtype=np.int8)  # -1 fail, +1 pass, 0 undecided so far
    items = np.full(runs, design.max_items, dtype=np.int64)
    stopped: list[float] = []
    previous = 0
    for k, stage in enumerate(design.stages, start=1):
        step = rng.multinomial(stage - previous, probs, size=runs).astype(np.int64)
        increments.append(step)
        counts += step
        previous = stage
        undecided = decision == 0
        now = decide_counts(design, k, counts[:, 0], counts[:, 1], counts[:, 2], counts[:, 3], m)
        newly = undecided & (now != 0)
        decision[newly] = now[newly]
        items[newly] = stage
        stopped.append(float(newly.mean()))
    for run in range(min(verify, runs)):
        _verify_run(design, [inc[run] for inc in increments], decision[run], m)
    fail = float((decision == -1).mean())
    passed = float((decision == 1).mean())
    inconclusive = 1.0 - fail - passed
    blocked = fail + (inconclusive if policy_inconclusive == "block" else 0.0)
    return SimulationResult(
        design=design, true_difference=true_difference, agreement=agreement,
        production_accuracy=production_accuracy, margin=m, policy=policy_inconclusive, runs=runs, fail=fail,
        pass_=passed, inconclusive=inconclusive, blocked=blocked, mean_items=float(items.mean()),
        stopped_at=tuple(stopped),
    )  # fmt: skip


def _verify_run(
    design: SequentialDesign, increments: list[npt.NDArray[np.int64]], expected: int, margin: float
) -> None:
    """Replays one simulated run as per-item arrays through :func:`sequential_decision`."""
    cand_parts, prod_parts = [], []
    for inc in increments:  # cells: both right, only candidate, only production, both wrong
        cand_parts.append(np.repeat([1, 1, 0, 0], inc))
        prod_parts.append(np.repeat([1, 0, 1, 0], inc))
    cand, prod = np.concatenate(cand_parts), np.concatenate(prod_parts)
    got = 0
    for k, stage in enumerate(design.stages, start=1):
        verdict = sequential_decision(design, k, cand[:stage], prod[:stage], margin)
        if verdict.outcome in ("fail", "pass"):
            got = -1 if verdict.outcome == "fail" else 1
            break
    if got != int(expected):
        raise AssertionError(
            f"vectorized decision {int(expected)} != sequential_decision {got} on a simulated run"
        )


# ----------------------------------------------------------------------------------------------- validation


def _check_alpha(alpha: float, name: str) -> float:
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, float | int)
        or math.isnan(alpha)
        or not 0.0 < alpha < 0.5
    ):
        raise ValueError(f"{name} must be a one-sided level in (0, 0.5), e.g. 0.025; got {alpha!r}.")
    return float(alpha)


def _check_spending(spending: str) -> None:
    if spending not in SPENDING_FUNCTIONS:
        raise ValueError(f"spending must be one of {SPENDING_FUNCTIONS}; got {spending!r}.")


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive integer (number of paired items); got {n!r}.")
    return int(n)


def _check_fractions(fractions: Sequence[float]) -> list[float]:
    t = [float(f) for f in fractions]
    if not t:
        raise ValueError("information_fractions is empty: give one fraction per look, ending at 1.")
    if any(not 0.0 < f <= 1.0 for f in t) or any(b <= a for a, b in itertools.pairwise(t)):
        raise ValueError(f"information fractions must increase strictly within (0, 1]; got {t}.")
    return t
