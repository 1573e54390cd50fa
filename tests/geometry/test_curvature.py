"""CAML principal curvatures, MAPC and the curvature invariants: exactness, invariance, accuracy,
bad input."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from crlm_bench.geometry import (
    Invariants,
    UnderdeterminedFitWarning,
    curvature,
    curvature_invariants,
    knn,
    manifolds,
    mapc,
    n_coefficients,
    principal_curvatures,
)
from tests import tolerances as tol
from tests.geometry import curvature_cases as cases

F64 = torch.float64
FIELDS = ("sff_norm", "mean_curvature", "scalar_curvature")


# ------------------------------------------------------------------------------------------
# helpers


def knn_neighbourhoods(points: torch.Tensor, k: int, m: int | None = None):
    """(centres, neighbours) for the first ``m`` points, neighbours from the whole sample."""
    m = points.shape[0] if m is None else m
    d2 = torch.cdist(points[:m], points)
    d2[torch.arange(m), torch.arange(m)] = float("inf")
    idx = d2.topk(k, largest=False).indices
    return points[:m], points[idx]


def k_for(dim: int) -> int:
    return 3 * n_coefficients(dim)


def rel_err(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def quadric_patch(seed: int, dim: int, codim: int, ambient: int, n: int, k: int, noise: float = 0.0):
    """n base points on a random quadric z_α = ½xᵀA_αx + small cubic term, each with k neighbours,
    zero-padded into R^ambient (construction coordinates, no rotation)."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(codim, dim, dim, generator=g, dtype=F64)
    a = (a + a.mT) / 2
    c = torch.randn(codim, dim, generator=g, dtype=F64)

    def lift(x):
        z = 0.5 * torch.einsum("...i,aij,...j->...a", x, a, x) + 0.1 * (x @ c.T) ** 3
        out = torch.zeros(*x.shape[:-1], ambient, dtype=F64)
        out[..., :dim] = x
        out[..., dim : dim + codim] = z
        return out

    base = 0.3 * torch.rand(n, dim, generator=g, dtype=F64)
    offs = 0.2 * (torch.rand(n, k, dim, generator=g, dtype=F64) - 0.5)
    pts, nbs = lift(base), lift(base[:, None, :] + offs)
    if noise:
        nbs = nbs + noise * torch.randn(nbs.shape, generator=g, dtype=F64)
    return pts, nbs


def assert_invariants_close(a: Invariants, b: Invariants, rtol: float, scale_power=(1, 1, 2), scale=1.0):
    for field, p in zip(FIELDS, scale_power):
        x, y = getattr(a, field), getattr(b, field) * scale**p
        ref = max(float(y.abs().max()), 1e-12)
        assert float((x - y).abs().max()) <= rtol * ref, f"{field}: {x} != {y}"


# ------------------------------------------------------------------------------------------
# exactness: two routes to the same numbers


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dim,codim,ambient,k", [(2, 3, 12, 20), (3, 2, 40, 30), (4, 4, 64, 60)])
def test_gram_agrees_with_svd_float64(seed, dim, codim, ambient, k):
    pts, nbs = quadric_patch(seed, dim, codim, ambient, n=6, k=k, noise=1e-3)
    rot = manifolds.haar_orthogonal(ambient, torch.Generator().manual_seed(seed))
    pts, nbs = pts @ rot.T, nbs @ rot.T
    gram = principal_curvatures(pts, nbs, dim, method="gram")
    svd = principal_curvatures(pts, nbs, dim, method="svd")
    assert gram.shape == svd.shape == (6, min(k, ambient) - dim, dim)
    assert float((gram - svd).norm() / svd.norm()) <= tol.GRAM_VS_SVD_RTOL


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("dim,codim,ambient,k", [(2, 3, 300, 40), (3, 2, 500, 80), (5, 1, 400, 150)])
def test_invariants_equal_those_of_the_hessians(seed, dim, codim, ambient, k):
    pts, nbs = quadric_patch(seed, dim, codim, ambient, n=5, k=k, noise=1e-4)
    _, hess = principal_curvatures(pts, nbs, dim, method="svd", return_hessians=True)
    assert_invariants_close(
        curvature_invariants(pts, nbs, dim), Invariants.from_hessians(hess), tol.INVARIANTS_VS_HESSIANS_RTOL
    )


def test_invariants_fall_back_when_subspace_iteration_does_not_converge():
    g = torch.Generator().manual_seed(3)
    nbs = torch.randn(3, 120, 400, generator=g, dtype=F64)  # no spectral gap at all
    pts = torch.zeros(3, 400, dtype=F64)
    _, hess = principal_curvatures(pts, nbs, 4, method="svd", return_hessians=True)
    got = curvature_invariants(pts, nbs, 4, max_iter=1)
    assert_invariants_close(got, Invariants.from_hessians(hess), tol.INVARIANTS_VS_HESSIANS_RTOL)


