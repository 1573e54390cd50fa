"""Verdicts with uncertainty (crlm_bench/replication/claims/uncertainty.py): the bootstrap interval's
coverage on data with a known answer, its determinism and its two levels; exact permutation p-values
computed by hand and against scipy; and the outcome rule at and around each comparison's bound.
Cases beside the test in uncertainty_cases.py."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from crlm_bench.replication.claims import statistics as S
from crlm_bench.replication.claims.uncertainty import (
    MAX_EXACT_PERMUTATION_N,
    MIN_RESAMPLES,
    Interval,
    Outcome,
    all_of,
    bootstrap_groups_interval,
    bootstrap_interval,
    outcome,
    permutation_pvalue,
)
from crlm_bench.replication.claims.verdict import Threshold
from tests.replication import uncertainty_cases as cases


def _mean(a):
    return a.mean(axis=(1, 2))


# ------------------------------------------------------------------------------------------
# bootstrap: coverage on synthetic data with a known answer


@pytest.mark.parametrize("name, make, statistic, log_scale", cases.COVERAGE_CASES, ids=lambda c: c)
def test_a_95_percent_interval_covers_the_truth_in_90_to_99_percent_of_trials(
    name, make, statistic, log_scale
):
    covered = 0
    for trial in range(cases.COVERAGE_TRIALS):
        groups, truth = make(np.random.default_rng(10_000 + trial))
        interval = bootstrap_groups_interval(groups, statistic, seed=trial, batched=True, log_scale=log_scale)
        covered += interval.contains(truth)
    assert 0.90 <= covered / cases.COVERAGE_TRIALS <= 0.99, covered


# ------------------------------------------------------------------------------------------
# bootstrap: the two levels, pinned on data whose resampling distribution is known


def test_the_outer_level_resamples_seeds():
    # each cell is constant, so only the seeds vary: the mean of two draws from {0, 10} is 0, 5 or
    # 10 with probabilities 1/4, 1/2, 1/4, and the 2.5 % and 97.5 % quantiles are 0 and 10
    cells = [np.zeros(5), np.full(5, 10.0)]
    interval = bootstrap_interval(cells, _mean, seed=0, batched=True)
    assert (interval.low, interval.high, interval.estimate) == (0.0, 10.0, 5.0)
    assert interval.cells == (2,)


def test_the_inner_level_resamples_points():
    # one seed, points {0, 10}: the same distribution, from the inner level alone
    interval = bootstrap_interval([np.array([0.0, 10.0])], _mean, seed=0, batched=True)
    assert (interval.low, interval.high) == (0.0, 10.0)


def test_constant_data_give_a_degenerate_interval():
    interval = bootstrap_interval([np.full(7, 3.5)] * 3, _mean, seed=1, batched=True)
    assert (interval.low, interval.high, interval.estimate) == (3.5, 3.5, 3.5)
    assert interval.defined and interval.contains(3.5) and not interval.contains(3.6)


def test_rows_are_resampled_whole():
    # each point carries its value at two probes; the probes' difference is 1 at every point, so it
    # stays exactly 1 in every resample only if rows are kept together
    rng = np.random.default_rng(3)
    base = rng.normal(size=(4, 30))
    cells = [np.column_stack([b, b + 1.0]) for b in base]
    interval = bootstrap_interval(
        cells, lambda a: (a[..., 1] - a[..., 0]).mean(axis=(1, 2)), seed=0, batched=True
    )
    assert interval.low == pytest.approx(1.0) and interval.high == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------
# bootstrap: determinism, batched against unbatched, settings


def _noisy_cells(seed=0, seeds=4, points=25):
    rng = np.random.default_rng(seed)
    return [rng.lognormal(0.0, 1.0, points) for _ in range(seeds)]


def test_an_interval_is_determined_by_its_seed():
    cells = _noisy_cells()
    first = bootstrap_interval(cells, _mean, seed=7, batched=True)
    assert bootstrap_interval(cells, _mean, seed=7, batched=True) == first
    other = bootstrap_interval(cells, _mean, seed=8, batched=True)
    assert (other.low, other.high) != (first.low, first.high)
    assert first.low < first.estimate < first.high


@pytest.mark.parametrize("points", [25, 5000])  # one chunk of resamples; several chunks
def test_batched_and_unbatched_statistics_see_the_same_resamples(points):
    cells = _noisy_cells(points=points, seeds=1 if points > 100 else 4)
    batched = bootstrap_interval(cells, _mean, seed=3, batched=True)
    unbatched = bootstrap_interval(cells, lambda a: float(a.mean()), seed=3)
    assert unbatched.low == pytest.approx(batched.low, rel=1e-12)
    assert unbatched.high == pytest.approx(batched.high, rel=1e-12)
    assert unbatched.estimate == pytest.approx(batched.estimate, rel=1e-12)


def test_groups_are_resampled_independently_and_passed_in_order():
    groups = [[np.full(10, 2.0)], _noisy_cells(seed=1)]
    seen = []

    def statistic(data):
        seen.append(tuple(d.shape for d in data))
        return float(data[0].mean() - data[1].mean())

    interval = bootstrap_groups_interval(groups, statistic, seed=0)
    assert seen[0] == ((1, 10), (4, 25)) and len(seen) == 1 + MIN_RESAMPLES
    assert interval.cells == (1, 4) and interval.resamples == MIN_RESAMPLES
    # the first group is constant: the interval is 2 minus the second group's
    second = bootstrap_interval(groups[1], lambda a: float(a.mean()), seed=0)
    assert interval.low < interval.estimate < interval.high
    assert interval.high - interval.low == pytest.approx(second.high - second.low, rel=0.5)


@pytest.mark.parametrize("level", [0.5, 0.9, 0.99])
def test_a_higher_level_gives_a_wider_interval(level):
    cells = _noisy_cells()
    narrow = bootstrap_interval(cells, _mean, seed=0, batched=True, level=level)
    wide = bootstrap_interval(cells, _mean, seed=0, batched=True, level=(1 + level) / 2)
    assert wide.low < narrow.low and narrow.high < wide.high and wide.level == (1 + level) / 2


def test_the_ends_are_percentiles_of_the_resampled_statistic():
    # unbatched, the statistic records what it returns; the ends are numpy's linear quantiles
    cells, returned = _noisy_cells(), []

    def statistic(a):
        returned.append(float(a.mean()))
        return returned[-1]

    interval = bootstrap_interval(cells, statistic, seed=5, level=0.9)
    low, high = np.quantile(returned[1:], [0.05, 0.95])
    assert (interval.low, interval.high) == pytest.approx((low, high), rel=1e-15)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(resamples=999), r"resamples=999: a bootstrap interval needs at least MIN_RESAMPLES = 1000"),
        (dict(level=1.0), r"level=1.0: the confidence level must lie strictly between 0 and 1"),
        (dict(level=0.0), r"level=0.0: the confidence level"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_interval(_noisy_cells(), _mean, seed=0, batched=True, **kwargs)


@pytest.mark.parametrize(
    "groups, message",
    [
        ([], r"no groups"),
        ([[]], r"group 0 has no cells"),
        (
            [[np.ones(3)], [np.ones(3), np.ones(4)]],
            r"the cells of group 1 differ in shape \(\[\(3,\), \(4,\)\]\)",
        ),
        ([[np.float64(1.0)]], r"the cells of group 0 have shape \(\); expected points along a first axis"),
        ([[np.ones(0)]], r"the cells of group 0 have shape \(0,\)"),
    ],
)
def test_bad_data_are_refused(groups, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_groups_interval(groups, lambda d: 0.0, seed=0)


def test_a_batched_statistic_must_return_one_value_per_resample():
    with pytest.raises(ValueError, match=r"one value per resample, shape \(1,\); got \(\)"):
        bootstrap_interval(_noisy_cells(), lambda a: a.mean(), seed=0, batched=True)


# ------------------------------------------------------------------------------------------
# bootstrap: NaN, infinities and the log scale


def test_a_statistic_undefined_in_some_resamples_gives_an_undefined_interval():
    # the median of resampled points {0, 0, 0, 1} is 0 in most resamples: 0/0 is NaN there
    cells = [np.array([0.0, 0.0, 0.0, 1.0])]
    interval = bootstrap_interval(cells, lambda a: S.ratio(float(np.median(a)), float(np.median(a))), seed=0)
    assert not interval.defined and math.isnan(interval.low) and math.isnan(interval.high)
    assert 0 < interval.undefined < MIN_RESAMPLES
    assert outcome(interval, Threshold(1, ">=", "why")) is Outcome.INCONCLUSIVE


def test_a_statistic_undefined_on_the_data_gives_an_undefined_interval():
    interval = bootstrap_interval(_noisy_cells(), lambda a: math.nan if a.shape[0] == 4 else 1.0, seed=0)
    assert not interval.defined and math.isnan(interval.estimate)


def test_infinite_resamples_are_ordered_not_nan():
    # 1/min is inf whenever the point 0 is drawn (in 1 − (3/4)^4 ≈ 68 % of resamples)
    cells = [np.array([0.0, 1.0, 2.0, 3.0])]
    interval = bootstrap_interval(cells, lambda a: S.ratio(1.0, float(a.min())), seed=0)
    assert math.isfinite(interval.low) and interval.high == math.inf and interval.defined
    everywhere = bootstrap_interval([np.zeros(3)], lambda a: S.ratio(1.0, float(a.min())), seed=0)
    assert (everywhere.low, everywhere.high) == (math.inf, math.inf)


def test_the_log_scale_interval_interpolates_geometrically():
    cells, returned = _noisy_cells(), []

    def statistic(a):
        returned.append(float(a.mean()))
        return returned[-1]

    interval = bootstrap_interval(cells, statistic, seed=2, log_scale=True)
    low, high = np.exp(np.quantile(np.log(returned[1:]), [0.025, 0.975]))
    assert (interval.low, interval.high) == pytest.approx((low, high), rel=1e-12)
    assert interval.log_scale
    plain = bootstrap_interval(cells, _mean, seed=2, batched=True)
    # the percentile interval commutes with log: only the interpolation differs
    assert (interval.low, interval.high) == pytest.approx((plain.low, plain.high), rel=1e-2)


@pytest.mark.parametrize(
    "cells, message",
    [
        (
            [np.array([-1.0, 1.0, 2.0])],
            r"log_scale needs a positive statistic; \d+ of 1000 resamples gave a value",
        ),
        ([np.array([-1.0, -2.0])], r"\d+ of 1000 resamples and the data gave a value ≤ 0 \(e.g. -1.5\)"),
        ([np.zeros(3)], r"1000 of 1000 resamples and the data gave a value ≤ 0"),
    ],
)
def test_the_log_scale_refuses_values_that_are_not_positive(cells, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_interval(cells, _mean, seed=0, batched=True, log_scale=True)


# ------------------------------------------------------------------------------------------
# bootstrap: properties

_POINTS = st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=8)


@given(
    st.lists(_POINTS.map(np.array), min_size=1, max_size=3).filter(lambda c: len({len(a) for a in c}) == 1)
)
def test_the_interval_of_a_mean_lies_within_the_data(cells):
    interval = bootstrap_interval(cells, _mean, seed=0, batched=True)
    everything = np.concatenate(cells)
    assert everything.min() - 1e-6 <= interval.low <= interval.high <= everything.max() + 1e-6


@given(
    st.lists(st.floats(-100, 100), min_size=2, max_size=10).map(np.array),
    st.floats(0.01, 100),
    st.floats(-100, 100),
)
def test_the_interval_moves_with_an_affine_map_of_the_data(points, scale, shift):
    base = bootstrap_interval([points], _mean, seed=4, batched=True)
    mapped = bootstrap_interval([scale * points + shift], _mean, seed=4, batched=True)
    tol = 1e-9 * (1 + scale * np.abs(points).max() + abs(shift))
    assert mapped.low == pytest.approx(scale * base.low + shift, abs=tol)
    assert mapped.high == pytest.approx(scale * base.high + shift, abs=tol)


# ------------------------------------------------------------------------------------------
# bootstrap + outcome: claim-like statistics that hold, fail and are inconclusive


@pytest.mark.parametrize(
    "name, make, judged, expected", cases.CLAIM_CASES, ids=[c[0] for c in cases.CLAIM_CASES]
)
def test_claim_like_statistics_hold_fail_or_are_inconclusive(name, make, judged, expected):
    statistic, log_scale, threshold = judged
    groups = make(np.random.default_rng(0))
    interval = bootstrap_groups_interval(groups, statistic, seed=1, batched=True, log_scale=log_scale)
    assert outcome(interval, threshold) is expected, interval


@pytest.mark.parametrize(
    "name, make, per_bound, expected",
    cases.ALONG_TRAINING_CASES,
    ids=[c[0] for c in cases.ALONG_TRAINING_CASES],
)
def test_a_claim_of_two_bounds_is_judged_by_all_of(name, make, per_bound, expected):
    groups = make(np.random.default_rng(0))
    got = {}
    for key, (statistic, threshold) in cases.ALONG_TRAINING_STATISTICS.items():
        got[key] = outcome(bootstrap_groups_interval(groups, statistic, seed=1, batched=True), threshold)
    assert got == per_bound
    assert all_of(got.values()) is expected


# ------------------------------------------------------------------------------------------
# permutation p-values


@pytest.mark.parametrize("x, y, statistic, alternative, p", cases.PERMUTATION_CASES)
def test_permutation_pvalues_computed_by_hand(x, y, statistic, alternative, p):
    assert permutation_pvalue(x, y, statistic=statistic, alternative=alternative) == pytest.approx(
        p, rel=1e-12
    )


@pytest.mark.parametrize("statistic", ["spearman", "pearson"])
@pytest.mark.parametrize("x, y", cases.UNDEFINED_PAIRS)
def test_an_undefined_correlation_has_no_pvalue(x, y, statistic):
    assert math.isnan(permutation_pvalue(x, y, statistic=statistic))


def test_pairs_with_a_non_finite_side_are_dropped():
    assert permutation_pvalue([1.0, 2.0, math.nan, 3.0, 4.0], [1.0, 2.0, 9.0, 3.0, 4.0]) == pytest.approx(
        1 / 24
    )


_SMALL = st.integers(3, 5).flatmap(
    lambda n: st.tuples(*(st.lists(st.integers(0, 4), min_size=n, max_size=n) for _ in range(2)))
)


@given(_SMALL, st.sampled_from(["spearman", "pearson"]), st.sampled_from(["greater", "less", "two-sided"]))
def test_exact_pvalues_agree_with_the_definition(xy, statistic, alternative):
    # the definition, one pairing at a time with numpy's correlation of (average-ranked) values,
    # the observed one checked against the claims' own correlations; small integers make ties
    # frequent. A tie within 1e-12 counts as at least as extreme.
    x, y = xy
    p = permutation_pvalue(x, y, statistic=statistic, alternative=alternative)
    observed = (S.spearman if statistic == "spearman" else S.pearson)(x, y)
    if math.isnan(observed):
        assert math.isnan(p)
        return
    if statistic == "spearman":
        x, y = scipy_stats.rankdata(x), scipy_stats.rankdata(y)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    permuted = np.array(
        [np.corrcoef(x, y[list(perm)])[0, 1] for perm in itertools.permutations(range(len(x)))]
    )
    assert permuted[0] == pytest.approx(observed, abs=1e-12)  # the identity comes first
    extreme = {
        "greater": permuted >= observed - 1e-12,
        "less": permuted <= observed + 1e-12,
        "two-sided": np.abs(permuted) >= abs(observed) - 1e-12,
    }[alternative]
    assert p == pytest.approx(extreme.mean(), rel=1e-12)
    assert 1 / math.factorial(len(x)) <= p <= 1.0


def test_more_pairs_than_enumerated_need_a_seed():
    n = MAX_EXACT_PERMUTATION_N + 1
    with pytest.raises(
        ValueError, match=rf"{n} pairs are more than MAX_EXACT_PERMUTATION_N = 9: .* give an integer seed"
    ):
        permutation_pvalue(range(n), range(n))
    with pytest.raises(ValueError, match=r"permutations=0: draw at least one random permutation"):
        permutation_pvalue(range(n), range(n), seed=0, permutations=0)


def test_monte_carlo_pvalues():
    n = MAX_EXACT_PERMUTATION_N + 1
    # perfectly ordered: a random permutation is the identity with probability 1/10!, so no drawn
    # one ties it and p = (1 + 0)/(1 + M)
    assert permutation_pvalue(range(n), range(n), seed=0, permutations=2000) == pytest.approx(1 / 2001)
    # ρ = 0 exactly (11 pairs, Σd² = 220 = (n³ − n)/6): by the null's symmetry P(ρ ≥ 0) is
    # (1 + P(ρ = 0))/2 = 0.5051 (P(ρ = 0) ≈ 0.0102 from 200 000 random permutations); the Monte
    # Carlo error with 20 000 permutations is 0.0035
    x, y = list(range(11)), [10, 0, 3, 4, 9, 6, 5, 1, 7, 2, 8]
    assert S.spearman(x, y) == pytest.approx(0.0, abs=1e-12)
    p = permutation_pvalue(x, y, seed=1)
    assert p == pytest.approx(0.5051, abs=0.0125)
    assert permutation_pvalue(x, y, seed=1) == p
    assert permutation_pvalue(x, y, seed=2) != p


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(statistic="kendall"), r"statistic must be one of spearman, pearson, got 'kendall'"),
        (
            dict(alternative="two_sided"),
            r"alternative must be one of greater, less, two-sided, got 'two_sided'",
        ),
    ],
)
def test_bad_permutation_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        permutation_pvalue([1, 2, 3], [1, 2, 3], **kwargs)


@pytest.mark.parametrize("x, y", [([1, 2, 3], [1, 2]), ([[1, 2, 3]], [[1, 2, 3]])])
def test_permutation_pvalue_refuses_mismatched_or_not_1d_inputs(x, y):
    with pytest.raises(ValueError, match=r"expected two 1-d sequences of one length"):
        permutation_pvalue(x, y)


# ------------------------------------------------------------------------------------------
# outcome: at and around each comparison's bound


@pytest.mark.parametrize(
    "comparison, low, high, expected",
    [(c, lo, hi, e) for c, rows in cases.OUTCOME_CASES.items() for lo, hi, e in rows],
)
def test_outcome_at_and_around_the_bound(comparison, low, high, expected):
    threshold = Threshold(0.8, comparison, "why")
    assert outcome((low, high), threshold) is expected
    interval = Interval(low, high, estimate=(low + high) / 2, level=0.95, resamples=MIN_RESAMPLES)
    assert outcome(interval, threshold) is expected


@pytest.mark.parametrize("comparison", cases.OUTCOME_CASES)
@pytest.mark.parametrize("low, high", [(math.nan, 0.9), (0.9, math.nan), (math.nan, math.nan)])
def test_an_interval_with_a_nan_end_is_inconclusive(comparison, low, high):
    assert outcome((low, high), Threshold(0.8, comparison, "why")) is Outcome.INCONCLUSIVE


def test_an_inverted_interval_is_refused():
    with pytest.raises(ValueError, match=r"interval \(0.9, 0.1\): low is above high"):
        outcome((0.9, 0.1), Threshold(0.5, ">=", "why"))
    with pytest.raises(ValueError, match=r"Interval: low 0.9 is above high 0.1"):
        Interval(0.9, 0.1, estimate=0.5, level=0.95, resamples=MIN_RESAMPLES)


_VALUES = st.floats(allow_nan=False, min_value=-1e3, max_value=1e3) | st.sampled_from(
    [0.8, 0.7999999999999999, 0.8000000000000002, -math.inf, math.inf]
)
_THRESHOLDS = st.builds(
    Threshold, st.sampled_from([0.8, 0.0, -1.0]), st.sampled_from([">=", ">", "<=", "<"]), st.just("why")
)


@given(st.lists(_VALUES, min_size=3, max_size=3).map(sorted), _THRESHOLDS)
def test_holds_and_fails_speak_for_every_value_of_the_interval(values, threshold):
    low, x, high = values
    got = outcome((low, high), threshold)
    if got is Outcome.HOLDS:
        assert threshold.check(x)
    elif got is Outcome.FAILS:
        assert not threshold.check(x)
    else:  # inconclusive: one end meets the bound and the other does not
        assert threshold.check(low) != threshold.check(high)


@given(_VALUES, _THRESHOLDS)
def test_a_degenerate_interval_gets_the_point_verdict(x, threshold):
    assert outcome((x, x), threshold) is (Outcome.HOLDS if threshold.check(x) else Outcome.FAILS)


@given(st.lists(_VALUES, min_size=4, max_size=4).map(sorted), _THRESHOLDS)
def test_widening_an_interval_never_makes_it_decisive(values, threshold):
    outer_low, low, high, outer_high = values
    if outcome((low, high), threshold) is Outcome.INCONCLUSIVE:
        assert outcome((outer_low, outer_high), threshold) is Outcome.INCONCLUSIVE


def test_outcomes_are_their_names():
    assert [o.value for o in Outcome] == ["holds", "fails", "inconclusive"]
    assert Outcome.HOLDS == "holds" and Outcome("inconclusive") is Outcome.INCONCLUSIVE


@pytest.mark.parametrize("outcomes, expected", cases.ALL_OF_CASES)
def test_all_of(outcomes, expected):
    assert all_of(outcomes) is expected
    assert all_of(iter(outcomes)) is expected  # any iterable, read once


def test_all_of_nothing_is_refused():
    with pytest.raises(ValueError, match=r"all_of needs at least one outcome"):
        all_of([])
    with pytest.raises(ValueError):
        all_of(["maybe"])
