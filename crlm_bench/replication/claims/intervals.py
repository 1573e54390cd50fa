"""Seeds pooled into one network, and the interval and outcome of every verdict.

A claim judges a network, not one seed of it: :func:`pool` merges the results that differ only in
their training seed into one :class:`~crlm_bench.replication.claims.curves.CellResult` whose
profile is the mean over the seeds of each probe's statistics (its test accuracy the mean
accuracy), keeping the seeds as its ``replicas``. The claim's statistic is then computed once on
the pooled results, as before.

:func:`with_intervals` gives each verdict the 95 % interval of its statistic and its outcome. The
resampling is :func:`~crlm_bench.replication.claims.uncertainty.bootstrap_groups_intervals`:
each pooled result is one group, its seeds the outer level and its points the inner one. In each
resample the per-probe statistics are recomputed from the drawn points (MAPC and MAPC·r as
means, ‖II‖ as a median, m·MAPC with each seed's m), averaged over the drawn seeds together with
their test accuracies and intrinsic dimensions, and the claim's own ``measure`` runs on the
resampled results: the interval is that of the statistic exactly as the claim computes it, with no
second implementation of it. A point is one test image, kept whole across the probes.

What is not resampled: the intrinsic dimension and d of a probe (TwoNN over its own subsets, one
value per seed, so they vary with the seeds only), and the test accuracy (one value per seed).
Results without per-point values (profiles stored before format 2, frames built by hand) give no
interval; their verdicts keep the point verdict as their outcome.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np
import pandas as pd

from crlm_bench.replication.claims.curves import STATISTICS, CellResult, Curve, ProfileColumns
from crlm_bench.replication.claims.uncertainty import (
    MIN_RESAMPLES,
    Outcome,
    all_of,
    bootstrap_groups_intervals,
    outcome,
)
from crlm_bench.replication.claims.verdict import Threshold, Verdict, fmt

__all__ = ["BOOTSTRAP_SEED", "RESAMPLES", "Bound", "pool", "pooled_id", "with_intervals"]

#: Resamples of every verdict's interval (the fewest the bootstrap accepts: see MIN_RESAMPLES).
RESAMPLES = MIN_RESAMPLES
#: Seed of the resampling: equal results give equal intervals.
BOOTSTRAP_SEED = 0

#: Per-point fields of a resample, in the order of the last axis of a seed's array: MAPC, ‖II‖,
#: MAPC·r per point, then per-seed constants repeated over the points: m, ID, test accuracy.
_FIELDS = ("point_mapc", "sff_norm", "mapc_r", "m", "id_mean", "test_accuracy")


@dataclass(frozen=True)
class Bound:
    """One bound a claim's verdict is judged on: the statistic ``extract`` reads from a verdict
    (its ``value`` or one of its details), the threshold it must meet, and whether it is a ratio
    (bootstrapped on the log scale)."""

    name: str
    threshold: Threshold
    extract: Callable[[Verdict], float]
    log_scale: bool = False

    def read(self, verdict: Verdict) -> float:
        try:
            x = self.extract(verdict)
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            return math.nan
        return math.nan if x is None else float(x)


def value_bound(threshold: Threshold, *, log_scale: bool = False, name: str = "value") -> Bound:
    """The bound on the verdict's own value."""
    return Bound(name, threshold, lambda v: v.value, log_scale)


def detail_bound(name: str, threshold: Threshold, key: str, *, log_scale: bool = False) -> Bound:
    """The bound on ``verdict.details[key]``."""
    return Bound(name, threshold, lambda v: v.details[key], log_scale)


# ------------------------------------------------------------------------------------------
# pooling seeds


_SEED = re.compile(r"-s(0|[1-9][0-9]*)-")


def pooled_id(cell_id: str, seeds: Sequence[int]) -> str:
    """``fashion-mnist-vgg6_narrow-baseline-s0+1+2-e8``: the id of a network pooled over seeds."""
    text = "+".join(str(s) for s in sorted(seeds))
    matches = list(_SEED.finditer(cell_id))
    if not matches:
        return f"{cell_id}-s{text}"
    m = matches[-1]
    return f"{cell_id[: m.start()]}-s{text}-{cell_id[m.end() :]}"


def _network(r: CellResult) -> tuple:
    return (r.dataset, r.model, r.recipe, r.epochs, r.epoch, r.preset)


def _row_keys(frame: pd.DataFrame) -> list[tuple[str, str]]:
    nb = frame["neighbourhood"] if "neighbourhood" in frame.columns else pd.Series("", index=frame.index)
    return list(zip(frame["probe"].astype(str), nb.astype(str)))


