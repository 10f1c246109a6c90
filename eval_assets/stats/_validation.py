"""Input checks shared by the statistics functions.

Every public function converts its inputs here, so bad input fails the same way everywhere: a ``ValueError``
whose message names the argument, says what is wrong and what to do about it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence, Sized
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def to_numpy_1d(values: Any, name: str, *, allow_empty: bool = False) -> npt.NDArray[Any]:
    """A 1-D numpy view of ``values`` (numpy array, Python sequence, polars or pandas Series)."""
    if values is None:
        raise ValueError(f"{name} is None; pass a 1-D array, list or polars Series.")
    null_count = getattr(values, "null_count", None)
    if callable(null_count):  # polars Series: nulls must not turn silently into NaN or None
        nulls = int(null_count())
        if nulls:
            raise ValueError(
                f"{name} has {nulls} null value(s); drop or fill them before computing statistics "
                "(a missing answer is usually a wrong one: decide that explicitly, e.g. fill_null(0))."
            )
    to_numpy = getattr(values, "to_numpy", None)
    array = np.asarray(to_numpy()) if callable(to_numpy) else np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per item); got an array of shape {array.shape}.")
    if array.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (n = 0); there is nothing to estimate. Check the upstream filter.")
    if array.dtype == object:
        missing = [
            i for i, v in enumerate(array.tolist()) if v is None or (isinstance(v, float) and math.isnan(v))
        ]
        if missing:
            raise ValueError(
                f"{name} has {len(missing)} missing value(s) (None/NaN; first at index {missing[0]}); "
                "drop or fill them first."
            )
    return array


def as_float_array(values: Any, name: str) -> FloatArray:
    """Finite float64 values; NaN or infinity raises with the first offending index."""
    array = to_numpy_1d(values, name)
    if array.dtype.kind not in "biuf":
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be numeric; got values of type {array.dtype}.") from None
    out = np.asarray(array, dtype=np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} has {int(bad.sum())} NaN or infinite value(s) (first at index {first}); "
            "drop or impute missing scores before computing statistics."
        )
    return out


def as_binary_array(values: Any, name: str) -> BoolArray:
    """Booleans from 0/1 or True/False values; anything else raises."""
    array = as_float_array(values, name)
    is_one = array == 1.0
    if not np.all(is_one | (array == 0.0)):
        first = int(np.flatnonzero(~(is_one | (array == 0.0)))[0])
        raise ValueError(
            f"{name} must hold 0/1 (or True/False) outcomes; index {first} is {array[first]!r}. "
            "Threshold or binarise scores before calling this function."
        )
    return is_one


def as_labels(values: Any, name: str) -> npt.NDArray[Any]:
    """Labels (cluster ids, ratings) of any hashable kind; missing ones (None, NaN, null) raise."""
    array = to_numpy_1d(values, name)
    if array.dtype.kind == "f" and np.isnan(array).any():
        first = int(np.flatnonzero(np.isnan(array))[0])
        raise ValueError(f"{name} has NaN labels (first at index {first}); drop or fill them first.")
    return array


def check_same_length(**arrays: Sized) -> int:
    """The common length of the named arrays, or a ValueError naming the lengths."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        described = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(
            f"length mismatch: {described} items. Paired inputs must be aligned item by item "
            "(join on the item id first)."
        )
    return next(iter(lengths.values()))


def check_confidence(confidence: float) -> float:
    """A confidence level strictly between 0 and 1."""
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real):
        raise ValueError(f"confidence must be a number in (0, 1), e.g. 0.95; got {confidence!r}.")
    value = float(confidence)
    if not 0.0 < value < 1.0:
        hint = " (it is a fraction, not a percentage: use 0.95, not 95)" if value > 1 else ""
        raise ValueError(f"confidence must be in (0, 1){hint}; got {confidence!r}.")
    return value


def check_probability(value: float, name: str, *, open_low: bool = True, open_high: bool = True) -> float:
    """A number in (0, 1), with either end optionally closed."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(float(value)):
        raise ValueError(f"{name} must be a number in (0, 1); got {value!r}.")
    v = float(value)
    low_ok = v > 0.0 if open_low else v >= 0.0
    high_ok = v < 1.0 if open_high else v <= 1.0
    if not (low_ok and high_ok):
        interval = ("(" if open_low else "[") + "0, 1" + (")" if open_high else "]")
        raise ValueError(f"{name} must be in {interval}; got {value!r}.")
    return v


def check_int(value: Any, name: str, *, minimum: int) -> int:
    """An integer (Python or numpy, not bool) at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer; got {value!r}.")
    out = int(value)
    if out < minimum:
        raise ValueError(f"{name} must be at least {minimum}; got {out}.")
    return out


def check_seed(seed: Any) -> int:
    """A non-negative integer seed (results are reproducible by construction, so there is no default None)."""
    return check_int(seed, "seed", minimum=0)


def check_n_resamples(n_resamples: Any) -> int:
    """At least 100 resamples; fewer make the interval end points mostly Monte Carlo noise."""
    out = check_int(n_resamples, "n_resamples", minimum=1)
    if out < 100:
        raise ValueError(
            f"n_resamples={out} is too few for stable interval end points; use at least 1,000 "
            "(the default 10,000 is cheap on the fast paths)."
        )
    return out


def check_choice(value: str, name: str, choices: Sequence[str]) -> str:
    """One of a fixed set of strings."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}; got {value!r}.")
    return value
