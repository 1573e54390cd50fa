"""Tests of crlm_bench.geometry.manifolds: the synthetic manifolds are what they claim to be.

The cases are data (tables at the top); the logic is below. Tolerances live in ``TOL``.
One file (about 550 lines, above the project's ~500) as manifolds.py is one module: each sampler's
tests are a few lines against the shared tables.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from crlm_bench.geometry.invariants import Invariants
from crlm_bench.geometry.manifolds import (
    SAMPLERS,
    ManifoldSample,
    clifford_torus,
    cylinder,
    flat,
    graph_second_fundamental_form,
    haar_orthogonal,
    paraboloid,
    sphere,
    undo_embedding,
)

# --------------------------------------------------------------------------------------------------
# tolerances, in one place

TOL = {
    "on_manifold": 1e-12,  # float64 residual of the defining equation, relative to max(1, scale)
    "isometry": 1e-12,  # float64 pairwise distances, relative to max(1, scale)
    "closed_form": 1e-12,  # sampler invariants vs the closed forms (float64)
    "independent": 1e-7,  # paraboloid truth vs finite differences + QR frames
    "float32": 1e-5,  # float32 samples vs float64 samples
}

PROPERTY = settings(max_examples=25, deadline=None)

# --------------------------------------------------------------------------------------------------
# test data

# (dim, radius, sff_norm, mean_curvature, scalar_curvature)
SPHERE_CASES = [
    (1, 1.0, 1.0, 1.0, 0.0),
    (2, 1.5, math.sqrt(2) / 1.5, 1 / 1.5, 2 / 2.25),
    (3, 2.0, math.sqrt(3) / 2, 0.5, 1.5),
    (5, 0.5, 2 * math.sqrt(5), 2.0, 80.0),
]

# (sphere_dim k, flat_dim j, radius, sff_norm, mean_curvature, scalar_curvature, curvatures ascending)
CYLINDER_CASES = [
    (1, 1, 1.0, 1.0, 0.5, 0.0, [0.0, 1.0]),
    (1, 0, 2.0, 0.5, 0.5, 0.0, [0.5]),
    (2, 1, 0.5, 2 * math.sqrt(2), 4 / 3, 8.0, [0.0, 2.0, 2.0]),
    (3, 2, 1.0, math.sqrt(3), 0.6, 6.0, [0.0, 0.0, 1.0, 1.0, 1.0]),
]

# (a, b, sff_norm, mean_curvature); scalar curvature is 0
TORUS_CASES = [
    (1.0, 1.0, math.sqrt(2), math.sqrt(2) / 2),
    (1.0, 2.0, math.sqrt(1.25), math.sqrt(1.25) / 2),
    (0.5, 3.0, math.sqrt(4 + 1 / 9), math.sqrt(4 + 1 / 9) / 2),
]

# A (dim × dim or c × dim × dim); at the origin H^α = A_α (and curvatures = eig(A) when c = 1)
PARABOLOID_AS = [
    [[1.0]],
    [[2.0, 0.0], [0.0, -1.0]],
    [[1.0, 0.5], [0.5, -2.0]],
    [[0.3, 0.1, -0.2], [0.1, 1.0, 0.4], [-0.2, 0.4, -0.7]],
    [[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]],  # codim 2, a Clifford-like saddle pair
    [[[1.0, 0.5], [0.5, -1.0]], [[0.2, -0.3], [-0.3, 2.0]]],
    [[[2.0]], [[-1.0]], [[0.5]]],  # a curve in R^4
]

# (name, keyword arguments) for the generic properties (isometry, noise, dtype, seeds)
SAMPLE_SPECS = [
    ("sphere", dict(dim=2, radius=1.5)),
    ("sphere", dict(dim=1, radius=0.3, ambient=5)),
    ("cylinder", dict(sphere_dim=1, flat_dim=2, radius=2.0, extent=0.5)),
    ("flat", dict(dim=3, ambient=5)),
    ("paraboloid", dict(A=PARABOLOID_AS[2], extent=0.8)),
    ("paraboloid", dict(A=PARABOLOID_AS[5], ambient=6)),
    ("clifford_torus", dict(a=1.0, b=2.0)),
]

_NONSYM = [[1.0, 2.0], [0.0, 1.0]]

# (sampler, positional args, keyword args, fragment the error message must contain)
BAD_INPUTS = [
    (sphere, (10, 2), dict(ambient=2), "pass ambient >= 3"),
    (sphere, (10, 0), {}, "pass dim >= 1"),
    (sphere, (0, 2), {}, "pass n >= 1"),
    (sphere, (10, 2, -1.0), {}, "radius must be a positive"),
    (sphere, (10, 2), dict(noise=-0.1), "noise must be a finite number >= 0"),
    (sphere, (10, 2), dict(dtype=torch.int64), "floating-point"),
    (sphere, (10, 2), dict(seed=-1), "non-negative integer seed"),
    (cylinder, (10, 0, 1), {}, "pass sphere_dim >= 1"),
    (cylinder, (10, 1, -1), {}, "pass flat_dim >= 0"),
    (cylinder, (10, 1, 1), dict(ambient=2), "pass ambient >= 3"),
    (cylinder, (0, 1, 1), {}, "pass n >= 1"),
    (flat, (10, 0), {}, "pass dim >= 1"),
    (flat, (10, 3), dict(ambient=2), "pass ambient >= 3"),
    (paraboloid, (10, _NONSYM), {}, "pass (A + A.T) / 2"),
    (paraboloid, (10, [_NONSYM, _NONSYM]), {}, "A must be symmetric"),
    (paraboloid, (10, torch.zeros(0, 0)), {}, "pass matrices of size dim >= 1"),
    (paraboloid, (10, torch.zeros(2, 3)), {}, "pass square symmetric matrices"),
    (paraboloid, (10, torch.zeros(2, 2, 2, 2)), {}, "shape (dim, dim)"),
    (paraboloid, (10, torch.eye(2)), dict(ambient=2), "pass ambient >= 3"),
    (paraboloid, (10, torch.eye(2).expand(2, 2, 2)), dict(ambient=3), "pass ambient >= 4"),
    (paraboloid, (0, torch.eye(2)), {}, "pass n >= 1"),
    (clifford_torus, (10,), dict(ambient=3), "pass ambient >= 4"),
    (clifford_torus, (10, 0.0), {}, "a must be a positive"),
]

# --------------------------------------------------------------------------------------------------
# helpers


def _make(name: str, n: int, **kwargs) -> ManifoldSample:
    return SAMPLERS[name](n, **kwargs)


def _scale(sample: ManifoldSample) -> float:
    return max(1.0, float(sample.points.abs().max()))


def _residual(name: str, kwargs: dict, y: torch.Tensor) -> torch.Tensor:
    """How far construction points ``y`` are from satisfying the manifold's defining equations."""
    if name == "sphere":
        return y.norm(dim=1) - kwargs.get("radius", 1.0)
    if name == "cylinder":
        k = kwargs["sphere_dim"]
        ext = kwargs.get("extent", 1.0)
        return torch.cat(
            [
                y[:, : k + 1].norm(dim=1) - kwargs.get("radius", 1.0),
                (y[:, k + 1 :].abs() - ext).clamp(min=0).flatten(),
            ]
        )
    if name == "flat":
        return (y.abs() - kwargs.get("extent", 1.0)).clamp(min=0).flatten()
    if name == "paraboloid":
        a = torch.as_tensor(kwargs["A"], dtype=y.dtype)
        a = a.unsqueeze(0) if a.ndim == 2 else a
        dim = a.shape[-1]
        x, f = y[:, :dim], y[:, dim:]
        graph = f - 0.5 * torch.einsum("ni,aij,nj->na", x, a, x)
        ball = (x.norm(dim=1) - kwargs.get("extent", 0.5)).clamp(min=0)
        return torch.cat([graph.flatten(), ball])
    if name == "clifford_torus":
        return torch.cat(
            [y[:, :2].norm(dim=1) - kwargs.get("a", 1.0), y[:, 2:].norm(dim=1) - kwargs.get("b", 1.0)]
        )
    raise KeyError(name)


