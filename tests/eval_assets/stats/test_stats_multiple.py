"""Holm's correction agrees with statsmodels' multipletests(method="holm")."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from eval_assets import stats


def test_matches_statsmodels_on_random_families() -> None:
    rng = np.random.default_rng(0)
    for _ in range(40):  # multipletests runs gc.collect() on every call: tens of ms each under pytest
        m = int(rng.integers(1, 15))
        p = rng.uniform(0, 0.2, size=m) ** rng.uniform(0.5, 3)
        if rng.random() < 0.3:
            p[rng.integers(0, m)] = p[0]  # ties
        alpha = float(rng.choice([0.01, 0.05, 0.1]))
        ours = stats.holm(p.tolist(), alpha=alpha)
        reject, adjusted, _, _ = multipletests(p, alpha=alpha, method="holm")
        np.testing.assert_allclose(ours.adjusted, adjusted, rtol=1e-12)
        assert list(ours.reject) == reject.tolist()
        assert ours.p_values == tuple(p.tolist())


def test_named_suites_keep_their_names() -> None:
    result = stats.holm({"mmlu": 0.001, "gsm8k": 0.04, "humaneval": 0.02})
    assert result.names == ("mmlu", "gsm8k", "humaneval")
    assert result.adjusted == pytest.approx((0.003, 0.04, 0.04))
    assert result.reject == (True, True, True) and result.any_rejected


def test_edges() -> None:
    single = stats.holm([0.03])
    assert single.adjusted == (0.03,) and single.reject == (True,)
    assert stats.holm([1.0, 1.0]).adjusted == (1.0, 1.0)
    assert stats.holm([0.0, 0.5]).reject == (True, False)
    with pytest.raises(ValueError, match="at least one"):
        stats.holm([])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.holm([0.1, float("nan")])
    with pytest.raises(ValueError, match="gsm8k"):
        stats.holm({"mmlu": 0.1, "gsm8k": 1.5})
    with pytest.raises(ValueError, match="alpha"):
        stats.holm([0.1], alpha=0)