@pytest.mark.parametrize("sketch_steps,converges", [(curvature.SKETCH_STEPS, True), (0, False)])
def test_column_sketch_saves_an_iteration(monkeypatch, sketch_steps, converges):
    """The warm start is what lets the benchmark's spectrum converge in 3 iterations (random: 4)."""
    n, k, big_d, dim, spread, noise = cases.WARM_START_CASE
    case = manifolds.sphere_patches(
        n, k, dim, 1.0, ambient=big_d, spread=spread, noise=noise, seed=0, dtype=torch.float32
    )
    monkeypatch.setattr(curvature, "SKETCH_STEPS", sketch_steps)
    delta = case.neighbours - case.points[:, None, :]
    _, ok = curvature._tangent_coordinates(delta, dim, 1e-5, cases.WARM_START_ITERATIONS)
    assert bool(ok.all()) is converges


@pytest.mark.parametrize("method", ["svd", "gram", "invariants"])
def test_chunks_share_one_displacement_buffer_without_mixing_points(monkeypatch, method):
    """One point per chunk (the buffer rewritten four times) gives the one-chunk result."""
    pts, nbs = quadric_patch(4, 3, 2, 200, n=5, k=60, noise=1e-4)

    def fit():
        if method == "invariants":
            inv = curvature_invariants(pts, nbs, 3)
            return torch.stack([getattr(inv, f) for f in FIELDS])
        return principal_curvatures(pts, nbs, 3, method=method)

    whole = fit()
    monkeypatch.setattr(curvature, "CHUNK_BYTES", 1)
    assert curvature._chunk_points(5, 60, 200, 8, torch.device("cpu")) == 1
    torch.testing.assert_close(fit(), whole, rtol=tol.INVARIANTS_VS_HESSIANS_RTOL, atol=0.0)


def test_float32_within_tolerance_of_float64():
    n, k, big_d, dim, spread, noise = cases.PRECISION_CASE
    case = manifolds.sphere_patches(n, k, dim, 1.0, ambient=big_d, spread=spread, noise=noise, seed=0)
    pts, nbs = case.points, case.neighbours
    for method in ("gram", "svd"):
        k64 = principal_curvatures(pts, nbs, dim, method=method)
        k32 = principal_curvatures(pts.float(), nbs.float(), dim, method=method)
        assert k32.dtype == torch.float32
        assert rel_err(mapc(k32), mapc(k64)) <= tol.FLOAT32_VS_FLOAT64_RTOL, method
    i64 = curvature_invariants(pts, nbs, dim)
    i32 = curvature_invariants(pts.float(), nbs.float(), dim)
    for f in FIELDS:
        assert getattr(i32, f).dtype == torch.float32
        assert (
            rel_err(float(getattr(i32, f).median()), float(getattr(i64, f).median()))
            <= tol.FLOAT32_VS_FLOAT64_RTOL
        )


def test_float32_gram_loses_directions_below_its_resolution():
    """The documented limit: float32 Gram zeroes directions under ≈1.4e-3 σ_max, SVD keeps them."""
    n, k, big_d, dim, spread, _ = cases.PRECISION_CASE
    case = manifolds.sphere_patches(n, k, dim, 1.0, ambient=big_d, spread=spread, noise=1e-5, seed=0)
    pts, nbs = case.points.float(), case.neighbours.float()
    gram = principal_curvatures(pts, nbs, dim, method="gram")
    svd = principal_curvatures(pts, nbs, dim, method="svd")
    assert float((gram[:, 1:] == 0).float().mean()) > 0.9  # noise directions: zeroed by gram
    assert float((svd[:, 1:] == 0).float().mean()) < 0.1  # but resolved by svd


# ------------------------------------------------------------------------------------------
# invariance (hypothesis)

geometry_params = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**16),
        "dim": st.integers(1, 3),
        "pad": st.integers(1, 6),
        "extra_k": st.integers(0, 10),
        "method": st.sampled_from(["gram", "svd"]),
    }
)


def _codim1_patch(p):
    dim = p["dim"]
    k = n_coefficients(dim) + 3 + p["extra_k"]
    ambient = dim + 1 + p["pad"]
    return quadric_patch(p["seed"], dim, 1, ambient, n=4, k=k), dim, ambient