def _pairwise(x: torch.Tensor) -> torch.Tensor:
    return (x[:, None, :] - x[None, :, :]).norm(dim=-1)  # exact, unlike cdist's matmul path


def _random_symmetric(seed: int, c: int, dim: int, scale: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    b = torch.randn(c, dim, dim, generator=g, dtype=torch.float64)
    return scale * (b + b.mT) / 2


def _graph_map(a: torch.Tensor):
    """X(x) = (x, ½ xᵀA_α x), written independently of the module."""

    def embed(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, 0.5 * torch.einsum("i,aij,j->a", x, a, x)])

    return embed


def _independent_hessians(
    a: torch.Tensor, x: torch.Tensor, h: float = 1e-3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Second fundamental form at x by a route that shares nothing with the module: derivatives of
    the embedding by central finite differences (exact for quadratics up to rounding), tangent and
    normal frames from a full QR of the tangent vectors (not g^{-1/2}), II(∂_i, ∂_j) = ⟨∂_ij X, ν⟩,
    then H = R^{-T} L R^{-1} in the orthonormal tangent frame Q. Returns ((c, dim, dim), normals)."""
    embed = _graph_map(a)
    dim = x.shape[0]
    eye = torch.eye(dim, dtype=torch.float64) * h
    tangents = torch.stack([(embed(x + eye[i]) - embed(x - eye[i])) / (2 * h) for i in range(dim)], dim=1)
    second = torch.empty(dim, dim, tangents.shape[0], dtype=torch.float64)
    for i in range(dim):
        for j in range(dim):
            second[i, j] = (
                embed(x + eye[i] + eye[j])
                - embed(x + eye[i] - eye[j])
                - embed(x - eye[i] + eye[j])
                + embed(x - eye[i] - eye[j])
            ) / (4 * h * h)
    q, r = torch.linalg.qr(tangents, mode="complete")
    normals = q[:, dim:]  # (D0, c)
    lower = torch.einsum("ijd,dg->gij", second, normals)  # L^γ_ij
    r_inv = torch.linalg.inv(r[:dim, :dim])
    return r_inv.T @ lower @ r_inv, normals


def _assert_constant(t: torch.Tensor, value: float, tol: float = TOL["closed_form"]) -> None:
    torch.testing.assert_close(t, torch.full_like(t, value), rtol=tol, atol=tol)


def _invariants_by_hand(hess: torch.Tensor) -> tuple[float, float, float]:
    """(‖II‖, mean, scalar) of one point's (c, dim, dim) form, without Invariants.from_hessians."""
    dim = hess.shape[-1]
    tr = torch.stack([torch.trace(h) for h in hess])
    frob2 = float(sum((h * h).sum() for h in hess))
    return math.sqrt(frob2), float(tr.norm()) / dim, float((tr**2).sum()) - frob2


# --------------------------------------------------------------------------------------------------
# closed forms


@pytest.mark.parametrize("dim, radius, sff, mean, scalar", SPHERE_CASES)
def test_sphere_closed_forms(dim, radius, sff, mean, scalar):
    s = sphere(7, dim, radius, seed=dim)
    assert s.dim == dim and s.points.shape == (7, dim + 1) and s.name == f"sphere(d={dim}, r={radius:g})"
    _assert_constant(s.invariants.sff_norm, sff)
    _assert_constant(s.invariants.mean_curvature, mean)
    _assert_constant(s.invariants.scalar_curvature, scalar)
    _assert_constant(s.curvatures, 1 / radius)
    assert s.hessians.shape == (7, 1, dim, dim)


@pytest.mark.parametrize("k, j, radius, sff, mean, scalar, kappa", CYLINDER_CASES)
def test_cylinder_closed_forms(k, j, radius, sff, mean, scalar, kappa):
    s = cylinder(6, k, j, radius, extent=2.0, seed=3)
    assert s.dim == k + j and s.points.shape == (6, k + 1 + j)
    for field, want in [("sff_norm", sff), ("mean_curvature", mean), ("scalar_curvature", scalar)]:
        _assert_constant(getattr(s.invariants, field), want)
    torch.testing.assert_close(s.curvatures, torch.tensor(kappa, dtype=torch.float64).expand(6, -1))


def test_flat_is_flat():
    s = flat(9, 3, extent=2.0, ambient=5)
    assert s.dim == 3 and s.points.shape == (9, 5)
    for field in ("sff_norm", "mean_curvature", "scalar_curvature"):
        assert torch.equal(getattr(s.invariants, field), torch.zeros(9, dtype=torch.float64))
    assert torch.equal(s.curvatures, torch.zeros(9, 3, dtype=torch.float64))


@pytest.mark.parametrize("a, b, sff, mean", TORUS_CASES)
def test_clifford_torus_closed_forms(a, b, sff, mean):
    s = clifford_torus(8, a, b, seed=1)
    assert (
        s.dim == 2 and s.points.shape == (8, 4) and s.curvatures is None and s.hessians.shape == (8, 2, 2, 2)
    )
    _assert_constant(s.invariants.sff_norm, sff)
    _assert_constant(s.invariants.mean_curvature, mean)
    _assert_constant(s.invariants.scalar_curvature, 0.0)


# --------------------------------------------------------------------------------------------------
# points lie on the manifold


@PROPERTY
@given(
    n=st.integers(1, 16),
    dim=st.integers(1, 5),
    extra=st.integers(0, 3),
    radius=st.floats(0.1, 10.0),
    seed=st.integers(0, 2**16),
)
def test_sphere_points_on_sphere(n, dim, extra, radius, seed):
    s = sphere(n, dim, radius, ambient=dim + 1 + extra, seed=seed)
    assert s.points.shape == (n, dim + 1 + extra) and s.construction_dim == dim + 1
    full = undo_embedding(s, keep_padding=True)
    scale = TOL["on_manifold"] * _scale(s)
    assert float(_residual("sphere", dict(radius=radius), full[:, : dim + 1]).abs().max()) < scale
    if extra:  # the padding columns are zero
        assert float(full[:, dim + 1 :].abs().max()) < scale


@PROPERTY
@given(
    n=st.integers(1, 16),
    k=st.integers(1, 3),
    j=st.integers(0, 3),
    radius=st.floats(0.1, 5.0),
    extent=st.floats(0.1, 5.0),
    extra=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_cylinder_points_on_cylinder(n, k, j, radius, extent, extra, seed):
    kw = dict(sphere_dim=k, flat_dim=j, radius=radius, extent=extent)
    s = cylinder(n, ambient=k + 1 + j + extra, seed=seed, **kw)
    assert float(_residual("cylinder", kw, undo_embedding(s)).abs().max()) < TOL["on_manifold"] * _scale(s)


@PROPERTY
@given(n=st.integers(1, 16), a=st.floats(0.1, 5.0), b=st.floats(0.1, 5.0), seed=st.integers(0, 2**16))
def test_torus_coordinate_norms(n, a, b, seed):
    s = clifford_torus(n, a, b, seed=seed)
    residual = _residual("clifford_torus", dict(a=a, b=b), undo_embedding(s))
    assert float(residual.abs().max()) < TOL["on_manifold"] * _scale(s)


@PROPERTY
@given(
    n=st.integers(1, 16),
    c=st.integers(1, 3),
    dim=st.integers(1, 4),
    scale=st.floats(0.1, 5.0),
    extent=st.floats(0.05, 2.0),
    a_seed=st.integers(0, 2**16),
    seed=st.integers(0, 2**16),
)
def test_paraboloid_graph_equation(n, c, dim, scale, extent, a_seed, seed):
    a = _random_symmetric(a_seed, c, dim, scale)
    a_in = a[0] if c == 1 else a
    s = paraboloid(n, a_in, extent=extent, seed=seed)
    assert s.dim == dim and s.construction_dim == dim + c and s.hessians.shape == (n, c, dim, dim)
    y = undo_embedding(s)
    assert float(_residual("paraboloid", dict(A=a, extent=extent), y).abs().max()) < TOL[
        "on_manifold"
    ] * _scale(s)
    assert float(y[0].abs().max()) < TOL["on_manifold"] * _scale(s)  # include_origin: point 0 is x = 0
    assert (s.curvatures is None) == (c > 1)


# --------------------------------------------------------------------------------------------------
# the embedding


@pytest.mark.parametrize(
    "name, kwargs", SAMPLE_SPECS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SAMPLE_SPECS)]
)
def test_embedding_is_an_isometry(name, kwargs):
    s = _make(name, 12, seed=5, **kwargs)
    y = undo_embedding(s)
    q, t = s.rotation, s.translation
    eye = torch.eye(q.shape[0], dtype=torch.float64)
    tol = TOL["isometry"] * _scale(s)
    assert float((q.T @ q - eye).abs().max()) < 1e-13
    assert t.shape == (s.ambient,)
    assert float((_pairwise(y) - _pairwise(s.points)).abs().max()) < tol
    assert float(_residual(name, kwargs, y).abs().max()) < tol


