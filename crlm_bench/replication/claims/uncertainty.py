"""Verdicts with uncertainty: bootstrap intervals over seeds and points, exact permutation p-values
for correlations over a handful of items, and the rule that turns an interval and a
:class:`~crlm_bench.replication.claims.verdict.Threshold` into an :class:`Outcome` (holds, fails or
inconclusive).

Pure functions over arrays; randomness comes only from a ``numpy.random.Generator`` built from an
explicit integer seed, so equal inputs and seeds give equal results. The rule and its reasoning:
``docs/design.md``, "Uncertainty".
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import stats as _stats

from crlm_bench.replication.claims.verdict import Threshold

__all__ = [
    "MAX_EXACT_PERMUTATION_N",
    "MIN_RESAMPLES",
    "MONTE_CARLO_PERMUTATIONS",
    "Interval",
    "Outcome",
    "all_of",
    "bootstrap_groups_interval",
    "bootstrap_groups_intervals",
    "bootstrap_interval",
    "outcome",
    "permutation_pvalue",
]

#: The fewest bootstrap resamples accepted. The ends of a 95 % percentile interval are the 2.5 % and
#: 97.5 % quantiles of the resampled statistic; with 1000 resamples each rests on 25 resamples
#: beyond it; with fewer the ends themselves are noisy (Efron & Tibshirani 1993 ask for 1000 or more
#: for percentile intervals).
MIN_RESAMPLES = 1000

#: The largest number of pairs whose permutations are all enumerated: 9! = 362 880 (about 3 MB of
#: int8 and 0.1 s). The paper has 4–6 models per dataset and 8–9 checkpoints per training run.
MAX_EXACT_PERMUTATION_N = 9

#: Random permutations drawn for more pairs than :data:`MAX_EXACT_PERMUTATION_N`.
MONTE_CARLO_PERMUTATIONS = 20_000

#: A permuted correlation within this distance of the observed one ties it and counts as at least
#: as extreme: one correlation summed in another order can differ in the last bits (correlations lie
#: in [−1, 1], so the tolerance is absolute).
_TIE_ATOL = 1e-12

#: The most array elements handed to a batched statistic at once (32 MiB of float64): resamples are
#: processed in chunks of a size fixed by the data's shapes, never by the machine.
_CHUNK_ELEMENTS = 1 << 22


# ------------------------------------------------------------------------------------------
# Bootstrap intervals


@dataclass(frozen=True)
class Interval:
    """A bootstrap interval of a statistic: ``low`` and ``high`` at confidence ``level``.

    ``estimate`` is the statistic on the data as measured; ``cells`` the number of outer units
    (seeds) in each group; ``undefined`` the number of resamples whose statistic was NaN (any one
    makes ``low`` and ``high`` NaN: see :func:`bootstrap_groups_interval`).
    """

    low: float
    high: float
    estimate: float
    level: float
    resamples: int
    log_scale: bool = False
    cells: tuple[int, ...] = ()
    undefined: int = 0

    def __post_init__(self) -> None:
        if self.low > self.high:  # False when either is NaN
            raise ValueError(f"Interval: low {self.low} is above high {self.high}")

    @property
    def defined(self) -> bool:
        """Whether both ends are numbers (not NaN)."""
        return not (math.isnan(self.low) or math.isnan(self.high))

    def contains(self, x: float) -> bool:
        """Whether ``low ≤ x ≤ high``; False for NaN."""
        return bool(self.low <= x <= self.high)


def _quantiles(values: np.ndarray, qs: Sequence[float]) -> list[float]:
    """Linear interpolation between order statistics (numpy's default, Hyndman & Fan type 7), but
    exact where the two neighbours are equal, so that infinite neighbours give ±inf, not NaN."""
    ordered = np.sort(values)
    out = []
    for q in qs:
        h = (len(ordered) - 1) * q
        lo = math.floor(h)
        hi = min(lo + 1, len(ordered) - 1)
        a, b = float(ordered[lo]), float(ordered[hi])
        out.append(a if a == b else a + (h - lo) * (b - a))
    return out


def _stack_group(cells: Sequence[Any], g: int) -> np.ndarray:
    if len(cells) == 0:
        raise ValueError(f"group {g} has no cells; give at least one array of per-point values")
    arrays = [np.asarray(c, dtype=float) for c in cells]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(
            f"the cells of group {g} differ in shape ({sorted(shapes)}); every cell of a group must "
            "hold the same number of points (subsample each to the smallest count first)"
        )
    shape = arrays[0].shape
    if len(shape) == 0 or shape[0] == 0:
        raise ValueError(f"the cells of group {g} have shape {shape}; expected points along a first axis")
    return np.stack(arrays)  # (S, n, ...)


def _check_settings(resamples: int, level: float) -> None:
    if resamples < MIN_RESAMPLES:
        raise ValueError(
            f"resamples={resamples}: a bootstrap interval needs at least MIN_RESAMPLES = {MIN_RESAMPLES} "
            "resamples for stable 2.5 % and 97.5 % ends"
        )
    if not 0 < level < 1:
        raise ValueError(f"level={level}: the confidence level must lie strictly between 0 and 1")


def _as_batch(out: Any, b: int) -> np.ndarray:
    a = np.asarray(out, dtype=float)
    if a.shape != (b,):
        raise ValueError(
            f"a batched statistic must return one value per resample, shape ({b},); got {a.shape}"
        )
    return a


def bootstrap_groups_interval(
    groups: Sequence[Sequence[Any]],
    statistic: Callable[[list[np.ndarray]], Any],
    *,
    seed: int,
    resamples: int = MIN_RESAMPLES,
    level: float = 0.95,
    log_scale: bool = False,
    batched: bool = False,
) -> Interval:
    """A two-level bootstrap percentile interval of a statistic over independent groups.

    ``groups[g]`` is one group (a model, a recipe, a training run…) as a sequence of cells, one per
    seed; each cell is an array of per-point values with the points along the first axis, shape
    ``(n, ...)`` (a probe axis may follow: rows stay whole, so a point's values at every probe are
    resampled together). All cells of one group must share one shape; groups may differ.

    **Method.** In each resample and in each group independently, the seeds are drawn with
    replacement (outer level, ``S`` of ``S``), then the points of each drawn cell are drawn with
    replacement (inner level, ``n`` of ``n``); ``statistic`` maps the resampled groups to one
    number. The interval is the percentile interval (Efron & Tibshirani 1993, ch. 13): the
    ``(1 − level)/2`` and ``(1 + level)/2`` quantiles of the resampled statistics, interpolated
    linearly between order statistics. BCa is not used: its acceleration has no standard jackknife
    over two levels, and with the handful of seeds the harness has it would rest on 1–5 units.

    **Log scale.** With ``log_scale=True`` (for ratios) the quantiles are taken of the log of the
    statistic and mapped back with exp. The percentile interval commutes with monotone maps, so this
    changes only the interpolation between two neighbouring order statistics (geometric, not
    arithmetic); it also refuses, with a ValueError, a statistic that is zero or negative in any
    resample or on the data, which a ratio of curvatures must never be.

    **Reading it.** The outer level carries seed-to-seed variation, the inner one point sampling.
    With one seed per group the interval covers point sampling only; with few seeds (< 5) the
    percentile interval is known to be too narrow for the seed-to-seed part. Resampling both levels
    counts the within-cell variance slightly twice (Davison & Hinkley 1997, §3.8), which widens the
    interval where points, not seeds, dominate. Groups are resampled independently: values measured
    on the same test images in two groups are treated as unpaired, which widens an interval of a
    ratio or difference when they are positively correlated.

    **Undefined resamples.** A statistic that is NaN on the data or in any resample (a correlation
    of a constant side, 0/0) gives NaN ends: if the resampled data can leave the claim unevaluable,
    neither side of a threshold can be excluded, and dropping those resamples would condition on
    evaluability. ±inf is ordered like any number.

    ``statistic`` receives a list with one array per group. Unbatched, each array is one resample of
    that group, shape ``(S, n, ...)``, and the statistic returns a float. With ``batched=True`` it
    receives arrays of shape ``(b, S, n, ...)`` for ``b`` resamples at once and returns ``b``
    values; on the data it is called with ``b = 1``.

    Deterministic given ``seed``, the data's shapes and ``resamples``: the draws are taken from
    ``numpy.random.default_rng(seed)`` in chunks of resamples whose size depends on the shapes only,
    each chunk drawing per group the outer indices ``(b, S)`` and then the inner ones ``(b, S, n)``.
    """

    def one(data: list[np.ndarray]) -> Any:
        if not batched:
            return [statistic(data)]
        return _as_batch(statistic(data), data[0].shape[0])[:, None]

    (interval,) = bootstrap_groups_intervals(
        groups,
        one,
        seed=seed,
        resamples=resamples,
        level=level,
        log_scale=(log_scale,),
        batched=batched,
    )
    return interval


def bootstrap_groups_intervals(
    groups: Sequence[Sequence[Any]],
    statistics: Callable[[list[np.ndarray]], Any],
    *,
    seed: int,
    resamples: int = MIN_RESAMPLES,
    level: float = 0.95,
    log_scale: Sequence[bool],
    batched: bool = False,
) -> list[Interval]:
    """:func:`bootstrap_groups_interval` of several statistics from the same resamples, one
    interval per statistic (``len(log_scale)`` of them, each with its own scale).

    ``statistics`` returns the ``k`` values of one resample (unbatched) or a ``(b, k)`` array
    (batched). Every statistic sees the same draws, so their intervals are those each would get
    alone with the same ``seed``; a claim judged on several bounds reads them all from one pass.
    """
    _check_settings(resamples, level)
    if len(groups) == 0:
        raise ValueError("no groups: give at least one group of cells")
    k = len(log_scale)
    if k == 0:
        raise ValueError("log_scale: give one flag per statistic (at least one statistic)")
    stacked = [_stack_group(cells, g) for g, cells in enumerate(groups)]

    def evaluate(data: list[np.ndarray], b: int) -> np.ndarray:
        if batched:
            out = np.asarray(statistics(data), dtype=float)
        else:
            out = np.array([np.asarray(statistics([d[i] for d in data]), dtype=float) for i in range(b)])
        if out.shape != (b, k):
            raise ValueError(
                f"the statistics must give {k} value(s) per resample, shape ({b}, {k}); got {out.shape}"
            )
        return out

    estimates = evaluate([s[None] for s in stacked], 1)[0]
    rng = np.random.default_rng(seed)
    per_resample = sum(s.size for s in stacked)
    chunk = max(1, min(resamples, _CHUNK_ELEMENTS // per_resample))
    values = np.empty((resamples, k))
    for start in range(0, resamples, chunk):
        b = min(chunk, resamples - start)
        drawn = []
        for s in stacked:
            n_cells, n_points = s.shape[0], s.shape[1]
            outer = rng.integers(0, n_cells, size=(b, n_cells))
            inner = rng.integers(0, n_points, size=(b, n_cells, n_points))
            drawn.append(s[outer[:, :, None], inner])  # (b, S, n, ...)
        values[start : start + b] = evaluate(drawn, b)
    cells = tuple(s.shape[0] for s in stacked)
    return [
        _interval(values[:, j], float(estimates[j]), level, resamples, bool(log_scale[j]), cells)
        for j in range(k)
    ]


def _interval(
    values: np.ndarray, estimate: float, level: float, resamples: int, log_scale: bool, cells: tuple[int, ...]
) -> Interval:
    """The percentile interval of one statistic's resampled ``values``."""
    undefined = int(np.isnan(values).sum())
    common = dict(estimate=estimate, level=level, resamples=resamples, log_scale=log_scale, cells=cells)
    if undefined or math.isnan(estimate):
        return Interval(math.nan, math.nan, undefined=undefined, **common)
    alpha = (1 - level) / 2
    if log_scale:
        bad = values[values <= 0]
        if estimate <= 0 or bad.size:
            first = estimate if estimate <= 0 else float(bad[0])
            raise ValueError(
                f"log_scale needs a positive statistic; {bad.size} of {resamples} resamples"
                f"{' and the data' if estimate <= 0 else ''} gave a value ≤ 0 (e.g. {first:g}). "
                "Bootstrap a ratio of positive values, or use log_scale=False."
            )
        low, high = (math.exp(q) for q in _quantiles(np.log(values), (alpha, 1 - alpha)))
    else:
        low, high = _quantiles(values, (alpha, 1 - alpha))
    return Interval(low, high, **common)


def bootstrap_interval(
    cells: Sequence[Any],
    statistic: Callable[[np.ndarray], Any],
    *,
    seed: int,
    resamples: int = MIN_RESAMPLES,
    level: float = 0.95,
    log_scale: bool = False,
    batched: bool = False,
) -> Interval:
    """:func:`bootstrap_groups_interval` of one group: ``cells`` one array of per-point values per
    seed, ``statistic`` called with the resampled ``(S, n, ...)`` array (``(b, S, n, ...)`` when
    ``batched``)."""
    return bootstrap_groups_interval(
        [cells],
        lambda data: statistic(data[0]),
        seed=seed,
        resamples=resamples,
        level=level,
        log_scale=log_scale,
        batched=batched,
    )


# ------------------------------------------------------------------------------------------
# Permutation p-values for correlations over a handful of items


@lru_cache(maxsize=MAX_EXACT_PERMUTATION_N + 1)
def _all_permutations(n: int) -> np.ndarray:
    """``(n!, n)``: every permutation of ``range(n)``, built by inserting ``m`` at each position of
    every permutation of ``range(m)``."""
    perms = np.zeros((1, 0), dtype=np.int8)
    for m in range(n):
        perms = np.concatenate([np.insert(perms, k, m, axis=1) for k in range(m + 1)])
    perms.flags.writeable = False
    return perms


_ALTERNATIVES = ("greater", "less", "two-sided")
_CORRELATIONS = ("spearman", "pearson")


def permutation_pvalue(
    x: Sequence[float],
    y: Sequence[float],
    *,
    statistic: str = "spearman",
    alternative: str = "greater",
    seed: int | None = None,
    permutations: int = MONTE_CARLO_PERMUTATIONS,
) -> float:
    """The permutation p-value of Spearman's ρ or Pearson's r between ``x`` and ``y``.

    Under the null hypothesis that ``y`` is unrelated to ``x`` every pairing is equally likely. The
    p-value is the fraction of pairings whose correlation is at least as extreme as the observed one:
    ``≥`` it for ``"greater"``, ``≤`` for ``"less"``, ``|·| ≥ |·|`` for ``"two-sided"``; a
    correlation within 1e-12 of the observed one ties it and counts.

    - ``n ≤`` :data:`MAX_EXACT_PERMUTATION_N` pairs: exact, over all ``n!`` permutations (the
      observed one among them), so the smallest p-value is ``1/n!``: 1/24 for four models, which a
      claim over four models can never beat. ``seed`` is not used.
    - More pairs: Monte Carlo over ``permutations`` random permutations from
      ``numpy.random.default_rng(seed)`` (``seed`` required), p = (1 + k)/(1 + permutations) with
      ``k`` the permutations at least as extreme (Phipson & Smyth 2010), which is never 0.

    Pairs with a non-finite side are dropped, as in :mod:`~crlm_bench.replication.claims.statistics`;
    with fewer than three pairs left, or a constant side, the correlation is undefined and the
    p-value is NaN. Spearman's ρ is Pearson's r of average ranks, as ``scipy.stats.spearmanr``.
    """
    if statistic not in _CORRELATIONS:
        raise ValueError(f"statistic must be one of {', '.join(_CORRELATIONS)}, got {statistic!r}")
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {', '.join(_ALTERNATIVES)}, got {alternative!r}")
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise ValueError(f"expected two 1-d sequences of one length, got shapes {xa.shape} and {ya.shape}")
    keep = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[keep], ya[keep]
    n = len(xa)
    if n < 3 or np.all(xa == xa[0]) or np.all(ya == ya[0]):
        return math.nan
    if statistic == "spearman":
        xa, ya = _stats.rankdata(xa), _stats.rankdata(ya)
    xc, yc = xa - xa.mean(), ya - ya.mean()
    scale = math.sqrt(float(xc @ xc) * float(yc @ yc))
    observed = float(xc @ yc) / scale

    if n <= MAX_EXACT_PERMUTATION_N:
        perms = _all_permutations(n)
    else:
        if seed is None:
            raise ValueError(
                f"{n} pairs are more than MAX_EXACT_PERMUTATION_N = {MAX_EXACT_PERMUTATION_N}: the "
                "p-value is estimated from random permutations; give an integer seed"
            )
        if permutations < 1:
            raise ValueError(f"permutations={permutations}: draw at least one random permutation")
        rng = np.random.default_rng(seed)
        perms = rng.permuted(np.tile(np.arange(n), (permutations, 1)), axis=1)
    permuted = (yc[perms] @ xc) / scale
    if alternative == "greater":
        extreme = permuted >= observed - _TIE_ATOL
    elif alternative == "less":
        extreme = permuted <= observed + _TIE_ATOL
    else:
        extreme = np.abs(permuted) >= abs(observed) - _TIE_ATOL
    k = int(extreme.sum())
    if n <= MAX_EXACT_PERMUTATION_N:
        return k / len(perms)
    return (1 + k) / (1 + len(perms))


# ------------------------------------------------------------------------------------------
# Outcomes


class Outcome(enum.StrEnum):
    """The three-valued verdict of a claim statistic with its uncertainty."""

    HOLDS = "holds"
    FAILS = "fails"
    INCONCLUSIVE = "inconclusive"


def outcome(interval: Interval | tuple[float, float], threshold: Threshold) -> Outcome:
    """Whether ``threshold`` holds over all of ``interval``, fails over all of it, or neither.

    The rule, in one place:

    - **holds** when both ends meet the threshold (``threshold.check(low) and
      threshold.check(high)``). ``Threshold.check`` is monotone in the value (the values that meet
      ``≥``/``>`` form an upper set, those that meet ``≤``/``<`` a lower set), so then every value of
      the interval meets it.
    - **fails** when neither end meets it: then no value of the interval does.
    - **inconclusive** otherwise: the interval straddles the bound.

    The bound counts exactly as in ``Threshold.check``, with its tolerance ``BOUND_RTOL``: an end on
    the bound of ``≥`` or ``≤`` meets it, an end on the bound of ``>`` or ``<`` does not. Hence for
    ``≥ 0.8`` the interval [0.8, 0.9] holds, while for ``> 0`` the interval [0, 0.3] is
    inconclusive, and [0, 0] fails. A degenerate interval ``(x, x)`` gets the point verdict of ``x``:
    holds exactly when ``threshold.check(x)``.

    **NaN.** An interval with a NaN end (the statistic was undefined on the data or in a resample,
    or the group could not be evaluated at all) is inconclusive, never fails: a NaN says the data
    cannot tell, not that the claim is false. (The point verdicts count "not evaluable" as not
    holding; here it gets its own outcome.)

    **Confidence.** With a two-sided interval at level 95 %, "holds" and "fails" are one-sided
    decisions with an error rate of at most 2.5 % each, as far as the interval's coverage is
    nominal.

    **Several bounds.** A claim made of several bounds (r ≥ 0.9 *and* slope > 0; rise, plateau
    span *and* final rise) is judged by :func:`all_of` over each bound's outcome on its own
    statistic's interval. Prerequisites on counts (``MIN_MODELS``, ``MIN_CHECKPOINTS``) are not
    statistics: a group that does not meet them has none, so pass a NaN interval (inconclusive).
    """
    if isinstance(interval, Interval):
        low, high = interval.low, interval.high
    else:
        low, high = (float(v) for v in interval)
    if math.isnan(low) or math.isnan(high):
        return Outcome.INCONCLUSIVE
    if low > high:
        raise ValueError(f"interval ({low}, {high}): low is above high")
    meets_low, meets_high = threshold.check(low), threshold.check(high)
    if meets_low and meets_high:
        return Outcome.HOLDS
    if not meets_low and not meets_high:
        return Outcome.FAILS
    return Outcome.INCONCLUSIVE


def all_of(outcomes: Iterable[Outcome]) -> Outcome:
    """The outcome of a claim that needs every one of its bounds: fails if any bound fails, holds
    if all hold, inconclusive otherwise (Kleene's three-valued "and").

    Its error rates: a wrongly "holds" needs a truly failing bound to hold, so it stays at most one
    bound's rate (an intersection–union test, no correction needed); a wrongly "fails" can come
    from any of ``k`` bounds, so it is at most ``k`` times one bound's rate (Bonferroni). Raises
    on no outcomes: a claim with no bounds must not hold by default.
    """
    got = [Outcome(o) for o in outcomes]
    if not got:
        raise ValueError("all_of needs at least one outcome")
    if Outcome.FAILS in got:
        return Outcome.FAILS
    if all(o is Outcome.HOLDS for o in got):
        return Outcome.HOLDS
    return Outcome.INCONCLUSIVE