@given(geometry_params)
def test_invariant_under_rotation_and_translation(p):
    (pts, nbs), dim, ambient = _codim1_patch(p)
    g = torch.Generator().manual_seed(p["seed"] + 1)
    rot = manifolds.haar_orthogonal(ambient, g)
    shift = 10 * torch.randn(ambient, generator=g, dtype=F64)
    moved_pts, moved_nbs = pts @ rot.T + shift, nbs @ rot.T + shift
    before = principal_curvatures(pts, nbs, dim, method=p["method"])
    after = principal_curvatures(moved_pts, moved_nbs, dim, method=p["method"])
    # the codimension-1 spectrum is the first normal direction; the others are ~0
    torch.testing.assert_close(after[:, 0], before[:, 0], rtol=tol.INVARIANCE_RTOL, atol=tol.INVARIANCE_RTOL)
    assert_invariants_close(
        curvature_invariants(moved_pts, moved_nbs, dim),
        curvature_invariants(pts, nbs, dim),
        tol.INVARIANCE_RTOL,
    )


@given(geometry_params)
def test_invariant_under_permutation_of_points_and_neighbours(p):
    (pts, nbs), dim, _ = _codim1_patch(p)
    g = torch.Generator().manual_seed(p["seed"] + 2)
    perm = torch.randperm(pts.shape[0], generator=g)
    kperm = torch.randperm(nbs.shape[1], generator=g)
    before = principal_curvatures(pts, nbs, dim, method=p["method"])
    after = principal_curvatures(pts[perm], nbs[perm][:, kperm], dim, method=p["method"])
    torch.testing.assert_close(
        after[:, 0], before[perm, 0], rtol=tol.INVARIANCE_RTOL, atol=tol.INVARIANCE_RTOL
    )
    inv_a = curvature_invariants(pts[perm], nbs[perm][:, kperm], dim)
    inv_b = curvature_invariants(pts, nbs, dim)
    assert_invariants_close(
        inv_a, Invariants(*(getattr(inv_b, f)[perm] for f in FIELDS)), tol.INVARIANCE_RTOL
    )


@given(geometry_params, st.integers(1, 20))
def test_invariant_under_zero_padding(p, extra):
    (pts, nbs), dim, _ = _codim1_patch(p)
    padded_pts = torch.nn.functional.pad(pts, (0, extra))
    padded_nbs = torch.nn.functional.pad(nbs, (0, extra))
    before = principal_curvatures(pts, nbs, dim, method=p["method"])
    after = principal_curvatures(padded_pts, padded_nbs, dim, method=p["method"])
    torch.testing.assert_close(after[:, 0], before[:, 0], rtol=tol.INVARIANCE_RTOL, atol=tol.INVARIANCE_RTOL)
    assert_invariants_close(
        curvature_invariants(padded_pts, padded_nbs, dim),
        curvature_invariants(pts, nbs, dim),
        tol.INVARIANCE_RTOL,
    )


@given(geometry_params, st.floats(0.01, 100.0))
def test_curvature_scales_inversely_with_the_points(p, s):
    (pts, nbs), dim, _ = _codim1_patch(p)
    before = principal_curvatures(pts, nbs, dim, method=p["method"])
    after = principal_curvatures(s * pts, s * nbs, dim, method=p["method"])
    torch.testing.assert_close(
        after[:, 0],
        before[:, 0] / s,
        rtol=tol.INVARIANCE_RTOL,
        atol=tol.INVARIANCE_RTOL * float(before.abs().max()) / s,
    )
    assert_invariants_close(
        curvature_invariants(s * pts, s * nbs, dim),
        curvature_invariants(pts, nbs, dim),
        tol.INVARIANCE_RTOL,
        scale_power=(1, 1, 2),
        scale=1 / s,
    )


# ------------------------------------------------------------------------------------------
# accuracy against ground truth


@pytest.mark.parametrize("dim,radius,n,ambient,band", cases.SPHERE_CASES)
def test_sphere_invariants_accuracy(dim, radius, n, ambient, band):
    s = manifolds.sphere(n, dim, radius, ambient=ambient, seed=dim)
    pts, nbs = knn_neighbourhoods(s.points, k_for(dim), 200)
    inv = curvature_invariants(pts, nbs, dim)
    truth = {
        "sff_norm": math.sqrt(dim) / radius,
        "mean_curvature": 1 / radius,
        "scalar_curvature": dim * (dim - 1) / radius**2,
    }
    for field, rtol in tol.SPHERE_RTOL[band].items():
        got = float(getattr(inv, field).median())
        if truth[field] == 0:
            assert abs(got) <= rtol / radius**2, f"{field}: {got} should be 0"
        else:
            assert rel_err(got, truth[field]) <= rtol, f"{field}: {got} vs true {truth[field]}"
        torch.testing.assert_close(getattr(s.invariants, field).median().item(), truth[field])