@PROPERTY
@given(
    name_kwargs=st.sampled_from(SAMPLE_SPECS),
    n=st.integers(2, 12),
    extra=st.integers(0, 3),
    seed=st.integers(0, 2**16),
)
def test_isometry_property(name_kwargs, n, extra, seed):
    name, kwargs = name_kwargs
    base = _make(name, 1, **kwargs).construction_dim
    kwargs = {**kwargs, "ambient": max(kwargs.get("ambient", base), base + extra)}
    s = _make(name, n, seed=seed, **kwargs)
    d_y, d_x = _pairwise(undo_embedding(s)), _pairwise(s.points)
    assert float((d_y - d_x).abs().max()) < TOL["isometry"] * _scale(s)


def test_haar_orthogonal_uses_both_components_of_O_n():
    g = torch.Generator().manual_seed(0)
    dets = torch.stack([torch.linalg.det(haar_orthogonal(3, g)) for _ in range(200)])
    torch.testing.assert_close(dets.abs(), torch.ones(200, dtype=torch.float64))
    assert 60 < int((dets < 0).sum()) < 140  # about half reflections; the draws are fixed by the seed


# --------------------------------------------------------------------------------------------------
# paraboloid truth at general points


@pytest.mark.parametrize("a", PARABOLOID_AS, ids=[f"A{i}" for i in range(len(PARABOLOID_AS))])
def test_paraboloid_general_points_match_independent_route(a):
    s = paraboloid(6, a, extent=0.9, seed=11)
    x = undo_embedding(s)[:, : s.dim]
    a64 = torch.as_tensor(a, dtype=torch.float64)
    a64 = a64.unsqueeze(0) if a64.ndim == 2 else a64
    tol = TOL["independent"]
    for p in range(s.n):
        hess, normals = _independent_hessians(a64, x[p])
        sff, mean, scalar = _invariants_by_hand(hess)
        assert abs(float(s.invariants.sff_norm[p]) - sff) < tol
        assert abs(float(s.invariants.mean_curvature[p]) - mean) < tol
        assert abs(float(s.invariants.scalar_curvature[p]) - scalar) < tol
        # Σ_γ (H^γ)² is invariant to both frames: compare its spectrum
        mine = torch.linalg.eigvalsh((s.hessians[p] @ s.hessians[p]).sum(0))
        theirs = torch.linalg.eigvalsh((hess @ hess).sum(0))
        torch.testing.assert_close(mine, theirs, rtol=tol, atol=tol)
        if a64.shape[0] == 1:  # orient the QR normal like the module's, (−∇f, 1)/W
            sign = 1.0 if float(normals[-1, 0]) > 0 else -1.0
            torch.testing.assert_close(
                s.curvatures[p], torch.linalg.eigvalsh(sign * hess[0]), rtol=tol, atol=tol
            )


