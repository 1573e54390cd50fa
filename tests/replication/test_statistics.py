"""The claims' statistics (crlm_bench/replication/claims/statistics.py) pinned at their edges: the
documented NaN rules (fewer than three pairs, a constant side, 0/0), the pairs and values dropped,
slopes over two points, shapes that must raise, and the curvature gap's probes. Written to kill the
mutants of `bash scripts/mutation.sh` (mutation/README.md); cases beside each test."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from crlm_bench.replication.claims import statistics as S

# ------------------------------------------------------------------------------------------
# pairs: which are dropped, which shapes raise

#: (x, y) of mismatched shapes or more than one dimension: every paired statistic must raise.
BAD_SHAPES = [
    ([1.0, 2.0, 3.0], [1.0, 2.0]),
    ([1.0, 2.0], [1.0, 2.0, 3.0]),
    ([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0]]),  # one shape, but 2-d
    ([[1.0, 2.0, 3.0]], [1.0, 2.0, 3.0]),
    (1.0, 2.0),  # scalars
]


@pytest.mark.parametrize("statistic", [S.spearman, S.pearson, S.slope])
@pytest.mark.parametrize("x, y", BAD_SHAPES)
def test_paired_statistics_raise_on_mismatched_or_not_1d_inputs(statistic, x, y):
    with pytest.raises(ValueError, match=r"expected two 1-d sequences of one length, got shapes \("):
        statistic(x, y)


def test_a_pair_is_dropped_when_either_side_is_not_finite_or_missing():
    x = [1.0, 2.0, np.nan, 3.0, 4.0, None, 5.0, 6.0]
    y = [1.0, 2.0, 0.0, 3.0, np.inf, 0.0, 2.0, None]
    # kept: (1, 1), (2, 2), (3, 3), (5, 2); None counts as missing, like NaN
    assert S.slope(x, y) == pytest.approx(np.polyfit([1, 2, 3, 5], [1, 2, 3, 2], 1)[0])
    assert S.spearman(x, y) == pytest.approx(0.6324555320336759)
    assert S.pearson(x, y) == pytest.approx(np.corrcoef([1, 2, 3, 5], [1, 2, 3, 2])[0, 1])


# ------------------------------------------------------------------------------------------
# correlations: NaN with fewer than three pairs or a constant side


def test_correlations_are_defined_from_exactly_three_pairs():
    assert S.spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert S.pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert math.isnan(S.spearman([1, 2], [1, 3]))
    assert math.isnan(S.pearson([1, 2, np.nan], [1, 3, 2]))  # three given, two finite pairs


@pytest.mark.parametrize("correlation", [S.spearman, S.pearson])
def test_a_constant_side_after_dropping_pairs_is_nan(correlation):
    assert math.isnan(correlation([2, 1, 1, 1], [np.nan, 5, 3, 4]))  # x is 1, 1, 1 once kept
    assert math.isnan(correlation([1, 2, 3, 4], [7, 7, 7, 7]))
    assert math.isnan(correlation([5, 5, 5], [1, 2, 3]))
    assert not math.isnan(correlation([1, 1, 2], [1, 2, 3]))  # not constant: only equal at the start


def test_spearman_ranks_and_pearson_does_not():
    x, y = [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 100.0]
    assert S.spearman(x, y) == pytest.approx(1.0)
    assert S.pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert S.pearson(x, y) < 0.9


def test_correlations_do_not_warn(recwarn):
    S.spearman([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0 + 1e-300, 2.0])
    S.pearson([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0 + 1e-300, 2.0])
    assert not recwarn.list


# ------------------------------------------------------------------------------------------
# slope: defined from two points with x not constant


def test_slope_over_two_points():
    assert S.slope([1.0, 3.0], [2.0, 8.0]) == pytest.approx(3.0)
    assert S.slope([3.0, 1.0], [8.0, 2.0]) == pytest.approx(3.0)
    assert S.slope([1.0, np.nan, 3.0], [2.0, 5.0, 8.0]) == pytest.approx(3.0)  # two finite pairs


def test_slope_is_nan_with_one_point_or_a_constant_x():
    assert math.isnan(S.slope([1.0], [2.0]))
    assert math.isnan(S.slope([], []))
    assert math.isnan(S.slope([1.0, np.nan], [2.0, 3.0]))
    assert math.isnan(S.slope([2.0, 2.0], [1.0, 5.0]))
    assert math.isnan(S.slope([2.0, 2.0, 2.0], [1.0, 5.0, 3.0]))
    assert S.slope([2.0, 2.0, 3.0], [1.0, 5.0, 3.0]) == pytest.approx(0.0)  # y constant: slope 0


def test_slope_is_least_squares_and_signed():
    x, y = [0.0, 1.0, 2.0, 3.0], [1.0, 0.0, -3.0, -4.0]
    assert S.slope(x, y) == pytest.approx(np.polyfit(x, y, 1)[0])
    assert S.slope(x, y) == pytest.approx(-1.8)


# ------------------------------------------------------------------------------------------
# ratio and span: 0/0 is NaN, x/0 is ±inf, span needs positive values

#: (numerator, denominator, expected); None stands for NaN.
RATIOS = [
    (3.0, 4.0, 0.75),
    (-3.0, 4.0, -0.75),
    (3.0, -2.0, -1.5),
    (3, 4, 0.75),  # integers divide as floats
    (0.0, 5.0, 0.0),
    (0.0, 0.0, None),
    (2.0, 0.0, math.inf),
    (-2.0, 0.0, -math.inf),
    (1e-300, 0.0, math.inf),
]


@pytest.mark.parametrize("numerator, denominator, expected", RATIOS)
def test_ratio(numerator, denominator, expected):
    value = S.ratio(numerator, denominator)
    assert type(value) is float
    if expected is None:
        assert math.isnan(value)
    else:
        assert value == expected


#: (values, expected); None stands for NaN.
SPANS = [
    ([], None),
    ([3.0], 1.0),
    ([0.5, 2.0, 1.0], 4.0),
    ([2.0, 0.5], 4.0),
    ([0.5, 0.8], 1.6),  # below 1: a span is max/min, whatever the scale
    ([0.0, 1.0], math.inf),
    ([-1.0, 1.0], math.inf),
    ([1e-300, 1.0], 1e300),
]


@pytest.mark.parametrize("values, expected", SPANS)
def test_span(values, expected):
    value = S.span(values)
    if expected is None:
        assert math.isnan(value)
    else:
        assert value == pytest.approx(expected)


# ------------------------------------------------------------------------------------------
# median and mean: of the finite values; NaN if there are none


@pytest.mark.parametrize(
    "values, median, mean",
    [
        ([1.0, 5.0, 3.0], 3.0, 3.0),
        ([1.0, np.nan, 3.0, np.inf, -np.inf], 2.0, 2.0),
        ([4.0, 1.0, 2.0, 10.0], 3.0, 4.25),
        ([7], 7.0, 7.0),
        ([2.0, None, 4.0], 3.0, 3.0),  # None counts as missing, like NaN
        ([], None, None),
        ([np.nan, np.inf], None, None),
    ],
)
def test_median_and_mean_of_the_finite_values(values, median, mean):
    for fn, expected in ((S.median, median), (S.mean, mean)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # NaN for no values, quietly: not numpy's "empty slice"
            got = fn(iter(values))  # any iterable, read once
        assert type(got) is float
        assert math.isnan(got) if expected is None else got == pytest.approx(expected)


# ------------------------------------------------------------------------------------------
# normalise and the curvature gap: the last probe against the penultimate one

#: latent values whose neighbouring probes all differ, so that a gap taken one probe off is caught:
#: mean 4, normalised (0.25, 1.25, 0.5, 1, 2), gap 2 − 1 = 1 (antepenultimate: 1.5; first: 1.75).
DISTINCT = [1.0, 5.0, 2.0, 4.0, 8.0]


def test_normalise_divides_by_the_mean_of_all_values():
    assert S.normalise(DISTINCT) == pytest.approx((0.25, 1.25, 0.5, 1.0, 2.0))
    assert S.normalise([2.0, 6.0]) == pytest.approx((0.5, 1.5))
    assert isinstance(S.normalise([1.0, 2.0]), tuple)
    zeros = S.normalise([0.0, 0.0])  # 0/0
    assert all(math.isnan(z) for z in zeros)


def test_curvature_gap_is_last_minus_penultimate():
    assert S.curvature_gap(DISTINCT) == pytest.approx(1.0)
    assert S.curvature_gap(list(reversed(DISTINCT))) == pytest.approx(0.25 - 1.25)  # negative
    assert S.curvature_gap([3.0, 1.0]) == pytest.approx(0.5 - 1.5)  # two values: both probes


def test_curvature_gap_is_scale_free():
    assert S.curvature_gap([10 * v for v in DISTINCT]) == pytest.approx(S.curvature_gap(DISTINCT))