@pytest.mark.parametrize("dim,radius,n,ambient,band", cases.SPHERE_CASES[:4])
def test_sphere_mapc_is_diluted_by_normal_count(dim, radius, n, ambient, band):
    s = manifolds.sphere(n, dim, radius, ambient=ambient, seed=dim)
    k = k_for(dim)
    pts, nbs = knn_neighbourhoods(s.points, k, 200)
    kappa = principal_curvatures(pts, nbs, dim)
    m = min(k, ambient) - dim
    assert kappa.shape[1] == m
    assert rel_err(mapc(kappa), 1 / (radius * m)) <= tol.SPHERE_MAPC_RTOL


@pytest.mark.parametrize("method", ["gram", "svd"])
@pytest.mark.parametrize("dim,n,ambient", cases.FLAT_CASES)
def test_flat_patches_have_zero_curvature(method, dim, n, ambient):
    s = manifolds.flat(n, dim, ambient=ambient, seed=dim)
    pts, nbs = knn_neighbourhoods(s.points, k_for(dim), 100)
    assert float(principal_curvatures(pts, nbs, dim, method=method).abs().max()) < tol.FLAT_ATOL
    inv = curvature_invariants(pts, nbs, dim)
    assert float(inv.sff_norm.max()) < tol.FLAT_ATOL


@pytest.mark.parametrize("name,a,ambient", cases.PARABOLOID_CASES, ids=[c[0] for c in cases.PARABOLOID_CASES])
def test_paraboloid_apex_curvatures_equal_eig_a(name, a, ambient):
    a = torch.tensor(a, dtype=F64)
    dim = a.shape[-1]
    s = manifolds.paraboloid(20_000, a, ambient=ambient, extent=0.5, seed=1)
    pts, nbs = knn_neighbourhoods(s.points, k_for(dim), 1)  # point 0 is the apex
    kappa = principal_curvatures(pts, nbs, dim)[0, 0]
    truth = torch.linalg.eigvalsh(a)
    scale = float(truth.abs().max())
    # the normal's orientation is arbitrary: compare with the spectrum or its mirror
    err = min(float((kappa - truth).abs().max()), float((kappa + truth.flip(0)).abs().max()))
    assert err <= tol.PARABOLOID_RTOL * scale, f"{kappa} vs eig(A) {truth}"


def test_codimension_two_paraboloid_invariants_at_apex():
    a = torch.tensor([[[1.0, 0.0], [0.0, 0.5]], [[0.0, 0.4], [0.4, -0.6]]], dtype=F64)
    s = manifolds.paraboloid(30_000, a, ambient=7, extent=0.5, seed=2)
    pts, nbs = knn_neighbourhoods(s.points, k_for(2), 1)
    inv = curvature_invariants(pts, nbs, 2)
    for f in FIELDS:
        truth = float(getattr(s.invariants, f)[0])
        assert abs(float(getattr(inv, f)[0]) - truth) <= tol.PARABOLOID_RTOL * max(abs(truth), 1.0), f


@pytest.mark.parametrize("a,b,n,ambient", cases.TORUS_CASES)
def test_clifford_torus_invariants(a, b, n, ambient):
    s = manifolds.clifford_torus(n, a, b, ambient=ambient, seed=0)
    pts, nbs = knn_neighbourhoods(s.points, k_for(2), 200)
    inv = curvature_invariants(pts, nbs, 2)
    true_sff = math.sqrt(1 / a**2 + 1 / b**2)
    assert rel_err(float(inv.sff_norm.median()), true_sff) <= tol.SPHERE_RTOL["low"]["sff_norm"]
    assert (
        rel_err(float(inv.mean_curvature.median()), true_sff / 2) <= tol.SPHERE_RTOL["low"]["mean_curvature"]
    )
    assert (
        abs(float(inv.scalar_curvature.median())) <= tol.SPHERE_RTOL["low"]["scalar_curvature"] * true_sff**2
    )


@pytest.mark.parametrize("k_dim,j_dim,radius,n,ambient", cases.CYLINDER_CASES)
def test_cylinder_invariants(k_dim, j_dim, radius, n, ambient):
    s = manifolds.cylinder(n, k_dim, j_dim, radius, ambient=ambient, extent=1.0, seed=0)
    dim = k_dim + j_dim
    pts, nbs = knn_neighbourhoods(s.points, k_for(dim), 200)
    inv = curvature_invariants(pts, nbs, dim)
    assert (
        rel_err(float(inv.sff_norm.median()), math.sqrt(k_dim) / radius) <= tol.SPHERE_RTOL["low"]["sff_norm"]
    )
    assert (
        rel_err(float(inv.mean_curvature.median()), k_dim / (radius * dim))
        <= tol.SPHERE_RTOL["low"]["mean_curvature"]
    )