@PROPERTY
@given(
    dim=st.integers(1, 4),
    scale=st.floats(0.1, 5.0),
    extent=st.floats(0.05, 2.0),
    a_seed=st.integers(0, 2**16),
    seed=st.integers(0, 2**16),
)
def test_paraboloid_codim1_shape_operator_route(dim, scale, extent, a_seed, seed):
    """κ = eig(g^{-1} A / W), W = √(1+|∇f|²), g = I + ∇f∇fᵀ (non-symmetric eig, in NumPy), and the
    invariants are Σκ², |Σκ|/dim, (Σκ)² − Σκ²."""
    a = _random_symmetric(a_seed, 1, dim, scale)[0]
    s = paraboloid(8, a, extent=extent, seed=seed)
    x = undo_embedding(s)[:, :dim].numpy()
    an = a.numpy()
    for p in range(s.n):
        grad = an @ x[p]
        w = math.sqrt(1 + grad @ grad)
        shape_op = np.linalg.solve(np.eye(dim) + np.outer(grad, grad), an / w)
        kappa = np.sort(np.linalg.eigvals(shape_op).real)
        np.testing.assert_allclose(s.curvatures[p].numpy(), kappa, rtol=1e-9, atol=1e-9 * scale)
        k = s.curvatures[p]
        inv = s.invariants
        torch.testing.assert_close(inv.sff_norm[p] ** 2, (k**2).sum())
        torch.testing.assert_close(inv.mean_curvature[p], k.sum().abs() / dim)
        gauss = k.sum() ** 2 - (k**2).sum()
        torch.testing.assert_close(inv.scalar_curvature[p], gauss, atol=1e-10 * scale**2, rtol=1e-10)


