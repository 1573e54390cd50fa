"""The claims' statistics: small pure functions over sequences of numbers.

Every function ignores non-finite pairs or values where it says so and returns NaN, never raises,
when the statistic is undefined (too few points, a constant side), so that a verdict can say
"not evaluable" instead of failing on an exception. Where each is used: ``docs/design.md``,
"Where each statistic is computed".
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from scipy import stats as _stats

__all__ = [
    "curvature_gap",
    "mean",
    "median",
    "normalise",
    "pearson",
    "ratio",
    "slope",
    "span",
    "spearman",
]


def _finite_pairs(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"expected two 1-d sequences of one length, got shapes {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def _constant(a: np.ndarray) -> bool:
    return bool(np.all(a == a[0]))


def _correlation(test: Callable[..., Any], x: Sequence[float], y: Sequence[float]) -> float:
    """``test(x, y).statistic`` over the finite pairs; NaN with fewer than 3 pairs or a constant side."""
    x, y = _finite_pairs(x, y)
    if len(x) < 3 or _constant(x) or _constant(y):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(test(x, y).statistic)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's ρ over the finite pairs; NaN with fewer than 3 pairs or a constant side."""
    return _correlation(_stats.spearmanr, x, y)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's r over the finite pairs; NaN with fewer than 3 pairs or a constant side."""
    return _correlation(_stats.pearsonr, x, y)


def slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of ``y`` on ``x`` over the finite pairs; NaN if ``x`` is constant."""
    x, y = _finite_pairs(x, y)
    if len(x) < 2 or _constant(x):
        return math.nan
    return float(_stats.linregress(x, y).slope)


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` with 0/0 = NaN and x/0 = ±inf."""
    if denominator == 0:
        return math.nan if numerator == 0 else math.copysign(math.inf, numerator)
    return float(numerator) / float(denominator)


def span(values: Sequence[float]) -> float:
    """max/min of positive values (1 for one value); inf if the minimum is ≤ 0, NaN if empty."""
    if len(values) == 0:
        return math.nan
    low, high = min(values), max(values)
    return math.inf if low <= 0 else high / low


def median(values: Iterable[float]) -> float:
    """The median of the finite values; NaN if there are none."""
    a = np.asarray(list(values), dtype=float)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else math.nan


def mean(values: Iterable[float]) -> float:
    """The mean of the finite values; NaN if there are none."""
    a = np.asarray(list(values), dtype=float)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else math.nan


def normalise(values: Sequence[float]) -> tuple[float, ...]:
    """Each value over the mean of all (NMAPC from MAPC, input included)."""
    m = float(np.mean(values))
    return tuple(ratio(v, m) for v in values)


def curvature_gap(values: Sequence[float]) -> float:
    """N(last) − N(penultimate), N the values over their mean: the paper's NMAPC gap."""
    n = normalise(values)
    return n[-1] - n[-2]
