"""Holm's step-down correction for the several tests of one gate decision (one test per suite)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ._types import HolmResult
from ._validation import check_probability


def holm(p_values: Sequence[float] | Mapping[str, float], alpha: float = 0.05) -> HolmResult:
    """Holm-Bonferroni adjustment: controls the family-wise error rate at ``alpha``, uniformly more powerful
    than Bonferroni, valid under any dependence between the tests.

    Adjusted p-values: sort ascending, ``adj_(i) = max_{j <= i} min(1, (m - j + 1) * p_(j))``; a hypothesis is
    rejected when its adjusted p-value is at most ``alpha``. Matches statsmodels'
    ``multipletests(method="holm")``.

    Args:
        p_values: a sequence, or a mapping from hypothesis name (e.g. suite) to p-value.
        alpha: family-wise error rate in (0, 1).

    Raises:
        ValueError: no p-values, a p-value that is NaN or outside [0, 1], alpha outside (0, 1).
    """
    alpha = check_probability(alpha, "alpha")
    names: tuple[str, ...] | None = None
    if isinstance(p_values, Mapping):
        names = tuple(str(k) for k in p_values)
        raw = [p_values[k] for k in p_values]
    else:
        raw = list(np.asarray(p_values, dtype=np.float64).ravel()) if not isinstance(p_values, str) else []
    if not raw:
        raise ValueError("holm needs at least one p-value; got none.")
    p = np.asarray(raw, dtype=np.float64)
    bad = [i for i, v in enumerate(p.tolist()) if math.isnan(v) or not 0.0 <= v <= 1.0]
    if bad:
        where = names[bad[0]] if names else f"index {bad[0]}"
        raise ValueError(f"p-values must lie in [0, 1]; {where} is {p[bad[0]]!r}.")
    m = len(p)
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    reject = adjusted <= alpha
    return HolmResult(
        p_values=tuple(float(v) for v in p),
        adjusted=tuple(float(v) for v in adjusted),
        reject=tuple(bool(v) for v in reject),
        alpha=alpha,
        names=names,
    )