@pytest.mark.parametrize("a", PARABOLOID_AS, ids=[f"A{i}" for i in range(len(PARABOLOID_AS))])
def test_paraboloid_origin_is_A(a):
    s = paraboloid(5, a, seed=2)
    a64 = torch.as_tensor(a, dtype=torch.float64)
    stack = a64.unsqueeze(0) if a64.ndim == 2 else a64
    torch.testing.assert_close(s.hessians[0], stack, rtol=0, atol=1e-15)
    want = Invariants.from_hessians(stack.unsqueeze(0))
    for field in ("sff_norm", "mean_curvature", "scalar_curvature"):
        torch.testing.assert_close(getattr(s.invariants, field)[0], getattr(want, field)[0])
    if a64.ndim == 2:
        torch.testing.assert_close(s.curvatures[0], torch.linalg.eigvalsh(a64))


@pytest.mark.parametrize("dim, radius, sff, mean, scalar", SPHERE_CASES)
def test_paraboloid_osculating_a_sphere(dim, radius, sff, mean, scalar):
    """A = I/r has the sphere's curvature at the origin, and less away from it (|κ| = 1/(r W³), 1/(r W))."""
    s = paraboloid(20, torch.eye(dim, dtype=torch.float64) / radius, extent=0.5 * radius, seed=4)
    tol = TOL["closed_form"]
    assert abs(float(s.invariants.sff_norm[0]) - sff) < tol
    assert abs(float(s.invariants.mean_curvature[0]) - mean) < tol
    assert abs(float(s.invariants.scalar_curvature[0]) - scalar) < tol
    torch.testing.assert_close(s.curvatures[0], torch.full((dim,), 1 / radius, dtype=torch.float64))
    # away from the origin, a paraboloid of revolution: radial κ = 1/(r W³), the others 1/(r W)
    x = undo_embedding(s)[1:, :dim]
    w = (1 + x.square().sum(1) / radius**2).sqrt()
    want = torch.cat([(1 / (radius * w**3))[:, None], (1 / (radius * w))[:, None].expand(-1, dim - 1)], dim=1)
    torch.testing.assert_close(s.curvatures[1:], want.sort(dim=1).values)