def _mean_profile(replicas: Sequence[CellResult]) -> pd.DataFrame:
    """The first replica's profile with every numeric column the mean over the replicas (rows
    matched by probe and neighbourhood) and every boolean column true where any replica's is."""
    base = replicas[0].profile.reset_index(drop=True)
    keys = _row_keys(base)
    aligned = []
    for r in replicas:
        frame = r.profile.reset_index(drop=True)
        index = {k: i for i, k in enumerate(_row_keys(frame))}
        aligned.append(frame.iloc[[index[k] for k in keys]].reset_index(drop=True))
    out = base.copy()
    for column in base.columns:
        kind = base[column].dtype.kind
        if kind == "b":
            out[column] = np.logical_or.reduce([a[column].to_numpy(dtype=bool) for a in aligned])
        elif kind in "iuf":
            out[column] = np.mean([a[column].to_numpy(dtype=float) for a in aligned], axis=0)
    return out


def _same_rows(replicas: Sequence[CellResult]) -> bool:
    first = sorted(_row_keys(replicas[0].profile))
    return all(sorted(_row_keys(r.profile)) == first for r in replicas[1:])


def pool(results: Sequence[CellResult]) -> list[CellResult]:
    """The results with the seeds of each network merged (in the order of first appearance); a
    network with one seed is kept as it is, and so are seeds whose profiles have different rows
    (probes or input rows): each is then judged alone, as measured."""
    networks: dict[tuple, list[CellResult]] = defaultdict(list)
    for r in results:
        networks[_network(r)].append(r)
    out = []
    for replicas in networks.values():
        if len(replicas) == 1 or not _same_rows(replicas):
            out.extend(replicas)
            continue
        replicas = sorted(replicas, key=lambda r: r.seed)
        first = replicas[0]
        out.append(
            replace(
                first,
                cell_id=pooled_id(first.cell_id, [r.seed for r in replicas]),
                test_accuracy=float(np.mean([r.test_accuracy for r in replicas])),
                profile=_mean_profile(replicas),
                points=None,
                replicas=tuple(replicas),
            )
        )
    return out


# ------------------------------------------------------------------------------------------
# resampling


def _seed_array(r: CellResult, keys: list[tuple[str, str]], n: int) -> np.ndarray | None:
    """``(n, rows, fields)``: the per-point values of one seed for the profile rows ``keys``."""
    points, frame = r.points, r.profile
    if points is None or len(points) == 0:
        return None
    frame = frame.reset_index(drop=True)
    row_of = {k: i for i, k in enumerate(_row_keys(frame))}
    out = np.full((n, len(keys), len(_FIELDS)), np.nan)
    point_keys = _row_keys(points)
    idx = points["point"].to_numpy()
    mapc = points["point_mapc"].to_numpy(dtype=float)
    sff = points["sff_norm"].to_numpy(dtype=float)
    radius = points["radius"].to_numpy(dtype=float)
    position = {k: j for j, k in enumerate(keys)}
    rows = np.array([position.get(k, -1) for k in point_keys])
    keep = (rows >= 0) & (idx < n)
    out[idx[keep], rows[keep], 0] = mapc[keep]
    out[idx[keep], rows[keep], 1] = sff[keep]
    out[idx[keep], rows[keep], 2] = mapc[keep] * radius[keep]
    for j, k in enumerate(keys):
        i = row_of.get(k)
        if i is None:
            continue
        out[:, j, 3] = float(frame.at[i, "m"]) if "m" in frame.columns else math.nan
        out[:, j, 4] = float(frame.at[i, "id_mean"]) if "id_mean" in frame.columns else math.nan
    out[:, :, 5] = r.test_accuracy
    return out


def _groups(pooled: Sequence[CellResult]) -> list[list[np.ndarray]] | None:
    """One group per pooled result (its seeds' arrays), or None if any result lacks points."""
    groups = []
    for r in pooled:
        replicas = r.replicas or (r,)
        keys = _row_keys(r.profile.reset_index(drop=True))
        counts = [0 if x.points is None else int(x.points["point"].max()) + 1 for x in replicas]
        n = min(counts)
        if n < 2:
            return None
        arrays = [_seed_array(x, keys, n) for x in replicas]
        if any(a is None for a in arrays):
            return None
        groups.append(arrays)
    return groups


#: the plain reduction of each nan-aware one, the same where no value is NaN (and much faster for
#: the median, which numpy's nanmedian computes through masked arrays on small slices)
_PLAIN = {np.nanmean: np.mean, np.nanmedian: np.median}


def _nan_stat(fn, a: np.ndarray, axis: int) -> np.ndarray:
    """``fn(a, axis)`` of a nan-aware reduction, NaN without a warning where a slice is all NaN."""
    if fn in _PLAIN and not np.isnan(a).any():
        return _PLAIN[fn](a, axis=axis)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(a, axis=axis)


#: how each statistic's profile column is recomputed from a resample ``(S, n, rows, fields)``:
#: per seed over the drawn points, then the mean over the drawn seeds
_RECOMPUTE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mapc": lambda d: _nan_stat(np.nanmean, d[..., 0], 1),
    "sff_norm_median": lambda d: _nan_stat(np.nanmedian, d[..., 1], 1),
    "mapc_undiluted": lambda d: d[:, 0, :, 3] * _nan_stat(np.nanmean, d[..., 0], 1),
    "mapc_dimensionless": lambda d: _nan_stat(np.nanmean, d[..., 2], 1),
}


