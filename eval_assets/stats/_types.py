"""Result types: small frozen dataclasses that print the way a gate message should read.

Bump :data:`RESULTS_VERSION` when a field is added, renamed or changes meaning; stored results carry it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Version of the result schemas below; stored with results so old records can be read correctly.
RESULTS_VERSION = 1


def _pct(confidence: float) -> str:
    return f"{100 * confidence:g}%"


@dataclass(frozen=True, slots=True)
class Interval:
    """A point estimate with a two-sided confidence interval.

    Attributes:
        estimate: the point estimate (the plain sample value, e.g. ``successes / n``; never a shrunk centre).
        low, high: the interval end points.
        n: number of items (observations) behind the estimate.
        confidence: the nominal coverage, e.g. 0.95.
        method: how the interval was computed, e.g. ``"wilson"``, ``"bootstrap-bca"``,
            ``"paired-bootstrap-percentile"``, ``"cluster-bootstrap-bca"``.
        n_clusters: number of independent clusters that were resampled (cluster methods only).
        n_resamples, seed: the bootstrap settings (bootstrap methods only), enough to reproduce the interval.
    """

    estimate: float
    low: float
    high: float
    n: int
    confidence: float
    method: str
    n_clusters: int | None = None
    n_resamples: int | None = None
    seed: int | None = None

    @property
    def width(self) -> float:
        """``high - low``."""
        return self.high - self.low

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the closed interval."""
        return self.low <= value <= self.high

    def __str__(self) -> str:
        units = f"n={self.n}" + (f" in {self.n_clusters} clusters" if self.n_clusters is not None else "")
        return (
            f"{self.estimate:.4g} [{self.low:.4g}, {self.high:.4g}] "
            f"({_pct(self.confidence)} {self.method}, {units})"
        )


@dataclass(frozen=True, slots=True)
class McNemarResult:
    """McNemar's test of a paired comparison of two checkpoints on the same items.

    Attributes:
        b: items the candidate gets right and the baseline gets wrong (improvements).
        c: items the candidate gets wrong and the baseline gets right (regressions).
        statistic: ``min(b, c)`` for the exact test (statsmodels' convention) or the continuity-corrected
            chi-square ``max(|b - c| - 1, 0)**2 / (b + c)`` otherwise.
        p_value: the p-value for ``alternative``.
        method: ``"exact-binomial"`` or ``"chi2-continuity"``.
        n: number of paired items (concordant ones included).
        alternative: ``"two-sided"``, ``"greater"`` (candidate better) or ``"less"`` (candidate worse).
    """

    b: int
    c: int
    statistic: float
    p_value: float
    method: str
    n: int
    alternative: str = "two-sided"

    @property
    def discordant(self) -> int:
        """``b + c``: the only items that carry information about the difference."""
        return self.b + self.c

    @property
    def difference(self) -> float:
        """Accuracy difference candidate - baseline, ``(b - c) / n``."""
        return (self.b - self.c) / self.n if self.n else 0.0

    def __str__(self) -> str:
        return (
            f"McNemar {self.method}: b={self.b} (candidate only), c={self.c} (baseline only), "
            f"n={self.n}, p={self.p_value:.4g} ({self.alternative})"
        )


@dataclass(frozen=True, slots=True)
class KappaResult:
    """Chance-corrected agreement between raters (Cohen's or Fleiss' kappa).

    Attributes:
        kappa: the kappa estimate.
        low, high: confidence interval for kappa, clipped to [-1, 1].
        agreement: raw (observed) agreement: the fraction of items on which the two raters agree (Cohen), or
            the mean pairwise agreement per subject (Fleiss).
        expected_agreement: agreement expected by chance from the marginal label frequencies.
        agreement_low, agreement_high: Wilson interval for the raw agreement (Cohen only; NaN for Fleiss).
            Unlike kappa's interval it stays informative at perfect agreement.
        n: number of items (subjects).
        n_raters: number of raters per item.
        confidence: nominal coverage of the intervals.
        method: how the kappa interval was computed (``"wald"`` or ``"bootstrap-percentile"``).
        labels: the label set, in table order.
    """

    kappa: float
    low: float
    high: float
    agreement: float
    expected_agreement: float
    agreement_low: float
    agreement_high: float
    n: int
    n_raters: int
    confidence: float
    method: str
    labels: tuple[object, ...]

    def __str__(self) -> str:
        return (
            f"kappa {self.kappa:.3f} [{self.low:.3f}, {self.high:.3f}] ({_pct(self.confidence)} {self.method}), "
            f"raw agreement {self.agreement:.3f}, n={self.n}, raters={self.n_raters}"
        )


@dataclass(frozen=True, slots=True)
class HolmResult:
    """Holm-Bonferroni step-down adjustment of a family of p-values.

    Attributes:
        p_values: the raw p-values, in input order.
        adjusted: Holm-adjusted p-values (monotone, capped at 1), in input order.
        reject: whether each hypothesis is rejected at family-wise level ``alpha``.
        alpha: the family-wise error rate.
        names: the hypothesis names when a mapping was passed, else ``None``.
    """

    p_values: tuple[float, ...]
    adjusted: tuple[float, ...]
    reject: tuple[bool, ...]
    alpha: float
    names: tuple[str, ...] | None = None

    @property
    def any_rejected(self) -> bool:
        """Whether at least one hypothesis is rejected."""
        return any(self.reject)