def test_graph_second_fundamental_form_is_symmetric_and_batched():
    a = _random_symmetric(0, 2, 3, 1.0)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    h = graph_second_fundamental_form(x, a)
    assert h.shape == (4, 2, 3, 3) and torch.equal(h, h.mT)


# --------------------------------------------------------------------------------------------------
# noise, seeds, dtype, device


@pytest.mark.parametrize(
    "name, kwargs", SAMPLE_SPECS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SAMPLE_SPECS)]
)
def test_noise_moves_points_not_truth(name, kwargs):
    clean = _make(name, 200, seed=8, **kwargs)
    noisy = _make(name, 200, seed=8, noise=0.05, **kwargs)
    assert clean.noise == 0.0 and noisy.noise == 0.05
    assert not torch.allclose(clean.points, noisy.points)
    assert torch.equal(clean.rotation, noisy.rotation) and torch.equal(clean.translation, noisy.translation)
    for field in ("sff_norm", "mean_curvature", "scalar_curvature"):
        assert torch.equal(getattr(clean.invariants, field), getattr(noisy.invariants, field))
    assert torch.equal(clean.hessians, noisy.hessians)
    assert (clean.curvatures is None and noisy.curvatures is None) or torch.equal(
        clean.curvatures, noisy.curvatures
    )
    std = float((noisy.points - clean.points).std())  # same clean points: the difference is the noise
    assert 0.04 < std < 0.06


