"""TwoNN (Ansuini variant) and the PCA linear dimension."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from crlm_bench.geometry import DuplicatePointsWarning, knn, pca_dimension, twonn
from crlm_bench.geometry.manifolds import haar_orthogonal
from tests import tolerances as tol
from tests.geometry import intrinsic_dimension_cases as cases
from tests.geometry import scale_cases as scales

N = 5000


def sample(shape: str, d: int, ambient: int, n: int = N, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if shape == "ball":
        x = torch.randn(n, d, generator=g, dtype=torch.float64)
        x = x / x.norm(dim=1, keepdim=True) * torch.rand(n, 1, generator=g, dtype=torch.float64) ** (1 / d)
    else:
        x = torch.randn(n, d + 1, generator=g, dtype=torch.float64)
        x = x / x.norm(dim=1, keepdim=True)
    x = torch.nn.functional.pad(x, (0, ambient - x.shape[1]))
    return x @ haar_orthogonal(ambient, g).T


@pytest.mark.parametrize("shape,d,ambient", cases.TWONN_CASES)
def test_twonn_recovers_the_dimension(shape, d, ambient):
    est = twonn(sample(shape, d, ambient))
    rtol = tol.TWONN_RTOL_LOW if d <= 4 else tol.TWONN_RTOL_HIGH
    assert abs(est - d) <= rtol * d, f"TwoNN {est:.3f} for a {d}-dimensional {shape}"


@pytest.mark.parametrize("shape,d,ambient", [("ball", 3, 10), ("sphere", 6, 40)])
def test_twonn_agrees_with_scikit_dimension(shape, d, ambient):
    skdim = pytest.importorskip("skdim")
    x = sample(shape, d, ambient, n=2000, seed=1)
    theirs = skdim.id.TwoNN(discard_fraction=0.1).fit(x.numpy()).dimension_
    assert twonn(x, fraction=0.9) == pytest.approx(theirs, rel=tol.TWONN_VS_SKDIM_RTOL)


def test_twonn_drops_duplicates_and_warns_above_ten_percent():
    x = sample("ball", 3, 5, n=2000)
    clean = twonn(x)
    # 50 duplicated points: 100 rows with r1 = 0, and the points whose nearest neighbour is one of
    # them see it twice (r1 = r2) and are dropped as ties: about 7 % in all, under the 10 % line
    few = torch.cat([x, x[:50]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DuplicatePointsWarning)
        twonn(few)
    many = torch.cat([x, x[:300]])  # at least 600 of 2300 dropped
    with pytest.warns(DuplicatePointsWarning, match=r"dropped \d{3} of 2300 points"):
        est = twonn(many)
    assert abs(est - clean) <= tol.TWONN_RTOL_LOW * clean


def test_twonn_is_invariant_to_rotation_translation_and_scale():
    x = sample("sphere", 4, 12, n=1500)
    g = torch.Generator().manual_seed(5)
    y = 3.5 * x @ haar_orthogonal(12, g).T + torch.randn(12, generator=g, dtype=torch.float64)
    assert twonn(y) == pytest.approx(twonn(x), rel=1e-9)


@given(st.integers(3, 60), st.integers(1, 5), st.integers(0, 1000))
def test_twonn_finite_and_positive(n, ambient, seed):
    x = torch.randn(n, ambient, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    est = twonn(x)
    assert np.isfinite(est) and est > 0


@pytest.mark.parametrize(
    "bad,match",
    [
        (torch.zeros(2, 3), r"at least 3"),
        (torch.zeros(5), r"shape \(n, D\)"),
        (
            torch.tensor([[0.0, 1.0], [float("nan"), 1.0], [2.0, 0.0], [3.0, float("inf")]]),
            r"NaN or Inf in 2 of 4 rows",
        ),
        (torch.zeros(10, 3), r"at least 3 distinct"),
    ],
)
@pytest.mark.filterwarnings("ignore::crlm_bench.geometry.DuplicatePointsWarning")  # the all-duplicates case
def test_twonn_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        twonn(bad)


def test_twonn_fraction_is_checked():
    with pytest.raises(ValueError, match="fraction"):
        twonn(torch.randn(20, 3), fraction=0.0)


@pytest.mark.parametrize("rank,ambient,n", cases.PCA_CASES)
def test_pca_dimension_of_a_subspace(rank, ambient, n):
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(n, rank, generator=g, dtype=torch.float64) @ torch.randn(
        rank, ambient, generator=g, dtype=torch.float64
    )
    assert 1 <= pca_dimension(x) <= rank
    assert pca_dimension(x, variance=0.999) == rank


def test_pca_dimension_standardises_features():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 4, generator=g, dtype=torch.float64)
    x[:, 0] *= 1000.0  # one huge feature would take 99.9 % of the raw variance
    assert pca_dimension(x, 0.9) == 4  # after standardisation, four equal components
    assert pca_dimension(x, 0.5) == 2


def test_pca_dimension_uses_the_gram_route_for_wide_data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(50, 3, generator=g, dtype=torch.float64) @ torch.randn(
        3, 5000, generator=g, dtype=torch.float64
    )
    assert pca_dimension(x, 0.999) == 3


def test_pca_dimension_bad_input():
    with pytest.raises(ValueError, match="variance"):
        pca_dimension(torch.randn(10, 3), variance=1.0)
    with pytest.raises(ValueError, match="NaN or Inf"):
        pca_dimension(torch.tensor([[float("nan"), 1.0], [0.0, 1.0]]))


# ------------------------------------------------------------------------------------------
# units: finite but extreme values (issue 11)

DTYPES = st.sampled_from([torch.float32, torch.float64])


def cloud(seed: int) -> torch.Tensor:
    """60 points of a 3-ball in R^6, rotated and shifted off the origin (float64)."""
    g = torch.Generator().manual_seed(seed)
    x = sample("ball", 3, 6, n=60, seed=seed)
    return x + torch.randn(6, generator=g, dtype=torch.float64)


def _knn_distances(x: torch.Tensor) -> torch.Tensor:
    return knn(x, 4, return_distances=True)[1]


@given(st.integers(0, 1000), DTYPES, st.data())
def test_power_of_two_scales_change_nothing(seed, dtype, data):
    """x·2^p is exact, so TwoNN, the PCA dimension and the kNN are exactly those of x."""
    p = data.draw(st.integers(-scales.POW2_EXPONENT[dtype], scales.POW2_EXPONENT[dtype]), label="p")
    x = cloud(seed)
    a, b = x.to(dtype), (x * 2.0**p).to(dtype)
    assert twonn(b) == twonn(a)
    assert pca_dimension(b) == pca_dimension(a)
    (ia, da), (ib, db) = knn(a, 4, return_distances=True), knn(b, 4, return_distances=True)
    assert torch.equal(ib, ia)
    assert torch.equal(db, da * 2.0**p)


@given(st.integers(0, 1000), DTYPES, st.data())
def test_decimal_scales_keep_the_estimates(seed, dtype, data):
    """At 10^p the scaled sample rounds differently, so: float64 keeps its estimates to the
    invariance tolerance, and float32 agrees with float64 on the very same numbers."""
    p = data.draw(st.integers(-scales.DECIMAL_EXPONENT[dtype], scales.DECIMAL_EXPONENT[dtype]), label="p")
    x = cloud(seed)
    y = (x * 10.0**p).to(dtype)
    if dtype == torch.float64:
        ref, ref_dist, rtol = x, _knn_distances(x) * 10.0**p, tol.INVARIANCE_RTOL
    else:
        ref, ref_dist, rtol = y.double(), _knn_distances(y.double()), tol.FLOAT32_VS_FLOAT64_RTOL
    assert twonn(y) == pytest.approx(twonn(ref), rel=rtol)
    assert pca_dimension(y) == pca_dimension(ref)
    torch.testing.assert_close(_knn_distances(y).double(), ref_dist, rtol=rtol, atol=0.0)


def test_distances_that_overflow_the_dtype_are_an_error_but_their_ratios_are_not():
    """A float32 cloud reaching ±3e38 is finite, but its distances are not: knn says so instead of
    returning inf, and TwoNN, which needs only their ratios, is unaffected."""
    x = cloud(0)
    x = x - x.mean(0)
    y = (x * (3e38 / float(x.abs().max()))).to(torch.float32)
    with pytest.raises(OverflowError, match=r"knn distances exceed the largest torch.float32.*float64"):
        knn(y, 59, return_distances=True)  # the farthest pairs are about 5e38 apart
    assert torch.equal(knn(y, 3), knn(y.double(), 3))
    assert twonn(y) == pytest.approx(twonn(x), rel=tol.FLOAT32_VS_FLOAT64_RTOL)


# ---------------------------------------------------------------------------------------------
# pins: each estimator's documented rule, computed again with numpy, on inputs where a neighbouring
# rule (another default, another clamp, a centring of the wrong sign) gives another number


def _twonn_by_hand(x: np.ndarray, fraction: float) -> float:
    """TwoNN exactly as its docstring states it (steps 1-4), written with numpy."""
    dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    r = np.sort(dist, axis=1)[:, :2]
    keep = (r[:, 0] > 0) & (r[:, 1] > r[:, 0])
    mu = np.sort(r[keep, 1] / r[keep, 0])
    n = len(mu)
    n_fit = min(int(np.floor(fraction * n)), n - 2)  # the last two are never fitted
    f = np.arange(1, n + 1) / n
    xs, ys = np.log(mu[:n_fit]), -np.log1p(-f[:n_fit])
    return float((xs * ys).sum() / (xs * xs).sum())


@pytest.mark.parametrize(
    "n,fraction",
    [
        (10, None),  # default 0.9: floor(9) > 10 - 2, so the clamp decides
        (10, 1.0),  # the clamp alone
        (40, None),  # default 0.9: floor(36) < 38, so the fraction decides
        (40, 0.45),  # half the default gives another number
        (300, None),
    ],
)
def test_twonn_is_its_documented_rule_with_its_default_fraction_and_clamp(n, fraction):
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, 6, generator=g, dtype=torch.float64) * torch.tensor([5.0, 3.0, 2.0, 1.0, 0.5, 0.1])
    expected = _twonn_by_hand(x.numpy(), 0.9 if fraction is None else fraction)
    got = twonn(x) if fraction is None else twonn(x, fraction=fraction)
    assert got == pytest.approx(expected, rel=1e-12)
    if fraction is None and n == 40:
        assert abs(got - _twonn_by_hand(x.numpy(), 0.45)) > 1e-3 * got  # the default matters here


def _pca_by_hand(x: np.ndarray, variance: float) -> int:
    """The PCA dimension as documented: standardised features (constant ones left at zero), then
    the fewest components whose cumulative explained variance exceeds ``variance``."""
    x = x - x.mean(0)
    std = x.std(0, ddof=1)
    x = x / np.where(std > 0, std, 1.0)
    eig = np.sort(np.linalg.eigvalsh(x.T @ x))[::-1].clip(min=0)
    if eig.sum() == 0:
        return 0
    return int(np.argmax(np.cumsum(eig) / eig.sum() > variance)) + 1


@pytest.mark.parametrize("case", ["plain", "constant feature", "far from the origin", "all constant"])
@pytest.mark.parametrize("variance", [0.5, 0.9])
def test_pca_dimension_of_degenerate_inputs_is_its_documented_rule(case, variance):
    g = torch.Generator().manual_seed(7)
    mix = torch.tensor(
        [[1.0, 0.8, 0.0, 0.0], [0.0, 0.6, 0.3, 0.0], [0.0, 0.0, 1.0, 0.2], [0.0, 0.0, 0.0, 1.0]]
    )
    x = torch.randn(400, 4, generator=g, dtype=torch.float64) @ mix.double()
    if case == "constant feature":
        x = torch.cat([x, torch.full((400, 1), 3.0, dtype=torch.float64)], 1)
    elif case == "far from the origin":
        x = x + 1e6
    elif case == "all constant":
        x = torch.full((400, 4), -2.5, dtype=torch.float64)
    expected = _pca_by_hand(x.numpy(), variance)
    assert pca_dimension(x, variance) == expected
    if case == "all constant":
        assert expected == 0
    else:  # the constant feature and the offset change nothing
        plain = torch.randn(400, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
        assert expected == _pca_by_hand((plain @ mix.double()).numpy(), variance)


# ------------------------------------------------------------------------------------------
# messages, bounds and boundaries (pinned against the mutation run of 2026-12-02)


def _line(n: int, duplicates: int = 0) -> torch.Tensor:
    """n points on a line with growing gaps (every r₁ < r₂), the last one repeated ``duplicates``
    times: those copies and the original are the only points TwoNN drops."""
    x = torch.cumsum(torch.arange(n, dtype=torch.float64), 0)
    return torch.cat([x, x[-1:].repeat(duplicates)])[:, None]


def test_twonn_says_what_it_dropped():
    with pytest.warns(DuplicatePointsWarning) as caught:
        twonn(_line(10, duplicates=1))
    (w,) = caught
    assert str(w.message) == (
        "twonn dropped 2 of 11 points (18%) whose nearest neighbour is a duplicate or ties the "
        "second; the estimate rests on the remaining points"
    )
    # (that it points at the caller, stacklevel=2, cannot be asserted under mutmut, whose
    # trampoline adds a frame)


def test_twonn_warns_only_above_its_share_not_at_it():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DuplicatePointsWarning)
        twonn(_line(19, duplicates=1))  # 2 of 20 dropped: exactly 10 %, no warning


def test_twonn_errors_name_their_cause():
    with pytest.raises(ValueError, match=r"^fraction must be in \(0, 1\], got 1.5$"):
        twonn(_line(20), fraction=1.5)
    with pytest.warns(DuplicatePointsWarning):
        with pytest.raises(ValueError) as raised:
            twonn(torch.zeros(10, 3))
    assert str(raised.value) == (
        "twonn needs at least 3 distinct, untied points; only 0 of 10 remain after dropping "
        "duplicates and ties"
    )


def test_pca_dimension_takes_the_first_component_that_exceeds_the_share_not_reaches_it():
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    assert pca_dimension(x, variance=0.5) == 2  # two equal components: 0.5 is reached, not exceeded
    assert pca_dimension(x, variance=0.49) == 1
    with pytest.raises(ValueError, match=r"variance must be in \(0, 1\), got 0.0"):
        pca_dimension(x, variance=0.0)
