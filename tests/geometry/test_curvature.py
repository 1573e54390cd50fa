"""CAML principal curvatures, MAPC and the curvature invariants: exactness, invariance, accuracy,
bad input.

One file (about 1 100 lines, above the project's ~500): the mutation run (mutation/README.md)
selects its tests by file, and the last section pins curvature.py's messages, boundaries, chunks
and routes mutant by mutant, beside the properties they complete."""

from __future__ import annotations

import math
import re
import warnings

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
from tests.geometry import scale_cases as scales

F64 = torch.float64
FIELDS = ("sff_norm", "mean_curvature", "scalar_curvature")


def _lazy(delta: torch.Tensor):
    """A stored Δ as the Krylov route's displacements (point 0, scale 1: the same entries)."""
    zero = torch.zeros(delta.shape[0], dtype=torch.int64)
    return curvature._Displacements(
        delta.new_zeros(delta.shape[0], delta.shape[-1]), delta, zero, delta.dtype
    )


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


@pytest.mark.parametrize("k,big_d", [(20, 50), (30, 12), (25, 25)])
def test_the_svd_route_is_the_released_svd_in_float32_and_its_r_factor_in_float64(k, big_d):
    """float32 keeps the released arithmetic bit for bit (the authors preset depends on it); in
    float64 with D > K the coordinates come from the SVD of the R factor, bit for bit, and agree
    with the direct SVD's to rounding (columns oriented alike)."""
    delta = torch.randn(3, k, big_d, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    r = min(k, big_d)

    def direct(x):
        return x @ torch.linalg.svd(x.mT, full_matrices=False).U[..., :r]

    assert torch.equal(curvature._coordinates_svd(delta.float(), r), direct(delta.float()))
    got = curvature._coordinates_svd(delta, r)
    if big_d > k:
        _, s, vh = torch.linalg.svd(torch.linalg.qr(delta.mT, mode="r").R)
        assert torch.equal(got, vh.mT[..., :r] * s[..., None, :r])
    else:
        assert torch.equal(got, direct(delta))
    ours, theirs = curvature._orient(got), curvature._orient(direct(delta))
    torch.testing.assert_close(ours, theirs, rtol=0.0, atol=tol.SVD_ROUTES_ATOL * float(delta.abs().max()))


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
    _, ok, _ = curvature._tangent_coordinates(_lazy(delta), dim, 1e-5, cases.WARM_START_ITERATIONS)
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


# ------------------------------------------------------------------------------------------
# the Krylov route and its switch to the Gram route (issue 11)


def _spy_on_krylov(monkeypatch) -> list:
    """Record (converged mask, blocks run) of every call of the Krylov iteration."""
    calls, original = [], curvature._tangent_coordinates

    def spy(*args):
        out = original(*args)
        calls.append((out[1].clone(), out[2]))
        return out

    monkeypatch.setattr(curvature, "_tangent_coordinates", spy)
    return calls


@pytest.mark.parametrize("dim,codim,noise", cases.KRYLOV_CASES)
def test_krylov_route_equals_the_hessians(monkeypatch, dim, codim, noise):
    """Given the budget to converge on small patches, the Krylov route gives the Hessians' invariants."""
    pts, nbs = quadric_patch(dim, dim, codim, 300, n=2, k=150, noise=noise)
    monkeypatch.setattr(curvature, "KRYLOV_BUDGET", 100.0)
    calls = _spy_on_krylov(monkeypatch)
    got = curvature_invariants(pts, nbs, dim, max_iter=12)
    assert calls and all(bool(ok.all()) for ok, _ in calls)  # the route was taken and converged
    _, hess = principal_curvatures(pts, nbs, dim, method="svd", return_hessians=True)
    assert_invariants_close(got, Invariants.from_hessians(hess), tol.INVARIANTS_VS_HESSIANS_RTOL)


def _no_gap_patch(dtype=F64):
    n, k, big_d, true_dim, dim, spread, noise = cases.NO_GAP_CASE
    case = manifolds.sphere_patches(n, k, true_dim, 1.0, ambient=big_d, spread=spread, noise=noise, seed=0)
    return case.points.to(dtype), case.neighbours.to(dtype), dim


@pytest.mark.parametrize("rule", ["cluster", "stall"])
@pytest.mark.parametrize("dtype,tolerance", [(torch.float32, 1e-5), (F64, 1e-11)])
def test_no_gap_patch_leaves_the_krylov_route_at_once(monkeypatch, rule, dtype, tolerance):
    """Without a gap the first block's Ritz values show the cluster across the dim-th; and were
    that missed, the residual stalls from the third block on. Either way the point goes to the Gram
    route there, not after every block the budget allows."""
    if rule == "stall":
        monkeypatch.setattr(curvature, "CLUSTER_RATIO", float("inf"))  # the first rule off
    pts, nbs, dim = _no_gap_patch(dtype)
    _, ok, blocks = curvature._tangent_coordinates(_lazy(nbs - pts[:, None, :]), dim, tolerance, 10)
    assert not bool(ok.any())
    assert blocks == cases.NO_GAP_BLOCKS[rule]


def test_no_gap_patch_agrees_with_the_gram_route(monkeypatch):
    """Where the top-d subspace has no gap it is fixed only by the Gram eigendecomposition, which
    both routes then share: the invariants are those of the Hessians of principal_curvatures."""
    pts, nbs, dim = _no_gap_patch()
    calls = _spy_on_krylov(monkeypatch)
    got = curvature_invariants(pts, nbs, dim)
    assert calls and not any(bool(ok.any()) for ok, _ in calls)  # tried, and handed over
    _, hess = principal_curvatures(pts, nbs, dim, method="gram", return_hessians=True)
    assert_invariants_close(got, Invariants.from_hessians(hess), tol.INVARIANTS_VS_HESSIANS_RTOL)


# ------------------------------------------------------------------------------------------
# units: finite but extreme values, half precision (issue 11)


def _check_scaled(got: torch.Tensor, ref: torch.Tensor, log2_factor: int) -> None:
    """got = ref · 2^log2_factor exactly where that is a normal number of got's dtype; below, got
    has underflowed (|got| under the smallest normal)."""
    info = torch.finfo(got.dtype)
    half = log2_factor // 2
    undone = got.double() * 2.0 ** (-half) * 2.0 ** (half - log2_factor)  # exact: powers of two
    expected = ref.double().abs().log2() + log2_factor  # log2 |ref · 2^factor|
    normal = expected >= math.log2(info.tiny)
    assert torch.equal(undone[normal], ref.double()[normal])
    assert bool((got[~normal].abs() <= info.tiny).all())


@given(geometry_params, st.sampled_from([torch.float32, F64]), st.data())
def test_power_of_two_scales_scale_curvature_exactly(p, dtype, data):
    """Scaling the points by 2^e (exact) scales every curvature by 2^-e exactly, from 1e-30 to 1e30
    in float32 and 1e-301 to 1e301 in float64, or raises OverflowError when one does not fit."""
    e = data.draw(st.integers(-scales.POW2_EXPONENT[dtype], scales.POW2_EXPONENT[dtype]), label="e")
    (pts, nbs), dim, _ = _codim1_patch(p)
    a_pts, a_nbs = pts.to(dtype), nbs.to(dtype)
    b_pts, b_nbs = (pts * 2.0**e).to(dtype), (nbs * 2.0**e).to(dtype)
    method = p["method"]
    _check_scaled(
        principal_curvatures(b_pts, b_nbs, dim, method=method),
        principal_curvatures(a_pts, a_nbs, dim, method=method),
        -e,
    )
    ref = curvature_invariants(a_pts, a_nbs, dim)
    largest = max(
        float(getattr(ref, f).double().abs().max().log2()) - power * e for f, power in zip(FIELDS, (1, 1, 2))
    )
    if largest >= math.log2(torch.finfo(dtype).max):
        with pytest.raises(OverflowError, match=rf"curvature invariants exceed the largest {dtype}"):
            curvature_invariants(b_pts, b_nbs, dim)
        return
    got = curvature_invariants(b_pts, b_nbs, dim)
    for f, power in zip(FIELDS, (1, 1, 2)):
        _check_scaled(getattr(got, f), getattr(ref, f), -power * e)


@given(geometry_params, st.sampled_from([torch.float32, F64]), st.data())
def test_decimal_scales_scale_curvature(p, dtype, data):
    """At 10^e the scaled points round differently: float64 keeps κ·s to the invariance tolerance,
    and float32 agrees with float64 on the very same numbers, from 1e-30 to 1e30 (float64: 1e±300)."""
    e = data.draw(st.integers(-scales.DECIMAL_EXPONENT[dtype], scales.DECIMAL_EXPONENT[dtype]), label="e")
    s = 10.0**e
    (pts, nbs), dim, _ = _codim1_patch(p)
    y_pts, y_nbs = (pts * s).to(dtype), (nbs * s).to(dtype)
    got = principal_curvatures(y_pts, y_nbs, dim, method=p["method"]).double()
    rel = torch.full((pts.shape[0],), 0.0, dtype=F64)
    if dtype == F64:
        ref, rtol = principal_curvatures(pts, nbs, dim, method=p["method"]) / s, tol.INVARIANCE_RTOL
    else:
        ref = principal_curvatures(y_pts.double(), y_nbs.double(), dim, method=p["method"])
        rtol = tol.FLOAT32_VS_FLOAT64_RTOL
        if p["method"] == "gram":
            # the Gram route squares σ: in float32 the normal direction's coordinates carry a
            # relative error of about eps (σ_max/σ_normal)², bounded here with its noise floor's
            # 16 eps; past the floor (a bound ≥ 1/4) the direction may be zeroed (_coordinates_gram)
            sv = torch.linalg.svdvals(nbs - pts[:, None])
            eps32 = torch.finfo(torch.float32).eps
            rel = curvature.GRAM_NOISE_FLOOR * eps32 * (sv[:, 0] / sv[:, dim]) ** 2
    rel = rel.clamp(min=rtol)[:, None]
    # the codimension-1 spectrum is the first normal direction (as in the other invariance tests)
    g, r = got[:, 0].reshape(pts.shape[0], -1), ref[:, 0].reshape(pts.shape[0], -1)
    atol = rtol * float(ref.abs().max())
    close = (g - r).abs() <= atol + rel * r.abs()
    zeroed = (rel >= 0.25) & (g == 0)
    assert (close | zeroed).all(), (g, r, rel)


def test_the_float32_gram_route_gives_zero_where_the_normal_is_below_its_floor():
    """Found by hypothesis (seed 7): a patch whose normal offsets are under the Gram route's
    float32 floor, √(16 eps) ≈ 1.4e-3 of the tangent's σ, gets curvature 0 there (documented in
    ``_coordinates_gram``), where float64 and the float32 SVD route still resolve it."""
    (pts, nbs), dim, _ = _codim1_patch(dict(seed=7, dim=1, pad=1, extra_k=0, method="gram"))
    sv = torch.linalg.svdvals(nbs - pts[:, None])
    floor = math.sqrt(curvature.GRAM_NOISE_FLOOR * torch.finfo(torch.float32).eps)
    below = sv[:, dim] < floor * sv[:, 0]
    assert below.any()
    gram32 = principal_curvatures(pts.float(), nbs.float(), dim, method="gram")[:, 0]
    svd32 = principal_curvatures(pts.float(), nbs.float(), dim, method="svd")[:, 0].double()
    ref = principal_curvatures(pts, nbs, dim, method="gram")[:, 0]
    assert (gram32[below] == 0).all() and (ref[below] != 0).all()
    torch.testing.assert_close(svd32, ref, rtol=tol.FLOAT32_VS_FLOAT64_RTOL, atol=0.0)


def test_tiny_neighbourhoods_keep_their_curvature_unless_rescale_is_off():
    """The released code's pinv cutoff discards the quadratic terms of neighbourhoods below ~1e-4
    in float32 (docs/design.md §6); the fit at a power-of-two scale does not. rescale=False keeps
    the released arithmetic."""
    pts, nbs = quadric_patch(0, 2, 1, 5, n=4, k=12)
    ref = principal_curvatures(pts.float(), nbs.float(), 2)
    small_pts, small_nbs = (pts * 2.0**-30).float(), (nbs * 2.0**-30).float()
    assert torch.equal(principal_curvatures(small_pts, small_nbs, 2), ref * 2.0**30)
    released = principal_curvatures(small_pts, small_nbs, 2, rescale=False)
    assert float(released.abs().max()) < 1e-3 * float(ref.abs().max()) * 2.0**30


def test_curvature_that_does_not_fit_the_dtype_is_an_overflow_error():
    pts, nbs = quadric_patch(0, 2, 1, 5, n=4, k=12)
    small_pts, small_nbs = (pts * 1e-25).float(), (nbs * 1e-25).float()
    principal_curvatures(small_pts, small_nbs, 2)  # about 1e25: fits float32
    with pytest.raises(OverflowError, match=r"exceed the largest torch.float32.*float64"):
        curvature_invariants(small_pts, small_nbs, 2)  # scalar curvature about 1e50: does not


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("method", ["gram", "svd", "invariants"])
def test_half_precision_is_fitted_in_float32(dtype, method):
    """float16 and bfloat16 are fitted in float32 (no half-precision eigensolver, and no resolution
    to fit in) and rounded back once: within one rounding of the float32 fit of the same numbers."""
    pts, nbs = quadric_patch(0, 2, 2, 8, n=3, k=20)
    pts, nbs = pts.to(dtype), nbs.to(dtype)

    def fit(p, n):
        if method == "invariants":
            inv = curvature_invariants(p, n, 2)
            return torch.stack([getattr(inv, f) for f in FIELDS])
        return principal_curvatures(p, n, 2, method=method)

    got, ref = fit(pts, nbs), fit(pts.float(), nbs.float())
    info = torch.finfo(dtype)
    assert got.dtype == dtype
    torch.testing.assert_close(got.float(), ref, rtol=info.eps, atol=info.tiny * info.eps)


@pytest.mark.parametrize("layout", ["outlier", "sampled-duplicates"])
def test_a_scale_missed_by_the_sampled_rows_is_recovered(monkeypatch, layout):
    """The scale of a neighbourhood is read from a few of its rows. Where they miss a neighbour
    2^80 times further out (its squares would overflow float32), or all coincide with the point,
    the fit falls back to the exact scale: the result is the one computed with it from the start."""
    pts, nbs = quadric_patch(1, 2, 1, 6, n=2, k=40)
    pts, nbs = pts.float(), nbs.float()
    rows = torch.arange(0, 40, max(1, 40 // curvature.SCALE_SAMPLE_ROWS))
    others = torch.tensor([i for i in range(40) if i not in set(rows.tolist())])
    if layout == "outlier":
        nbs[0, others[0]] = pts[0] + 2.0**80 * (nbs[0, others[0]] - pts[0])
    else:
        nbs[1, rows] = pts[1]
    exact_calls, exact_exponents = [], curvature._exact_exponents
    monkeypatch.setattr(
        curvature, "_exact_exponents", lambda *a: exact_calls.append(1) or exact_exponents(*a)
    )
    got_k, got_i = principal_curvatures(pts, nbs, 2), curvature_invariants(pts, nbs, 2)
    assert len(exact_calls) == 2  # once per call: the fallback was taken
    monkeypatch.setattr(curvature, "SCALE_SAMPLE_ROWS", 10**6)  # every row: the exact scale
    torch.testing.assert_close(got_k, principal_curvatures(pts, nbs, 2), rtol=0.0, atol=0.0)
    exact = curvature_invariants(pts, nbs, 2)
    for f in FIELDS:
        torch.testing.assert_close(getattr(got_i, f), getattr(exact, f), rtol=0.0, atol=0.0)
    assert bool(torch.isfinite(got_k).all())


# ------------------------------------------------------------------------------------------
# pinned behaviour: messages, boundaries, chunks and routes (mutation testing, mutation/README.md)


def _exactly(message: str) -> str:
    """A ``match`` pattern for the whole of ``message``."""
    return "^" + re.escape(message) + "$"


def _fields(inv: Invariants) -> list[torch.Tensor]:
    return [getattr(inv, f) for f in FIELDS]


def _small_case():
    g = torch.Generator().manual_seed(0)
    return torch.zeros(2, 5, dtype=F64), torch.randn(2, 6, 5, generator=g, dtype=F64)


def _nan_neighbours():
    pts, nbs = _small_case()
    nbs[1, 2, 3] = float("nan")
    return pts, nbs


UNDERDETERMINED = (
    "the quadratic fit is under-determined: K = 6 neighbours for 9 coefficients "
    "(dim = 3 needs K ≥ dim + dim(dim+1)/2 = 9)"
)

INPUT_ERRORS = {
    "neighbours-not-numbers": (
        lambda: principal_curvatures(_small_case()[0], "abc", 1),
        TypeError,
        "neighbours must be a tensor or array-like of numbers, got str",
    ),
    "neighbours-not-3d": (
        lambda: principal_curvatures(_small_case()[0], _small_case()[1][0], 1),
        ValueError,
        "neighbours must have shape (n, K, D) = (2, K, 5) to match points (2, 5), got (6, 5)",
    ),
    "neighbours-nan": (
        lambda: principal_curvatures(*_nan_neighbours(), 1),
        ValueError,
        "neighbours contains NaN or Inf in 1 of 2 rows (first at row 1); "
        "drop or repair those rows before estimating",
    ),
    "dtypes-differ": (
        lambda: principal_curvatures(_small_case()[0].float(), _small_case()[1], 1),
        ValueError,
        "points (torch.float32, cpu) and neighbours (torch.float64, cpu) must share dtype and device; "
        "convert one with .to(...)",
    ),
    "dim-too-large": (
        lambda: principal_curvatures(*_small_case(), 5),
        ValueError,
        "dim = 5 leaves no normal direction: it must be below min(K, D) = min(6, 5); "
        "use more neighbours or a smaller intrinsic dimension",
    ),
    "dim-zero": (
        lambda: curvature_invariants(*_small_case(), 0),
        ValueError,
        "dim must be an integer >= 1, got 0; dim is the intrinsic dimension (tangent directions)",
    ),
    "dim-float": (
        lambda: principal_curvatures(*_small_case(), 2.0),
        TypeError,
        "dim must be an integer, got 2.0 (float); dim is the intrinsic dimension (tangent directions)",
    ),
    "underdetermined-curvatures": (
        lambda: principal_curvatures(*_small_case(), 3),
        ValueError,
        UNDERDETERMINED + "; use more neighbours, or pass allow_underdetermined=True to take the "
        "minimum-norm solution as the paper's input probe does",
    ),
    "underdetermined-invariants": (
        lambda: curvature_invariants(*_small_case(), 3),
        ValueError,
        UNDERDETERMINED + "; use more neighbours, or pass allow_underdetermined=True to take the "
        "minimum-norm solution as the paper's input probe does",
    ),
    "max-iter-zero": (
        lambda: curvature_invariants(*_small_case(), 1, max_iter=0),
        ValueError,
        "max_iter must be an integer >= 1, got 0; it caps the Krylov blocks",
    ),
    "max-iter-float": (
        lambda: curvature_invariants(*_small_case(), 1, max_iter=1.5),
        TypeError,
        "max_iter must be an integer, got 1.5 (float); it caps the Krylov blocks",
    ),
    "mapc-empty": (lambda: mapc(torch.empty(0, 3, 2)), ValueError, "mapc of an empty tensor is undefined"),
    "mapc-not-numbers": (
        lambda: mapc("abc"),
        TypeError,
        "curvatures must be a tensor or array-like of numbers, got str",
    ),
    "mapc-nan": (
        lambda: mapc(
            torch.zeros(2, 3, 2).index_put_((torch.tensor(1), torch.tensor(2)), torch.tensor(math.nan))
        ),
        ValueError,
        "curvatures contains NaN or Inf in 1 of 2 rows (first at row 1); "
        "drop or repair those rows before estimating",
    ),
    "n-coefficients-negative": (
        lambda: n_coefficients(-1),
        ValueError,
        "dim must be an integer >= 0, got -1",
    ),
}


@pytest.mark.parametrize("case", INPUT_ERRORS, ids=list(INPUT_ERRORS))
def test_each_input_error_says_what_was_wrong_and_what_to_do(case):
    call, error, message = INPUT_ERRORS[case]
    with pytest.raises(error, match=_exactly(message)):
        call()


def test_underdetermined_warning_text_and_the_exactly_determined_fit():
    """K = p neighbours determine the fit (no warning); one fewer is under-determined."""
    pts, nbs = quadric_patch(0, 2, 1, 6, n=2, k=5)  # p = 5 for dim 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert principal_curvatures(pts, nbs, 2).shape == (2, 3, 2)
    message = (
        "the quadratic fit is under-determined: K = 4 neighbours for 5 coefficients "
        "(dim = 2 needs K ≥ dim + dim(dim+1)/2 = 5); taking the minimum-norm least-squares solution"
    )
    with pytest.warns(UnderdeterminedFitWarning, match=_exactly(message)):
        principal_curvatures(pts, nbs[:, :4], 2, allow_underdetermined=True)


def test_n_coefficients_counts_linear_and_quadratic_terms():
    assert [n_coefficients(d) for d in range(5)] == [0, 2, 5, 9, 14]


def test_mapc_of_any_shape():
    assert mapc(torch.tensor(-2.0)) == 2.0  # a single curvature
    assert mapc(torch.tensor([[[1.0], [-2.0], [3.0]]])) == 2.0  # one point, an odd count
    assert mapc([1, -3]) == 2.0  # integers, one dimension


def test_chunk_points_fill_the_byte_budget_and_at_most_the_threads_where_delta_is_stored(monkeypatch):
    cpu, elsewhere = torch.device("cpu"), torch.device("meta")
    per_point = 10 * (30 + 10) * 8  # K × (max(K, D) + K) × itemsize for K = 10, D = 30, float64
    monkeypatch.setattr(torch, "get_num_threads", lambda: 64)
    monkeypatch.setattr(curvature, "CHUNK_BYTES", 5 * per_point + per_point // 2)
    assert curvature._chunk_points(100, 10, 30, 8, cpu) == 5
    assert curvature._chunk_points(3, 10, 30, 8, cpu) == 3  # never more than the points
    monkeypatch.setattr(curvature, "CHUNK_BYTES", per_point - 1)
    assert curvature._chunk_points(100, 10, 30, 8, cpu) == 1  # one point even above the budget
    monkeypatch.setattr(curvature, "CHUNK_BYTES", 2**40)
    assert curvature._chunk_points(100, 10, 30, 8, cpu) == 64
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert curvature._chunk_points(100, 10, 30, 8, cpu) == 1
    assert curvature._chunk_points(100, 10, 30, 8, elsewhere) == 100  # off the CPU: no thread cap
    # Δ not stored (the Krylov route's lazy displacements): no thread cap, equal chunks
    monkeypatch.setattr(curvature, "CHUNK_BYTES", 7 * per_point)
    assert curvature._chunk_points(8, 10, 30, 8, cpu, stored=False) == 4  # 4 and 4, not 7 and 1
    assert curvature._chunk_points(15, 10, 30, 8, cpu, stored=False) == 5
    assert curvature._chunk_points(7, 10, 30, 8, cpu, stored=False) == 7  # above the 1 thread
    assert curvature._chunk_points(7, 10, 30, 8, cpu) == 1


@pytest.mark.filterwarnings("error")  # nor a resized output buffer
@pytest.mark.parametrize("dtype", [F64, torch.float32, torch.float16])
def test_lazy_displacements_are_the_stored_ones_bit_for_bit(dtype):
    """Slice by slice (256, 256, 88 columns on a CPU, whole elsewhere), any columns and any rows:
    each entry has _fill's one rounding."""
    g = torch.Generator().manual_seed(3)
    pts = (100 * torch.randn(2, 600, generator=g, dtype=F64)).to(dtype)
    nbs = (pts[:, None, :].to(F64) + torch.randn(2, 3, 600, generator=g, dtype=F64)).to(dtype)
    e = torch.tensor([3, -5])
    work = curvature.compute_dtype(dtype)
    stored = curvature._fill(torch.empty(2, 3, 600, dtype=work), pts, nbs, e)
    delta = curvature._Displacements(pts, nbs, e, work)
    parts = [p.clone() for p in delta.slices()]
    assert [p.shape[-1] for p in parts] == [256, 256, 88]
    assert torch.equal(torch.cat(parts, -1), stored)
    assert torch.equal(delta.whole(), stored)
    rows = torch.tensor([False, True])
    assert torch.equal(delta.whole(rows), stored[rows])
    columns = torch.tensor([0, 255, 256, 599])
    assert torch.equal(delta.columns(columns), stored[..., columns])
    meta = curvature._Displacements(pts.to("meta"), nbs.to("meta"), e.to("meta"), work)
    assert [p.shape[-1] for p in meta.slices()] == [600]  # off a CPU: formed whole, once


def _outlier_chunk():
    """Two points of a patch (K = 40, D = 6, float32); point 1's unsampled row 1 is 2^80 out."""
    pts, nbs = quadric_patch(1, 2, 1, 6, n=2, k=40)
    pts, nbs = pts.float(), nbs.float()
    nbs[1, 1] = pts[1] + 2.0**80 * (nbs[1, 1] - pts[1])
    return pts, nbs


@pytest.mark.parametrize("first", ["slices", "whole"])
def test_the_first_pass_over_lazy_displacements_checks_their_scale_once(first):
    pts, nbs = _outlier_chunk()
    e = curvature._sampled_exponents(pts, nbs, torch.float32)
    bound = 2.0**curvature.SCALE_SLACK * (40 * 6) ** 0.5
    delta = curvature._Displacements(pts, nbs, e, torch.float32, bound)
    columns = delta.columns(torch.tensor([0, 1]))  # a few columns are no pass: nothing checked yet
    assert columns.shape == (2, 40, 2)
    with pytest.raises(curvature._ScaleMissed) as missed:
        list(delta.slices()) if first == "slices" else delta.whole()
    assert missed.value.args[0].tolist() == [False, True]
    list(delta.slices())  # checked once: the second pass is the caller's own
    exact = curvature._exact_where(e, missed.value.args[0], pts, nbs, torch.float32)
    assert exact[0] == e[0] and exact[1] == curvature._exact_exponents(pts[1:], nbs[1:], torch.float32)[0]
    within = curvature._Displacements(pts[:1], nbs[:1], e[:1], torch.float32, bound)
    assert len(list(within.slices())) == 1 and within.whole().shape == (1, 40, 6)  # no raise


def test_a_missed_scale_refits_the_lazy_chunk_with_the_exact_scale(monkeypatch):
    pts, nbs = _outlier_chunk()
    fits = []

    def fit(delta):
        fits.append(delta.e.clone())
        return (torch.stack([p.abs().amax((1, 2)) for p in delta.slices()], -1).amax(-1),)

    ((largest,), e), *more = curvature._by_chunk(pts, nbs, True, fit, lazy=True)
    assert not more and len(fits) == 2  # the sampled scale's fit stopped at its first pass
    exact = curvature._exact_exponents(pts, nbs, torch.float32)
    assert e[1] == exact[1] and e[0] == fits[0][0] and 0.5 <= largest[1] < 1.0
    assert torch.equal(fits[1], e)


def test_block_budget_is_the_share_of_the_flop_count():
    # Gram route 2K²D + 10K³ = 1.2e10, one block 4KDq = 8e6: 0.2 × 1500 blocks
    assert curvature._block_budget(1000, 1000, 2) == 300


def test_results_follow_the_input_device_not_the_default_one(monkeypatch):
    """Every tensor made on the way is put on the input's device, whatever torch's default is."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    monkeypatch.setattr(curvature, "KRYLOV_BUDGET", 100.0)
    small, krylov = quadric_patch(0, 2, 1, 6, n=3, k=12), quadric_patch(1, 1, 1, 200, n=2, k=60, noise=1e-4)

    def everything():
        out = []
        for rescale in (True, False):
            out += principal_curvatures(*small, 2, return_hessians=True, rescale=rescale)
            out += principal_curvatures(*small, 2, method="svd", rescale=rescale)[None]
            out += _fields(curvature_invariants(*small, 2, rescale=rescale))
        return out + _fields(curvature_invariants(*krylov, 1))

    expected = everything()
    with torch.device("meta"):
        got = everything()
    assert all(g.device.type == "cpu" and torch.equal(g, e) for g, e in zip(got, expected, strict=True))


def _normalised_patch(seed: int, dim: int, ambient: int, n: int, k: int):
    """A patch each of whose neighbourhoods has max |y − x| in [0.5, 1): scale exponent 0."""
    pts, nbs = quadric_patch(seed, dim, 1, ambient, n=n, k=k)
    _, e = torch.frexp((nbs - pts[:, None]).abs().amax((1, 2)))
    s = (2.0 ** -e.double())[:, None]
    return pts * s, nbs * s[..., None]


@pytest.mark.filterwarnings("error")  # nor a resized output buffer
@pytest.mark.parametrize("ambient,dim", [(6, 2), (3, 1)])
def test_multi_point_chunks_and_the_released_arithmetic(monkeypatch, ambient, dim):
    """Chunks of up to four points (more points than coordinates in the second case). Where each
    neighbourhood's scale exponent is 0 already, rescale=False computes the very same numbers."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    pts, nbs = _normalised_patch(2, dim, ambient, n=6, k=12)
    sizes, hessians = [], curvature._hessians
    monkeypatch.setattr(curvature, "_hessians", lambda c, d: sizes.append(c.shape[0]) or hessians(c, d))
    for method in ("gram", "svd"):
        scaled = principal_curvatures(pts, nbs, dim, method=method)
        assert scaled.shape == (6, min(12, ambient) - dim, dim)
        assert torch.equal(principal_curvatures(pts, nbs, dim, method=method, rescale=False), scaled)
    assert sizes == [4, 2] * 4
    inv, released = curvature_invariants(pts, nbs, dim), curvature_invariants(pts, nbs, dim, rescale=False)
    assert all(torch.equal(a, b) for a, b in zip(_fields(inv), _fields(released), strict=True))


def test_chunks_are_sized_in_the_compute_dtype(monkeypatch):
    pts, nbs = quadric_patch(0, 2, 1, 6, n=3, k=12)
    itemsizes, chunk_points = [], curvature._chunk_points
    monkeypatch.setattr(
        curvature, "_chunk_points", lambda *a, **kw: itemsizes.append(a[3]) or chunk_points(*a, **kw)
    )
    for dtype in (F64, torch.float32, torch.float16):
        principal_curvatures(pts.to(dtype), nbs.to(dtype), 2)
    assert itemsizes == [8, 4, 4] and all(type(s) is int for s in itemsizes)


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("outlier,exponent", [(2047.5, 0), (4096.0, 13)])
def test_the_sampled_scale_is_kept_up_to_the_slack_bound(outlier, exponent, lazy):
    """K = 32 rows, every other one sampled; the unsampled rows bring ‖Δ'‖_F to exactly the bound
    2^SCALE_SLACK · √(KD) = 2048 (the sampled scale is kept) or past it (the exact one is taken),
    on a stored Δ' and on lazy displacements (there by their first pass)."""
    pts, nbs = torch.zeros(1, 2, dtype=F64), torch.zeros(1, 32, 2, dtype=F64)
    nbs[0, 0, 0] = 0.5  # the sampled rows' largest entry: exponent 0
    nbs[0, [1, 3, 5, 7], 0] = torch.tensor([outlier, 45.0, 4.5, 1.5], dtype=F64)  # squares sum to 2^22 - 1/4

    def fit(delta):
        return (torch.cat([p.clone() for p in delta.slices()], -1) if lazy else delta.clone(),)

    ((delta,), e), *more = curvature._by_chunk(pts, nbs, True, fit, lazy=lazy)
    assert not more and e.tolist() == [exponent]
    assert torch.equal(delta, nbs * 2.0**-exponent)


@pytest.mark.parametrize("lazy", [False, True])
def test_a_point_on_the_slack_bound_keeps_its_scale_beside_one_past_it(lazy):
    """The previous test's two neighbourhoods in one chunk: only the one past the bound (whose
    check refits a lazy chunk) takes its exact scale."""
    pts, nbs = torch.zeros(2, 2, dtype=F64), torch.zeros(2, 32, 2, dtype=F64)
    nbs[:, 0, 0] = 0.5
    nbs[0, [1, 3, 5, 7], 0] = torch.tensor([2047.5, 45.0, 4.5, 1.5], dtype=F64)
    nbs[1, [1, 3, 5, 7], 0] = torch.tensor([4096.0, 45.0, 4.5, 1.5], dtype=F64)

    def fit(delta):
        return (torch.cat([p.clone() for p in delta.slices()], -1) if lazy else delta.clone(),)

    chunks = list(curvature._by_chunk(pts, nbs, True, fit, lazy=lazy))
    assert torch.cat([e for _, e in chunks]).tolist() == [0, 13]


@pytest.mark.parametrize("lazy", [False, True])
def test_without_rescaling_no_scale_is_checked_or_taken(monkeypatch, lazy):
    """rescale=False is the released arithmetic: a Δ far above the slack bound keeps e = 0."""
    pts, nbs = torch.zeros(1, 2, dtype=F64), torch.zeros(1, 32, 2, dtype=F64)
    nbs[0, 1, 0] = 2.0**40
    monkeypatch.setattr(curvature, "_exact_exponents", None)  # would fail if called
    monkeypatch.setattr(curvature, "_sampled_exponents", None)
    fit = (lambda d: (torch.cat(list(d.slices()), -1),)) if lazy else (lambda d: (d.clone(),))
    ((delta,), e), *more = curvature._by_chunk(pts, nbs, False, fit, lazy=lazy)
    assert not more and e.tolist() == [0] and torch.equal(delta, nbs)


def test_small_neighbourhoods_are_sampled_whole():
    """Below 2·SCALE_SAMPLE_ROWS neighbours every row is read: the sampled scale is the exact one."""
    g = torch.Generator().manual_seed(0)
    pts = torch.zeros(2, 4, dtype=F64)
    nbs = 0.1 * torch.rand(2, 20, 4, generator=g, dtype=F64)
    nbs[:, 1, 2] = 0.9  # the largest displacement, on a row that every other row would skip
    assert curvature._sampled_exponents(pts, nbs, F64).tolist() == [0, 0]
    assert curvature._exact_exponents(pts, nbs, F64).tolist() == [0, 0]


@pytest.mark.filterwarnings("error")  # nor a resized output buffer
def test_a_missed_scale_in_a_chunk_of_several_points_refills_that_point_only(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    pts, nbs = quadric_patch(1, 2, 1, 6, n=3, k=40)
    pts, nbs = pts.float(), nbs.float()
    nbs[0, 1] = pts[0] + 2.0**80 * (nbs[0, 1] - pts[0])  # row 1 is not sampled (stride 2)
    got_k, got_i = principal_curvatures(pts, nbs, 2), curvature_invariants(pts, nbs, 2)
    monkeypatch.setattr(curvature, "SCALE_SAMPLE_ROWS", 10**6)  # every row: the exact scale
    assert torch.equal(got_k, principal_curvatures(pts, nbs, 2))
    assert all(
        torch.equal(a, b)
        for a, b in zip(_fields(got_i), _fields(curvature_invariants(pts, nbs, 2)), strict=True)
    )


def test_gram_coordinates_scale_exactly_and_drop_a_direction_at_the_floor():
    pts, nbs = quadric_patch(0, 2, 1, 6, n=3, k=12)
    delta = nbs - pts[:, None]
    # the noise floor is relative to the largest eigenvalue: scaling by 2^-40 changes no bit
    assert torch.equal(
        curvature._coordinates_gram(delta * 2.0**-40, 6), curvature._coordinates_gram(delta, 6) * 2.0**-40
    )
    # eigenvalues 1 and 2^-48 = GRAM_NOISE_FLOOR · eps · 1: the second is at the floor, hence noise
    delta = torch.zeros(1, 3, 4, dtype=F64)
    delta[0, 0, 0], delta[0, 1, 1] = 1.0, 2.0**-24
    coords = curvature._coordinates_gram(delta, 3)
    assert coords[0, :, 0].abs().tolist() == [1.0, 0.0, 0.0] and not bool(coords[..., 1:].any())


def test_principal_curvatures_overflow_is_named_and_hessians_follow_half_precision():
    pts, nbs = quadric_patch(0, 2, 1, 5, n=4, k=12)
    with pytest.raises(OverflowError, match=r"^principal curvatures exceed the largest torch\.float32 "):
        principal_curvatures((pts * 2.0**-130).float(), (nbs * 2.0**-130).float(), 2)  # about 2^130
    kappa, hess = principal_curvatures(pts.half(), nbs.half(), 2, return_hessians=True)
    assert kappa.dtype == hess.dtype == torch.float16


# the Krylov route


def _krylov_patch(kind, seed: int, dim: int = 1, k: int = 60, ambient: int = 200):
    """Displacements (1, K, D): ``"noise"`` (no gap at all) or a quadric (codim, noise)."""
    if kind == "noise":
        return torch.randn(1, k, ambient, generator=torch.Generator().manual_seed(seed), dtype=F64)
    codim, noise = kind
    pts, nbs = quadric_patch(seed, dim, codim, ambient, n=1, k=k, noise=noise)
    return nbs - pts[:, None]


def _spy(monkeypatch, name: str) -> list:
    """Record the arguments and the result of every call of ``curvature.<name>``."""
    calls, original = [], getattr(curvature, name)

    def spy(*args):
        out = original(*args)
        calls.append((args, out))
        return out

    monkeypatch.setattr(curvature, name, spy)
    return calls


@pytest.mark.parametrize(
    "kinds,converged,blocks",
    [
        ([(1, 1e-4), "noise"], [True, False], 4),  # each point by its own residual
        ([(1, 1e-4), (3, 1e-3)], [True, True], 5),  # converged in block 4 and in block 5
    ],
)
def test_krylov_points_converge_each_by_its_own_residual(kinds, converged, blocks):
    delta = torch.cat([_krylov_patch(kind, seed) for seed, kind in enumerate(kinds)])
    _, ok, run = curvature._tangent_coordinates(_lazy(delta), 1, 1e-11, 6)
    assert ok.tolist() == converged and run == blocks


def test_a_chunk_with_a_converged_and_a_failed_point_equals_the_hessians(monkeypatch):
    """The Krylov route keeps the converged point and hands the other to the Gram route."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(curvature, "KRYLOV_BUDGET", 100.0)
    nbs = torch.cat([_krylov_patch((1, 1e-4), 0), _krylov_patch("noise", 1)])
    pts = torch.zeros(2, 200, dtype=F64)
    calls, gram = _spy(monkeypatch, "_tangent_coordinates"), _spy(monkeypatch, "_invariants_gram")
    got = curvature_invariants(pts, nbs, 1)
    assert [out[1].tolist() for _, out in calls] == [[True, False]]
    assert [args[0].shape[0] for args, _ in gram] == [1]  # the failed point's Δ alone
    _, hess = principal_curvatures(pts, nbs, 1, method="svd", return_hessians=True)
    assert_invariants_close(got, Invariants.from_hessians(hess), tol.INVARIANTS_VS_HESSIANS_RTOL)


def test_krylov_route_is_seeded_and_reproducible(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)  # one chunk
    monkeypatch.setattr(curvature, "KRYLOV_BUDGET", 100.0)
    pts, nbs = quadric_patch(1, 1, 1, 200, n=2, k=60, noise=1e-4)
    starts = _spy(monkeypatch, "_warm_start")
    first, second = curvature_invariants(pts, nbs, 1), curvature_invariants(pts, nbs, 1)
    assert [args[2].initial_seed() for args, _ in starts] == [0x5EED, 0x5EED]
    assert all(torch.equal(a, b) for a, b in zip(_fields(first), _fields(second), strict=True))


@pytest.mark.parametrize("ambient,sketched", [(56, False), (64, True)])
def test_warm_start_sketches_the_columns_where_there_are_twice_the_block(ambient, sketched):
    """D // 8 columns are sketched once they are at least 2q (here q = 4): then the start spans a
    rank-q Δ's neighbour space; below, it is the QR of the seeded random block."""
    g = torch.Generator().manual_seed(0)
    delta = torch.randn(2, 30, 4, generator=g, dtype=F64) @ torch.randn(2, 4, ambient, generator=g, dtype=F64)
    y = curvature._warm_start(_lazy(delta), 4, torch.Generator().manual_seed(7))
    assert y.shape == (2, 30, 4)
    torch.testing.assert_close(y.mT @ y, torch.eye(4, dtype=F64).expand(2, 4, 4))
    plain = torch.linalg.qr(torch.randn(2, 30, 4, generator=torch.Generator().manual_seed(7), dtype=F64)).Q
    outside = delta - y @ (y.mT @ delta)
    assert torch.equal(y, plain) is not sketched
    assert (float(outside.norm() / delta.norm()) < 1e-10) is sketched


def _route(monkeypatch, pts, nbs, dim, **kwargs):
    """(max_blocks of every Krylov call, tol of every Krylov call, Gram-route calls, P_qΔ calls)."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)  # one chunk
    krylov, gram, gram_form = (
        _spy(monkeypatch, n) for n in ("_tangent_coordinates", "_invariants_gram", "_gram_form")
    )
    curvature_invariants(pts, nbs, dim, **kwargs)
    return [a[3] for a, _ in krylov], [a[2] for a, _ in krylov], len(gram), len(gram_form)


@pytest.mark.parametrize("ambient,krylov", [(20, False), (21, True)])
def test_krylov_route_needs_more_than_two_blocks_of_rank(monkeypatch, ambient, krylov):
    """dim 2: blocks of q = 10 columns; the route is tried only where min(K, D) > 2q."""
    monkeypatch.setattr(curvature, "KRYLOV_BUDGET", 100.0)
    pts, nbs = quadric_patch(0, 2, 1, ambient, n=1, k=60, noise=1e-3)
    blocks, _, gram, _ = _route(monkeypatch, pts, nbs, 2)
    assert bool(blocks) is krylov


@pytest.mark.parametrize(
    "budget,max_iter,blocks",
    [
        (None, None, [5]),  # K = 150, D = 300, q = 10: the budget allows int(0.2 × 26.25) = 5
        (100.0, None, [10]),  # the default max_iter
        (100.0, 4, [4]),
        (100.0, 20, [15]),  # K // q: the basis fills the neighbour space
        (100.0, 2, []),  # fewer than MIN_BLOCKS: the Gram route at once
    ],
)
def test_krylov_blocks_are_capped_by_budget_max_iter_and_k(monkeypatch, budget, max_iter, blocks):
    if budget is not None:
        monkeypatch.setattr(curvature, "KRYLOV_BUDGET", budget)
    pts, nbs = quadric_patch(0, 2, 2, 300, n=1, k=150, noise=1e-4)
    kwargs = {} if max_iter is None else {"max_iter": max_iter}
    assert _route(monkeypatch, pts, nbs, 2, **kwargs)[0] == blocks


def _noisy_quadric(n, k, big_d, dim, codim, curvature_scale, spread, noise):
    """Float64 points of a quadric x ↦ (x, ½xᵀA_αx) in a random frame of R^D, each with k
    neighbours at Gaussian offsets, and noise in every coordinate of both."""
    g = torch.Generator().manual_seed(0)
    a = curvature_scale * torch.randn(n, codim, dim, dim, generator=g, dtype=F64)
    a = (a + a.mT) / 2
    w = spread * torch.randn(n, k, dim, generator=g, dtype=F64)
    z = 0.5 * torch.einsum("nki,naij,nkj->nka", w, a, w)
    frame = torch.linalg.qr(torch.randn(big_d, dim + codim, generator=g, dtype=F64)).Q
    pts = torch.randn(n, big_d, generator=g, dtype=F64)
    nbs = torch.cat([w, z], dim=-1) @ frame.T + pts[:, None, :]
    nbs = nbs + noise * torch.randn(nbs.shape, generator=g, dtype=F64)
    return pts + noise * torch.randn(pts.shape, generator=g, dtype=F64), nbs


def test_float32_default_tolerance_errs_no_more_than_the_float32_routes(monkeypatch):
    """DEFAULT_TOL in float32: the Krylov invariants are as close to the float64 ones as the
    float32 Gram and SVD routes' own, on a patch where a residual a hundred times looser is not."""
    n, k, big_d, dim, *shape = cases.KRYLOV_TOL_CASE
    pts, nbs = _noisy_quadric(n, k, big_d, dim, *shape)
    exact = Invariants.from_hessians(principal_curvatures(pts, nbs, dim, return_hessians=True)[1])

    def error(inv: Invariants) -> float:
        return max(
            float(((getattr(inv, f).double() - getattr(exact, f)) / getattr(exact, f)).abs().max())
            for f in FIELDS
        )

    p32, n32 = pts.float(), nbs.float()
    routes = max(
        error(
            Invariants.from_hessians(principal_curvatures(p32, n32, dim, method=m, return_hessians=True)[1])
        )
        for m in ("gram", "svd")
    )
    bound = tol.KRYLOV_VS_FLOAT32_ROUTES * routes
    calls = _spy_on_krylov(monkeypatch)
    assert error(curvature_invariants(p32, n32, dim)) <= bound
    assert calls and all(bool(ok.all()) for ok, _ in calls)  # the Krylov route gave every point
    looser = 100 * curvature.DEFAULT_TOL[torch.float32]
    assert error(curvature_invariants(p32, n32, dim, tol=looser)) > bound  # the case tells them apart


def test_krylov_tolerance_defaults_with_the_dtype(monkeypatch):
    monkeypatch.setattr(curvature, "KRYLOV_BUDGET", 100.0)
    pts, nbs = quadric_patch(1, 1, 1, 200, n=1, k=60, noise=1e-4)
    assert _route(monkeypatch, pts, nbs, 1)[1] == [1e-11]
    assert _route(monkeypatch, pts.float(), nbs.float(), 1)[1] == [1e-4]


def test_where_every_point_converges_the_gram_route_is_not_run(monkeypatch):
    monkeypatch.setattr(curvature, "KRYLOV_BUDGET", 100.0)
    pts, nbs = quadric_patch(1, 1, 1, 200, n=2, k=60, noise=1e-4)
    blocks, _, gram, gram_form = _route(monkeypatch, pts, nbs, 1)
    assert blocks == [6] and gram == 0 and gram_form == 1  # few coefficients: through P_qΔ
    assert _route(monkeypatch, pts[:1], nbs[:1], 1)[2:] == (0, 1)  # q(K + q) ≤ K² counts K, not b


def test_underdetermined_fit_on_the_krylov_route_equals_the_hessians(monkeypatch):
    """dim 9 with K = 51 < p = 54: 45 quadratic coefficients, so M goes through the Gram matrix
    (q(K + q) > K²), and the tangent part that P_q u leaves is subtracted."""
    monkeypatch.setattr(curvature, "KRYLOV_BUDGET", 100.0)
    pts, nbs = quadric_patch(0, 9, 1, 100, n=2, k=51, noise=1e-3)
    with pytest.warns(UnderdeterminedFitWarning):
        blocks, _, gram, gram_form = _route(monkeypatch, pts, nbs, 9, allow_underdetermined=True)
    assert blocks == [3] and gram == 0 and gram_form == 0
    with pytest.warns(UnderdeterminedFitWarning):
        got = curvature_invariants(pts, nbs, 9, allow_underdetermined=True)
    with pytest.warns(UnderdeterminedFitWarning):
        _, hess = principal_curvatures(
            pts, nbs, 9, method="svd", allow_underdetermined=True, return_hessians=True
        )
    assert_invariants_close(got, Invariants.from_hessians(hess), tol.INVARIANTS_VS_HESSIANS_RTOL)
