"""Cases for tests/replication/test_uncertainty.py: synthetic per-point data with a known answer for
the bootstrap's coverage, groups built to make each claim-like statistic hold, fail and be
inconclusive, permutation p-values computed by hand, and intervals at and around each comparison.

Per-point data are drawn from ``numpy.random.default_rng`` with the seed each case names. Batched
statistics take the resampled groups, each of shape ``(b, S, n, ...)``, and return ``b`` values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from crlm_bench.replication.claims.uncertainty import Outcome
from crlm_bench.replication.claims.verdict import Threshold

HOLDS, FAILS, INCONCLUSIVE = Outcome.HOLDS, Outcome.FAILS, Outcome.INCONCLUSIVE

# ------------------------------------------------------------------------------------------
# Batched statistics


def cell_means(groups: Sequence[np.ndarray]) -> np.ndarray:
    """``(b, groups)``: each group's mean over seeds and points."""
    return np.stack([g.mean(axis=(1, 2)) for g in groups], axis=-1)


def row_ranks(a: np.ndarray) -> np.ndarray:
    """Ranks along the last axis (no ties in continuous data)."""
    return np.argsort(np.argsort(a, axis=-1), axis=-1).astype(float)


def row_pearson(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Pearson's r of each row of ``a`` (b, k) with ``x`` (k,)."""
    ac, xc = a - a.mean(axis=-1, keepdims=True), x - x.mean()
    return (ac @ xc) / np.sqrt((ac**2).sum(axis=-1) * (xc @ xc))


def row_slope(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Least-squares slope of each row of ``a`` (b, k) on ``x`` (k,)."""
    xc = x - x.mean()
    return (a - a.mean(axis=-1, keepdims=True)) @ xc / (xc @ xc)


# ------------------------------------------------------------------------------------------
# Coverage: (name, make(rng) -> (groups, truth), batched statistic, log_scale)
# Nominal 95 %; the test asks for 90–99 % of COVERAGE_TRIALS seeded trials.

COVERAGE_TRIALS = 200


def _hierarchical_normal(rng: np.random.Generator) -> tuple[list[list[np.ndarray]], float]:
    # 20 seeds whose means scatter with sd 1 around 0, 10 points each with sd 1 around their seed's
    # mean: the seed level dominates, so an interval that resamples points only covers ≈ 40 %.
    return [[rng.normal(mu, 1.0, 10) for mu in rng.normal(0.0, 1.0, 20)]], 0.0


def _lognormal_median(rng: np.random.Generator) -> tuple[list[list[np.ndarray]], float]:
    # one seed, 50 points: the interval rests on the inner level alone; median exp(0.5)
    return [[rng.lognormal(0.5, 1.0, 50)]], math.exp(0.5)


def _median_ratio(rng: np.random.Generator) -> tuple[list[list[np.ndarray]], float]:
    # two cells (baseline, mixup) of 50 log-normal points; ratio of medians e^1 / e^0
    return [[rng.lognormal(1.0, 1.0, 50)], [rng.lognormal(0.0, 1.0, 50)]], math.e


def _grand_mean(groups):
    return groups[0].mean(axis=(1, 2))


def _median(groups):
    return np.median(groups[0], axis=(1, 2))


def _ratio_of_medians(groups):
    return np.median(groups[0], axis=(1, 2)) / np.median(groups[1], axis=(1, 2))


COVERAGE_CASES = [
    ("mean-over-seeds-and-points", _hierarchical_normal, _grand_mean, False),
    ("median-of-log-normal-points", _lognormal_median, _median, False),
    ("ratio-of-medians-log-scale", _median_ratio, _ratio_of_medians, True),
]

# ------------------------------------------------------------------------------------------
# Claim-like statistics that must hold, fail and be inconclusive:
# (name, make(rng) -> groups, (batched statistic, log_scale, threshold), expected outcome)

_ACCURACIES = np.array([0.80, 0.85, 0.88, 0.92])  # four models, one accuracy each
_CHECKPOINT_ACCURACIES = np.array([0.50, 0.57, 0.64, 0.71, 0.78, 0.85])


def _normal_groups(means: Sequence[float], sd: float, seeds: int, points: int):
    def make(rng: np.random.Generator) -> list[list[np.ndarray]]:
        return [[rng.normal(m, sd, points) for _ in range(seeds)] for m in means]

    return make


def _lognormal_groups(medians: Sequence[float], sigma: float, seeds: int, points: int):
    def make(rng: np.random.Generator) -> list[list[np.ndarray]]:
        return [[rng.lognormal(math.log(m), sigma, points) for _ in range(seeds)] for m in medians]

    return make


def _final_rise_cells(penultimate: float, last: float, sigma: float, seeds: int, points: int):
    """One group; each cell (points, 2): a point's value at the penultimate and at the last probe."""

    def make(rng: np.random.Generator) -> list[list[np.ndarray]]:
        return [
            [
                np.column_stack(
                    [
                        rng.lognormal(math.log(penultimate), sigma, points),
                        rng.lognormal(math.log(last), sigma, points),
                    ]
                )
                for _ in range(seeds)
            ]
        ]

    return make


def _final_rise(groups):
    means = groups[0].mean(axis=(1, 2))  # (b, 2): MAPC at the penultimate and the last probe
    return means[:, 1] / means[:, 0]


def _spearman_gap_accuracy(groups):
    return row_pearson(row_ranks(cell_means(groups)), row_ranks(_ACCURACIES))


def _mixup_ratio(groups):  # groups: baseline, mixup; median plateau per seed, mean over seeds
    base, mix = (np.median(g, axis=2).mean(axis=1) for g in groups)
    return mix / base


def _pearson_along_training(groups):
    return row_pearson(cell_means(groups), _CHECKPOINT_ACCURACIES)


def _slope_along_training(groups):
    return row_slope(cell_means(groups), 100 * _CHECKPOINT_ACCURACIES)


FINAL_RISE = Threshold(5, ">=", "final rise, as in profile_shape")
ACROSS_MODELS = Threshold(0.8, ">=", "Spearman across models, as in gap_across_models")
RATIO_TO_BASELINE = Threshold(0.5, "<=", "mixup ratio, as in mixup_flattens")
ALONG_TRAINING = Threshold(0.9, ">=", "Pearson along training, as in gap_along_training")
SLOPE = Threshold(0, ">", "slope along training, as in gap_along_training")

#: what is judged: (batched statistic, log_scale, threshold)
_RISE = (_final_rise, True, FINAL_RISE)
_RHO = (_spearman_gap_accuracy, False, ACROSS_MODELS)
_MIXUP = (_mixup_ratio, True, RATIO_TO_BASELINE)

CLAIM_CASES = [
    ("final-rise-14x", _final_rise_cells(0.2, 2.8, 0.5, 3, 40), _RISE, HOLDS),
    ("final-rise-none", _final_rise_cells(0.2, 0.2, 0.5, 3, 40), _RISE, FAILS),
    # 8.5× on the data, a point verdict holds; the interval is [3.5, 16]
    ("final-rise-5x-noisy", _final_rise_cells(0.2, 1.0, 1.5, 3, 40), _RISE, INCONCLUSIVE),
    ("models-ordered", _normal_groups((1, 2, 3, 4), 0.1, 3, 50), _RHO, HOLDS),
    ("models-reversed", _normal_groups((4, 3, 2, 1), 0.1, 3, 50), _RHO, FAILS),
    # neighbouring models' means lie about one standard error apart: ρ is 0.8 on the data, which a
    # point verdict calls holding, but resamples swap neighbours and the interval is [−0.2, 1]
    ("models-close", _normal_groups((1, 1.1, 1.2, 1.3), 1.0, 3, 50), _RHO, INCONCLUSIVE),
    ("mixup-fifth", _lognormal_groups((0.1, 0.02), 0.5, 3, 50), _MIXUP, HOLDS),
    ("mixup-like-baseline", _lognormal_groups((0.1, 0.08), 0.5, 3, 50), _MIXUP, FAILS),
    # 0.49 on the data, a point verdict holds; the interval is [0.18, 1.25]
    ("mixup-half-noisy", _lognormal_groups((0.1, 0.05), 1.5, 3, 20), _MIXUP, INCONCLUSIVE),
]

#: Along training, two bounds judged together with all_of:
#: (name, make(rng) -> groups, {statistic: expected}, expected overall); the statistics and their
#: thresholds in ALONG_TRAINING_STATISTICS
_GAPS_RISING = (1.0, 1.2, 1.4, 1.6, 1.8, 2.0)
ALONG_TRAINING_CASES = [
    ("rising", _normal_groups(_GAPS_RISING, 0.3, 1, 40),
     {"pearson": HOLDS, "slope": HOLDS}, HOLDS),
    ("falling", _normal_groups(tuple(reversed(_GAPS_RISING)), 0.3, 1, 40),
     {"pearson": FAILS, "slope": FAILS}, FAILS),
    ("rising-noisily", _normal_groups(_GAPS_RISING, 1.2, 1, 40),
     {"pearson": INCONCLUSIVE, "slope": HOLDS}, INCONCLUSIVE),
    ("unrelated", _normal_groups((1.5, 1.1, 1.9, 1.9, 1.1, 1.5), 0.3, 1, 40),  # slope 0 in the means
     {"pearson": FAILS, "slope": INCONCLUSIVE}, FAILS),
]  # fmt: skip
ALONG_TRAINING_STATISTICS = {
    "pearson": (_pearson_along_training, ALONG_TRAINING),
    "slope": (_slope_along_training, SLOPE),
}

# ------------------------------------------------------------------------------------------
# Permutation p-values by hand: (x, y, statistic, alternative, p)

_ORDERED4 = [1.0, 2.0, 3.0, 4.0]
PERMUTATION_CASES = [
    # perfectly ordered: only the identity reaches ρ = 1 (1 of 4! = 24); every pairing has ρ ≤ 1
    (_ORDERED4, _ORDERED4, "spearman", "greater", 1 / 24),
    (_ORDERED4, _ORDERED4, "spearman", "less", 1.0),
    (_ORDERED4, _ORDERED4, "spearman", "two-sided", 2 / 24),  # ρ = 1 and ρ = −1
    (_ORDERED4, [10.0, 20.0, 30.0, 40.0], "pearson", "greater", 1 / 24),
    (_ORDERED4, [4.0, 3.0, 2.0, 1.0], "spearman", "greater", 1.0),
    (_ORDERED4, [4.0, 3.0, 2.0, 1.0], "spearman", "less", 1 / 24),
    ([1.0, 2.0, 3.0], [5.0, 6.0, 7.0], "spearman", "greater", 1 / 6),
    ([1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0, 5.0], "spearman", "greater", 1 / 120),
    (list(range(9)), list(range(9)), "spearman", "greater", 1 / math.factorial(9)),
    # one neighbouring pair swapped: ρ = 1 − Σd²/10 = 0.8; Σd² ≤ 2 for the identity and the three
    # neighbouring swaps, so 4 of 24
    (_ORDERED4, [1.0, 2.0, 4.0, 3.0], "spearman", "greater", 4 / 24),
    (_ORDERED4, [1.0, 2.0, 4.0, 3.0], "pearson", "greater", 4 / 24),  # values are their ranks
    # y rank-ties [1.5, 1.5, 3.5, 3.5]: the maximum ρ is reached when the two top x meet the two
    # 3.5s, in 2!·2! = 4 of 24 pairings
    (_ORDERED4, [1.0, 1.0, 2.0, 2.0], "spearman", "greater", 4 / 24),
    # Pearson with an outlier: Σ (x − x̄)·y_π is largest only for the sorted pairing when the y are
    # distinct (rearrangement inequality), so 1/24 again; swapping 3 and 100 drops r from 0.79 to 0.27
    (_ORDERED4, [1.0, 2.0, 3.0, 100.0], "pearson", "greater", 1 / 24),
]

#: (x, y): the correlation is undefined, the p-value NaN
UNDEFINED_PAIRS = [
    ([1.0, 2.0], [1.0, 2.0]),  # two pairs
    ([1.0, 2.0, math.nan], [1.0, 2.0, 3.0]),  # two finite pairs
    ([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]),  # constant side
    ([2.0, 2.0, 2.0, 1.0], [1.0, 2.0, 3.0, math.inf]),  # constant once the pair with inf is dropped
]

# ------------------------------------------------------------------------------------------
# Outcomes at and around the bound 0.8: comparison -> [(low, high, expected)]

_B = 0.8
_JUST_BELOW = 0.7999999999999999  # within BOUND_RTOL: on the bound
OUTCOME_CASES = {
    ">=": [
        (0.85, 0.9, HOLDS),
        (_B, 0.9, HOLDS),  # low on the bound meets ≥
        (_JUST_BELOW, 0.9, HOLDS),
        (_B, _B, HOLDS),
        (0.7, _B, INCONCLUSIVE),  # high on the bound meets, low does not
        (0.7, 0.9, INCONCLUSIVE),
        (0.7, 0.79, FAILS),
        (-math.inf, 0.79, FAILS),
        (0.81, math.inf, HOLDS),
    ],
    ">": [
        (0.85, 0.9, HOLDS),
        (_B, 0.9, INCONCLUSIVE),  # low on the bound does not meet >
        (_JUST_BELOW, 0.9, INCONCLUSIVE),
        (_B, _B, FAILS),
        (0.7, _B, FAILS),
        (0.7, 0.9, INCONCLUSIVE),
        (0.7, 0.79, FAILS),
    ],
    "<=": [
        (0.7, 0.75, HOLDS),
        (0.7, _B, HOLDS),
        (_B, _B, HOLDS),
        (_B, 0.9, INCONCLUSIVE),
        (0.7, 0.9, INCONCLUSIVE),
        (0.81, 0.9, FAILS),
    ],
    "<": [
        (0.7, 0.75, HOLDS),
        (0.7, _B, INCONCLUSIVE),
        (_B, _B, FAILS),
        (_B, 0.9, FAILS),
        (0.7, 0.9, INCONCLUSIVE),
        (0.81, 0.9, FAILS),
    ],
}

#: (outcomes, all_of)
ALL_OF_CASES = [
    ([HOLDS], HOLDS),
    ([FAILS], FAILS),
    ([INCONCLUSIVE], INCONCLUSIVE),
    ([HOLDS, HOLDS, HOLDS], HOLDS),
    ([HOLDS, INCONCLUSIVE], INCONCLUSIVE),
    ([HOLDS, FAILS], FAILS),
    ([INCONCLUSIVE, FAILS], FAILS),  # one bound certainly fails: the claim does
    ([INCONCLUSIVE, INCONCLUSIVE], INCONCLUSIVE),
    (["holds", "fails"], FAILS),  # the string values are accepted
]
