"""Bad input fails loudly with a message that says what to do; good input of every supported kind works."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pytest

from eval_assets import stats

BAD_CONFIDENCES = [0.0, 1.0, 95, -0.1, float("nan"), "0.95", True]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: stats.bootstrap_mean_ci([0, 1, 1], confidence=c),
        lambda c: stats.paired_bootstrap_diff([0, 1], [1, 1], confidence=c),
        lambda c: stats.cluster_bootstrap_mean([0, 1], ["a", "b"], confidence=c),
        lambda c: stats.wilson_interval(3, 10, confidence=c),
        lambda c: stats.clopper_pearson_interval(3, 10, confidence=c),
        lambda c: stats.clustered_wilson_interval([0, 1], [1, 2], confidence=c),
        lambda c: stats.cohens_kappa([0, 1, 1], [0, 1, 0], confidence=c),
        lambda c: stats.fleiss_kappa([[1, 1], [2, 0]], confidence=c),
        lambda c: stats.pass_at_k_interval([5, 5], [1, 2], 1, confidence=c),
    ],
    ids=["bootstrap", "paired", "cluster", "wilson", "cp", "cwilson", "cohen", "fleiss", "passk"],
)
@pytest.mark.parametrize("confidence", BAD_CONFIDENCES, ids=repr)
def test_confidence_outside_unit_interval_is_rejected(call: Callable[[Any], object], confidence: Any) -> None:
    with pytest.raises(ValueError, match="confidence"):
        call(confidence)


def test_percent_confidence_gets_a_hint() -> None:
    with pytest.raises(ValueError, match="not a percentage"):
        stats.wilson_interval(3, 10, confidence=95)


@pytest.mark.parametrize(
    "call",
    [
        lambda: stats.bootstrap_mean_ci([]),
        lambda: stats.paired_bootstrap_diff([], []),
        lambda: stats.cluster_bootstrap_mean([], []),
        lambda: stats.mcnemar([], []),
        lambda: stats.cohens_kappa([], []),
        lambda: stats.clustered_wilson_interval([], []),
        lambda: stats.pass_at_k_per_problem([], [], 1),
    ],
)
def test_empty_input_is_rejected(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="empty"):
        call()


def test_zero_trials_are_rejected() -> None:
    with pytest.raises(ValueError, match="n must be at least 1"):
        stats.wilson_interval(0, 0)
    with pytest.raises(ValueError, match="n must be at least 1"):
        stats.clopper_pearson_interval(0, 0)
    with pytest.raises(ValueError, match="n must be at least 1"):
        stats.pass_at_k(0, 0, 1)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_and_inf_are_rejected_with_their_position(bad: float) -> None:
    values = [1.0, 0.0, bad, 1.0]
    with pytest.raises(ValueError, match="first at index 2"):
        stats.bootstrap_mean_ci(values)
    with pytest.raises(ValueError, match="candidate"):
        stats.paired_bootstrap_diff(values, [1.0] * 4)
    with pytest.raises(ValueError, match="baseline_correct"):
        stats.mcnemar([1, 0, 1, 1], values)


def test_polars_nulls_are_rejected_not_silently_dropped() -> None:
    with pytest.raises(ValueError, match="null"):
        stats.bootstrap_mean_ci(pl.Series([1, 0, None]))
    with pytest.raises(ValueError, match="null"):
        stats.cohens_kappa(pl.Series(["a", None]), pl.Series(["a", "b"]))
    with pytest.raises(ValueError, match="missing"):
        stats.cohens_kappa(["a", None], ["a", "b"])


def test_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"length mismatch.*candidate has 3.*baseline has 2"):
        stats.paired_bootstrap_diff([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="length mismatch"):
        stats.mcnemar([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="length mismatch"):
        stats.cohens_kappa(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="one cluster label per item"):
        stats.cluster_bootstrap_mean([1, 0, 1], ["p1", "p1"])
    with pytest.raises(ValueError, match="length mismatch"):
        stats.pass_at_k_per_problem([5, 5], [1, 2, 3], 1)


def test_non_binary_outcomes_are_rejected_where_binary_is_required() -> None:
    with pytest.raises(ValueError, match="0/1"):
        stats.mcnemar([1, 0, 0.5], [1, 0, 1])


def test_labels_outside_the_declared_set_are_rejected() -> None:
    with pytest.raises(ValueError, match="outside the declared set: 'tie'"):
        stats.cohens_kappa(["A", "B", "tie"], ["A", "B", "A"], labels=["A", "B"])
    with pytest.raises(ValueError, match="outside the declared set"):
        stats.ratings_to_table([["A", "B"], ["A", "C"]], labels=["A", "B"])


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="method"):
        stats.bootstrap_mean_ci([0, 1], method="basic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_resamples"):
        stats.bootstrap_mean_ci([0, 1], n_resamples=10)
    with pytest.raises(ValueError, match="seed"):
        stats.bootstrap_mean_ci([0, 1], seed=-1)
    with pytest.raises(ValueError, match="seed"):
        stats.bootstrap_mean_ci([0, 1], seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1-D"):
        stats.bootstrap_mean_ci([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="numeric"):
        stats.bootstrap_mean_ci(["a", "b"])


def test_numpy_lists_and_polars_series_give_identical_results() -> None:
    rng = np.random.default_rng(3)
    values = (rng.random(50) < 0.6).astype(np.int64)
    as_list = stats.bootstrap_mean_ci(values.tolist())
    assert stats.bootstrap_mean_ci(values) == as_list
    assert stats.bootstrap_mean_ci(pl.Series(values)) == as_list
    assert stats.bootstrap_mean_ci(pl.Series(values.astype(bool))) == as_list
    judge = pl.Series(["A", "B", "A", "tie", "B", "A"])
    human = pl.Series(["A", "B", "B", "tie", "B", "A"])
    assert stats.cohens_kappa(judge, human) == stats.cohens_kappa(judge.to_list(), human.to_list())


def test_results_are_frozen() -> None:
    result = stats.wilson_interval(3, 10)
    with pytest.raises(AttributeError):
        result.low = 0.0  # type: ignore[misc]


def test_missing_cluster_labels_are_rejected() -> None:
    with pytest.raises(ValueError, match="clusters has NaN labels"):
        stats.cluster_bootstrap_mean([1.0, 0.0, 1.0], [1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match="missing"):
        stats.clustered_wilson_interval([1.0, 0.0], ["p1", None])
    with pytest.raises(ValueError, match="null"):
        stats.paired_bootstrap_diff([1, 0], [0, 0], clusters=pl.Series(["p1", None]))


def test_numpy_scalars_are_accepted_everywhere() -> None:
    assert stats.wilson_interval(np.int64(3), np.int64(10)) == stats.wilson_interval(3, 10)
    assert stats.pass_at_k(np.int32(10), np.int64(3), np.int16(2)) == stats.pass_at_k(10, 3, 2)
    assert stats.paired_sample_size(np.float32(0.05), np.float64(0.2)) == stats.paired_sample_size(
        float(np.float32(0.05)), 0.2
    )
    assert stats.mcnemar_from_counts(np.int64(10), np.int64(3)) == stats.mcnemar_from_counts(10, 3)