@dataclass(frozen=True)
class _Resample(CellResult):
    """A result of one bootstrap resample: its curves come from ``columns`` (its profile's, with
    the resampled statistic and intrinsic dimension), not from ``profile``, which stays the pooled
    result's frame. The claims read a result through :meth:`curve` only."""

    columns: ProfileColumns | None = field(default=None, compare=False, repr=False)

    def curve(self, statistic: str = "mapc", input_row: str | None = "knn") -> Curve:
        return self.columns.curve(statistic, input_row)


def _resampler(r: CellResult, column: str) -> Callable[[np.ndarray], CellResult]:
    """A function of ``drawn`` ``(S, n, rows, fields)`` giving ``r`` (its profile's index reset)
    with the statistic's ``column``, the intrinsic dimension and the test accuracy recomputed
    from it. The profile's columns are read once, here."""
    base = ProfileColumns.of(r.profile)
    names = {f.name: getattr(r, f.name) for f in fields(CellResult)}
    with_id = "id_mean" in base.values

    def resampled(drawn: np.ndarray) -> CellResult:
        values = {column: _RECOMPUTE[column](drawn).mean(0)}
        if with_id:
            values["id_mean"] = drawn[:, 0, :, 4].mean(0)
        accuracy = float(drawn[:, 0, 0, 5].mean())
        return _Resample(**{**names, "test_accuracy": accuracy}, columns=base.with_values(values))

    return resampled


def with_intervals(
    bounds: Sequence[Bound],
    measure: Callable[..., list[Verdict]],
    pooled: Sequence[CellResult],
    verdicts: Sequence[Verdict],
    statistic: str,
    input_row: str,
    variant: str,
    *,
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> list[Verdict]:
    """``verdicts`` (the claim's on ``pooled``) with each bound's interval and the outcome.

    The interval of the verdict's value is its ``interval``; with several bounds their intervals
    and outcomes are in ``details["bounds"]`` and the outcome is :func:`all_of` them. Without
    bounds or per-point values the verdicts are returned as they are.
    """
    if not verdicts or not bounds:
        return list(verdicts)
    groups = _groups(pooled)
    if groups is None:
        return list(verdicts)
    index = {v.group: i for i, v in enumerate(verdicts)}
    k = len(bounds)

    column = STATISTICS.get(statistic).column
    bases = [replace(r, profile=r.profile.reset_index(drop=True), replicas=()) for r in pooled]
    resamplers = [_resampler(r, column) for r in bases]

    def statistics(data: list[np.ndarray]) -> list[float]:
        results = [resample(d) for resample, d in zip(resamplers, data)]
        out = [math.nan] * (len(verdicts) * k)
        for v in measure(results, statistic, input_row, variant):
            i = index.get(v.group)
            if i is not None:
                out[i * k : (i + 1) * k] = [b.read(v) for b in bounds]
        return out

    logs = []
    for v in verdicts:
        for b in bounds:  # a ratio is bootstrapped on the log scale only where it is positive
            x = b.read(v)
            logs.append(b.log_scale and x > 0)
    intervals = _intervals(groups, statistics, logs, seed, resamples)
    out = []
    for i, v in enumerate(verdicts):
        mine = intervals[i * k : (i + 1) * k]
        outcomes = [outcome(iv, b.threshold) for iv, b in zip(mine, bounds)]
        details = dict(v.details)
        if k > 1:
            details["bounds"] = {
                b.name: {
                    "value": b.read(v),
                    "interval": [iv.low, iv.high],
                    "outcome": str(o),
                    "threshold": b.threshold.text,
                }
                for b, iv, o in zip(bounds, mine, outcomes)
            }
        seeds = ", ".join(map(str, mine[0].cells))
        scale = ", log scale" if mine[0].log_scale else ""
        details["interval_method"] = (
            f"95 % percentile bootstrap, {resamples} resamples over seeds ({seeds} per group) "
            f"and points{scale}"
        )
        result = all_of(outcomes)
        if not v.evaluable:
            result = Outcome.INCONCLUSIVE
        ranges = "; ".join(
            f"{b.name} [{fmt(iv.low)}, {fmt(iv.high)}] ({b.threshold.text})" for b, iv in zip(bounds, mine)
        )
        explanation = f"{v.explanation} 95 % interval{'s' if k > 1 else ''}: {ranges}; outcome: {result}."
        out.append(
            replace(
                v,
                interval=(mine[0].low, mine[0].high),
                outcome=str(result),
                details=details,
                explanation=explanation,
            )
        )
    return out


def _intervals(groups, statistics, logs, seed, resamples):
    """The intervals, with a log-scale statistic that turns non-positive in a resample bootstrapped
    on the linear scale instead (the percentile ends are the same order statistics either way)."""
    try:
        return bootstrap_groups_intervals(groups, statistics, seed=seed, resamples=resamples, log_scale=logs)
    except ValueError as error:
        if "log_scale" not in str(error):
            raise
        return bootstrap_groups_intervals(
            groups, statistics, seed=seed, resamples=resamples, log_scale=[False] * len(logs)
        )