def test_mapc_is_mean_absolute_value():
    kappa = torch.tensor([[[1.0, -2.0]], [[0.0, 3.0]]])
    assert mapc(kappa) == pytest.approx(1.5)


# ------------------------------------------------------------------------------------------
# device and dtype follow the input


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_follows_input(dtype):
    pts, nbs = quadric_patch(0, 2, 1, 5, n=3, k=12)
    pts, nbs = pts.to(dtype), nbs.to(dtype)
    assert principal_curvatures(pts, nbs, 2).dtype == dtype
    assert curvature_invariants(pts, nbs, 2).sff_norm.dtype == dtype


# ------------------------------------------------------------------------------------------
# bad input: a clear error and no result


def test_nan_rows_are_counted_in_the_error():
    pts, nbs = quadric_patch(0, 2, 1, 5, n=4, k=12)
    nbs[1, 3, 0] = float("nan")
    nbs[2, 0, 1] = float("inf")
    with pytest.raises(ValueError, match=r"NaN or Inf in 2 of 4 rows"):
        principal_curvatures(pts, nbs, 2)
    pts[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"points contains NaN or Inf in 1 of 4 rows"):
        curvature_invariants(pts, nbs, 2)


def test_neighbour_shape_must_match_points():
    pts, nbs = quadric_patch(0, 2, 1, 5, n=4, k=12)
    with pytest.raises(ValueError, match=r"neighbours must have shape \(n, K, D\) = \(4, K, 5\)"):
        principal_curvatures(pts, nbs[:3], 2)
    with pytest.raises(ValueError, match=r"must have shape"):
        principal_curvatures(pts, nbs[..., :4], 2)


@pytest.mark.parametrize("dim,k,ambient", [(5, 5, 30), (4, 20, 4), (0, 10, 5)])
def test_dim_must_leave_a_normal_direction(dim, k, ambient):
    pts = torch.zeros(2, ambient, dtype=F64)
    nbs = torch.randn(2, k, ambient, dtype=F64)
    with pytest.raises(ValueError, match=r"dim"):
        principal_curvatures(pts, nbs, dim)


def test_underdetermined_fit_is_refused_unless_allowed():
    pts, nbs = quadric_patch(0, 3, 1, 20, n=2, k=6)  # K = 2d < p = 9
    with pytest.raises(ValueError, match=r"under-determined.*allow_underdetermined=True"):
        principal_curvatures(pts, nbs, 3)
    with pytest.raises(ValueError, match=r"under-determined"):
        curvature_invariants(pts, nbs, 3)
    with pytest.warns(UnderdeterminedFitWarning):
        kappa = principal_curvatures(pts, nbs, 3, allow_underdetermined=True)
    assert kappa.shape == (2, 3, 3) and bool(torch.isfinite(kappa).all())
    with pytest.warns(UnderdeterminedFitWarning):
        _, hess = principal_curvatures(
            pts, nbs, 3, method="svd", allow_underdetermined=True, return_hessians=True
        )
    with pytest.warns(UnderdeterminedFitWarning):
        inv = curvature_invariants(pts, nbs, 3, allow_underdetermined=True)
    assert_invariants_close(inv, Invariants.from_hessians(hess), tol.INVARIANTS_VS_HESSIANS_RTOL)


def test_unknown_method_and_mismatched_dtypes():
    pts, nbs = quadric_patch(0, 2, 1, 5, n=2, k=12)
    with pytest.raises(ValueError, match=r"method must be 'gram' or 'svd'"):
        principal_curvatures(pts, nbs, 2, method="qr")
    with pytest.raises(ValueError, match=r"share dtype"):
        principal_curvatures(pts.float(), nbs, 2)


def test_mapc_rejects_empty_and_nonfinite():
    with pytest.raises(ValueError, match="empty"):
        mapc(torch.empty(0, 3, 2))
    with pytest.raises(ValueError, match="NaN or Inf"):
        mapc(torch.tensor([[[float("nan"), 1.0]]]))


def test_knn_based_neighbourhoods_round_trip():
    """knn gives the neighbourhoods the accuracy tests build by brute force."""
    s = manifolds.sphere(500, 2, 1.0, ambient=4, seed=0)
    idx = knn(s.points, 15)
    _, nbs = knn_neighbourhoods(s.points, 15)
    torch.testing.assert_close(s.points[idx], nbs)