def test_seeds_are_reproducible_and_local():
    state = torch.random.get_rng_state()
    one, two, other = sphere(10, 2, seed=3), sphere(10, 2, seed=3), sphere(10, 2, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(one.points, two.points) and torch.equal(one.rotation, two.rotation)
    assert not torch.allclose(one.points, other.points)


@pytest.mark.parametrize(
    "name, kwargs", SAMPLE_SPECS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SAMPLE_SPECS)]
)
def test_dtype_and_device_respected(name, kwargs):
    s64 = _make(name, 10, seed=1, **kwargs)
    s32 = _make(name, 10, seed=1, dtype=torch.float32, device="cpu", **kwargs)
    tensors = [
        s32.points,
        s32.rotation,
        s32.translation,
        s32.hessians,
        s32.invariants.sff_norm,
        s32.invariants.mean_curvature,
        s32.invariants.scalar_curvature,
    ]
    tensors += [] if s32.curvatures is None else [s32.curvatures]
    assert all(t.dtype == torch.float32 and t.device.type == "cpu" for t in tensors)
    tol = TOL["float32"]
    torch.testing.assert_close(s32.points, s64.points.float(), rtol=tol, atol=tol)
    torch.testing.assert_close(s32.invariants.sff_norm, s64.invariants.sff_norm.float(), rtol=tol, atol=tol)


# --------------------------------------------------------------------------------------------------
# API surface and bad input


def test_samplers_dict_and_names():
    assert set(SAMPLERS) == {"sphere", "cylinder", "flat", "paraboloid", "clifford_torus"}
    assert sphere(3, 2, 1.5).name == "sphere(d=2, r=1.5)"
    for name, kwargs in SAMPLE_SPECS:
        s = _make(name, 4, **kwargs)
        assert s.name.startswith(name + "(") and s.invariants.sff_norm.shape == (4,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.dim = 3


@pytest.mark.parametrize(
    "sampler, args, kwargs, fragment", BAD_INPUTS, ids=[f"{b[0].__name__}-{b[3][:24]}" for b in BAD_INPUTS]
)
def test_bad_input_raises_value_error_naming_the_fix(sampler, args, kwargs, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        sampler(*args, **kwargs)


@pytest.mark.parametrize(
    "args, fragment", [((2.5, 2), "n must be an integer"), ((10, True), "dim must be an integer")]
)
def test_a_count_that_is_not_an_integer_is_a_type_error(args, fragment):
    """The check shared by every integer argument of the geometry layer (see test_validation.py)."""
    with pytest.raises(TypeError, match=re.escape(fragment)):
        sphere(*args)
