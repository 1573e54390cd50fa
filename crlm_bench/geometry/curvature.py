"""Principal curvatures of a sampled submanifold by local quadratic fits (CAML, stopped at the Hessians).

Li, *Curvature-aware manifold learning*, arXiv 1706.07167 (2018), as used by Kaufman & Azencot
(ICML 2023). For a point x with neighbours y₁ … y_K in R^D:

1. displacements Δ = (y_k − x) ∈ R^{K×D};
2. SVD Δᵀ = U S Vᵀ; the coordinates of the neighbours in the singular basis are Δ U = V S. The
   first ``dim`` columns are tangent coordinates u ∈ R^{K×dim}, the next m = min(K, D) − dim are
   normal coordinates f ∈ R^{K×m}, in descending singular-value order;
3. least squares f ≈ uᵀg + ½ uᵀ H u over the K neighbours, design matrix
   Φ = [u_i | u_i u_j (i ≤ j)] with p = dim + dim(dim + 1)/2 columns, solved with the
   pseudo-inverse; H_ii = 2 c_ii and H_ij = H_ji = c_ij for the quadratic coefficients c;
4. the principal curvatures along normal direction α are the eigenvalues of H^α.

The orientation of every singular vector is arbitrary. To make results reproducible and the two
methods comparable, each coordinate column is oriented so that its entry of largest magnitude is
positive. A normal direction's curvatures are therefore defined up to this convention (flipping a
normal negates its spectrum); the :class:`~crlm_bench.geometry.invariants.Invariants` do not depend
on it at all.
"""

from __future__ import annotations

import warnings

import torch

from ._validation import as_float_tensor, check_finite, check_points
from .invariants import Invariants

#: Bytes allowed for the per-chunk intermediates (chunk × K × max(K, D) × itemsize).
CHUNK_BYTES = 512 * 2**20


class UnderdeterminedFitWarning(UserWarning):
    """A quadratic fit with fewer neighbours than coefficients (the paper's input probe)."""


def n_coefficients(dim: int) -> int:
    """Number of coefficients of one quadratic fit: dim linear + dim(dim + 1)/2 quadratic."""
    return dim + dim * (dim + 1) // 2


# --------------------------------------------------------------------------------------------
# input checks


def _check_inputs(points, neighbours, dim, allow_underdetermined) -> tuple[torch.Tensor, torch.Tensor]:
    points = check_points(points, min_points=1)
    neighbours = as_float_tensor(neighbours, "neighbours")
    n, big_d = points.shape
    if neighbours.ndim != 3 or neighbours.shape[0] != n or neighbours.shape[2] != big_d:
        raise ValueError(
            f"neighbours must have shape (n, K, D) = ({n}, K, {big_d}) to match points "
            f"{tuple(points.shape)}, got {tuple(neighbours.shape)}"
        )
    check_finite(neighbours, "neighbours")
    if neighbours.dtype != points.dtype or neighbours.device != points.device:
        raise ValueError(
            f"points ({points.dtype}, {points.device}) and neighbours ({neighbours.dtype}, "
            f"{neighbours.device}) must share dtype and device; convert one with .to(...)"
        )
    k = neighbours.shape[1]
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    if dim >= min(k, big_d):
        raise ValueError(
            f"dim = {dim} leaves no normal direction: it must be below min(K, D) = min({k}, {big_d}); "
            "use more neighbours or a smaller intrinsic dimension"
        )
    p = n_coefficients(dim)
    if k < p:
        msg = (
            f"the quadratic fit is under-determined: K = {k} neighbours for {p} coefficients "
            f"(dim = {dim} needs K ≥ dim + dim(dim+1)/2 = {p})"
        )
        if not allow_underdetermined:
            raise ValueError(
                msg + "; use more neighbours, or pass allow_underdetermined=True to take the "
                "minimum-norm solution as the paper's input probe does"
            )
        warnings.warn(
            msg + "; taking the minimum-norm least-squares solution", UnderdeterminedFitWarning, stacklevel=3
        )
    return points, neighbours


def _chunk_points(n: int, k: int, big_d: int, itemsize: int, device: torch.device) -> int:
    """Points per chunk: as many as ``CHUNK_BYTES`` allows and, on a CPU, no more than its threads.

    Batched products already keep every thread busy from one point per thread on; a larger chunk
    only adds fresh pages to its displacement buffer, and faulting those in costs more than the
    subtraction that fills them (measured: 0.13 s against 0.02 s for 8 × 1023 × 16384 floats).
    """
    per_point = k * (max(k, big_d) + k) * itemsize
    step = max(1, min(n, CHUNK_BYTES // max(1, per_point)))
    if device.type == "cpu":
        step = min(step, max(1, torch.get_num_threads()))
    return step


def _displacements(points: torch.Tensor, neighbours: torch.Tensor):
    """Yield Δ = neighbours − point ``(chunk, K, D)`` for consecutive chunks of points.

    Every Δ is written into one buffer allocated for the first chunk, so it is valid only until
    the next one is yielded: callers keep results computed from it, never views of it.
    """
    n, k, big_d = neighbours.shape
    step = _chunk_points(n, k, big_d, points.element_size(), points.device)
    buffer = None
    for start in range(0, n, step):
        sl = slice(start, min(n, start + step))
        if buffer is None:
            buffer = points.new_empty((sl.stop - sl.start, k, big_d))
        delta = buffer[: sl.stop - sl.start]
        torch.sub(neighbours[sl], points[sl, None, :], out=delta)
        yield delta


# --------------------------------------------------------------------------------------------
# the coordinates of the neighbours in the singular basis


def _orient(coords: torch.Tensor) -> torch.Tensor:
    """Flip each column of ``coords`` ``(b, K, r)`` so its largest-magnitude entry is positive."""
    idx = coords.abs().argmax(dim=1, keepdim=True)
    sign = torch.sign(coords.gather(1, idx))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    return coords * sign


def _coordinates_svd(delta: torch.Tensor, r: int) -> torch.Tensor:
    """Original algorithm: SVD of the D × K displacement matrix; coordinates Δ U = V S."""
    u, s, _ = torch.linalg.svd(delta.mT, full_matrices=False)  # u: (b, D, min(K, D))
    return delta @ u[..., :r]


#: Gram eigenvalues below this multiple of eps · λ_max are rounding noise (measured: ≤ 4 eps).
GRAM_NOISE_FLOOR = 16.0


def _coordinates_gram(delta: torch.Tensor, r: int) -> torch.Tensor:
    """The same coordinates from the K × K Gram matrix ΔΔᵀ = V S² Vᵀ: V S = V √λ.

    Squaring loses the directions with σ below √(16 eps) σ_max (about 6e-8 σ_max in float64,
    1.4e-3 σ_max in float32): their eigenvalues are rounding noise, so their coordinates are set
    to 0 rather than to √noise. Such directions carry no measurable curvature in the SVD either.
    """
    gram = delta @ delta.mT
    evals, evecs = torch.linalg.eigh(gram)  # ascending
    evals = evals.flip(-1)[..., :r]
    evecs = evecs.flip(-1)[..., :r]
    floor = GRAM_NOISE_FLOOR * torch.finfo(delta.dtype).eps * evals[..., :1].clamp_min(0)
    evals = torch.where(evals > floor, evals, torch.zeros_like(evals))
    return evecs * evals.sqrt().unsqueeze(-2)


# --------------------------------------------------------------------------------------------
# the quadratic fit


def _design(u: torch.Tensor) -> torch.Tensor:
    """Φ = [u_i | u_i u_j, i ≤ j] for tangent coordinates ``u`` ``(b, K, dim)`` → ``(b, K, p)``."""
    dim = u.shape[-1]
    i, j = torch.triu_indices(dim, dim, device=u.device)
    return torch.cat([u, u[..., i] * u[..., j]], dim=-1)


def _hessians_from_coefficients(quad: torch.Tensor, dim: int) -> torch.Tensor:
    """Hessians ``(..., dim, dim)`` from quadratic coefficients ``(..., dim(dim+1)/2)``:
    H_ii = 2c_ii, H_ij = c_ij."""
    i, j = torch.triu_indices(dim, dim, device=quad.device)
    h = quad.new_zeros(*quad.shape[:-1], dim, dim)
    h[..., i, j] = quad
    return h + h.mT  # diagonal doubled, off-diagonal mirrored


def _quadratic_projector(u: torch.Tensor) -> torch.Tensor:
    """Rows of pinv(Φ) that give the quadratic coefficients: ``(b, dim(dim+1)/2, K)``."""
    dim = u.shape[-1]
    return torch.linalg.pinv(_design(u))[..., dim:, :]


def _hessians(coords: torch.Tensor, dim: int) -> torch.Tensor:
    """Hessian of every normal coordinate: coords ``(b, K, r)`` → ``(b, r − dim, dim, dim)``."""
    u, f = coords[..., :dim], coords[..., dim:]
    quad = _quadratic_projector(u) @ f  # (b, q, m)
    return _hessians_from_coefficients(quad.mT, dim)


def principal_curvatures(
    points: torch.Tensor,
    neighbours: torch.Tensor,
    dim: int,
    *,
    method: str = "gram",
    allow_underdetermined: bool = False,
    return_hessians: bool = False,
):
    """Principal curvatures of every point by the CAML quadratic fit (module docstring).

    Args:
        points: ``(n, D)``.
        neighbours: ``(n, K, D)``, the K neighbours of each point.
        dim: intrinsic dimension d (tangent directions), ``1 ≤ d < min(K, D)``.
        method: ``"svd"`` — the original algorithm, an SVD of each D × K displacement matrix;
            ``"gram"`` — the same coordinates from the K × K Gram matrix (one GEMM and one
            symmetric eigendecomposition; agrees with "svd" to ~1e-8 relative in float64).
        allow_underdetermined: accept K < d + d(d+1)/2 (minimum-norm fit, with a warning),
            as the paper's input probe (K = 2d) requires.
        return_hessians: also return the Hessians ``(n, m, d, d)``.

    Returns:
        ``(n, m, d)`` with m = min(K, D) − d: for each normal direction, in descending
        singular-value order, the ascending eigenvalues of its Hessian. Device and dtype follow
        ``points``.
    """
    if method not in ("gram", "svd"):
        raise ValueError(f"method must be 'gram' or 'svd', got {method!r}")
    points, neighbours = _check_inputs(points, neighbours, dim, allow_underdetermined)
    _, k, big_d = neighbours.shape
    r = min(k, big_d)
    coordinates = _coordinates_gram if method == "gram" else _coordinates_svd
    kappas, hessians = [], []
    for delta in _displacements(points, neighbours):
        h = _hessians(_orient(coordinates(delta, r)), dim)
        kappas.append(torch.linalg.eigvalsh(h))
        if return_hessians:
            hessians.append(h)
    kappa = torch.cat(kappas)
    return (kappa, torch.cat(hessians)) if return_hessians else kappa


def mapc(curvatures: torch.Tensor) -> float:
    """Mean absolute principal curvature over every entry of ``curvatures`` (any shape).

    The paper's MAPC: the mean over points × normal directions × tangent directions, so it is
    diluted by the number of normal directions m (a sphere Sᵈ(r) gives 1 / (r·m)).
    """
    curvatures = as_float_tensor(curvatures, "curvatures")
    if curvatures.numel() == 0:
        raise ValueError("mapc of an empty tensor is undefined")
    check_finite(curvatures.reshape(max(1, curvatures.shape[0] if curvatures.ndim else 1), -1), "curvatures")
    return float(curvatures.abs().mean())


# --------------------------------------------------------------------------------------------
# invariants without per-direction Hessians


#: Columns of Δ sampled for the warm start of the subspace iteration, and the power steps on them.
SKETCH_COLUMNS = 256
SKETCH_STEPS = 2


def _warm_start(delta: torch.Tensor, q: int, gen: torch.Generator) -> torch.Tensor:
    """An orthonormal start ``(b, K, q)`` for the subspace iteration on ΔΔᵀ.

    A random block, improved by power steps on ``SKETCH_COLUMNS`` columns of Δ drawn uniformly
    (``Δ_S Δ_Sᵀ`` is (s/D)·ΔΔᵀ in expectation): each step reads K × s entries instead of K × D, so
    the start costs a few percent of one iteration and, when Δ's energy is spread over its
    coordinates, saves about one (measured on the benchmark's spectrum: 3 iterations instead of 4).
    When it is not (a few coordinates carry the manifold), the sampled columns miss them and the
    start is no better than random; the iteration and its residual test are the same either way,
    so only the speed depends on the sketch.
    """
    b, k, big_d = delta.shape
    y = torch.linalg.qr(torch.randn(b, k, q, generator=gen, device=delta.device, dtype=delta.dtype)).Q
    s = min(SKETCH_COLUMNS, big_d // 8)
    if s < 2 * q:  # too few columns to sketch: a pass over Δ itself is cheap anyway
        return y
    columns = torch.randperm(big_d, generator=gen, device=delta.device)[:s].sort().values
    sketch = torch.index_select(delta, -1, columns)
    for _ in range(SKETCH_STEPS):
        y = torch.linalg.qr(sketch @ (sketch.mT @ y)).Q
    return y


def _tangent_coordinates(
    delta: torch.Tensor, dim: int, tol: float, max_iter: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates of the neighbours in the top-``dim`` right singular subspace of Δ, ``(b, K, dim)``.

    Block subspace iteration on ΔΔᵀ in the K-dimensional neighbour space (block dim + 8, started
    from a sketch of Δ's columns, :func:`_warm_start`), with a Rayleigh–Ritz step: Δ is touched
    only through thin products (K × D × block), and neither the K × K Gram matrix nor a QR of a
    D-long block is formed. With Y orthonormal (K × q),
    W = ΔᵀY, WᵀW = w θ wᵀ: the Ritz right vectors W w θ^(-1/2) are orthonormal, so the coordinates
    Δ W w θ^(-1/2) are those of an orthonormal tangent basis. Returns the coordinates and a mask of
    points whose relative Ritz residual ‖ΔΔᵀv − θv‖ / θ₁ is still above ``tol`` after ``max_iter``.
    """
    _, k, big_d = delta.shape
    q = min(dim + 8, k, big_d)
    y = _warm_start(delta, q, torch.Generator(device=delta.device).manual_seed(0x5EED))
    tiny = torch.finfo(delta.dtype).tiny
    for _ in range(max_iter):
        w_t = y.mT @ delta  # (ΔᵀY)ᵀ, (b, q, D): the row-major product is twice as fast here
        theta, w = torch.linalg.eigh(w_t @ w_t.mT)  # ascending Ritz values and vectors
        theta, w = theta.flip(-1)[..., :dim].clamp_min(tiny), w.flip(-1)[..., :dim]
        y_next = (w_t @ delta.mT).mT  # ΔΔᵀY (b, K, q), again in the faster layout
        coords = (y_next @ w) / theta.sqrt().unsqueeze(-2)  # Δ · (W w θ^-1/2)
        resid = (y_next @ w - (y @ w) * theta.unsqueeze(-2)).norm(dim=-2)  # (b, dim)
        converged = (resid / theta[..., :1]).amax(-1) <= tol
        if bool(converged.all()):
            break
        y = torch.linalg.qr(y_next).Q
    return coords, converged


def _invariants_from_tangent(delta: torch.Tensor, u: torch.Tensor) -> Invariants:
    """Invariants of the quadratic fit of all normal coordinates, from tangent coordinates ``u``.

    With P_q the quadratic rows of pinv(Φ), the coefficients of normal coordinate α are
    c^α = P_q f^α (M below is formed from P_qΔ, or from P_q ΔΔᵀ P_qᵀ when that is cheaper).
    Because P_q u = 0 (Φ has u as its first columns) and Δ = u Uᵀ + f Fᵀ with orthonormal bases,
    Σ_α c^α c^αᵀ = (P_q Δ)(P_q Δ)ᵀ = M. Then Σ_α ‖H^α‖²_F = Σ ω_ij M_ij,ij with ω = 4 on the
    diagonal pairs and 2 off it, and Σ_α (tr H^α)² = wᵀ M w with w = 2 on diagonal pairs and 0
    off it. Nothing depends on the basis of the normal space or on m.
    """
    dim = u.shape[-1]
    pq = _quadratic_projector(u)  # (b, q, K)
    q, k = pq.shape[-2], delta.shape[-2]
    if q * (k + q) <= k * k:  # P_qΔ is the cheaper product (few coefficients, the usual case)
        pd = pq @ delta  # (b, q, D)
        big_m = pd @ pd.mT
    else:  # many coefficients (large d, or an under-determined fit): through the Gram matrix
        big_m = pq @ (delta @ delta.mT) @ pq.mT
    # subtract the tangent part that P_q u leaves when the fit is under-determined (0 otherwise)
    pu = pq @ u
    big_m = big_m - pu @ pu.mT
    i, j = torch.triu_indices(dim, dim, device=u.device)
    diag = (i == j).to(u.dtype)
    omega = 2.0 + 2.0 * diag  # 4 on diagonal pairs, 2 off
    w = 2.0 * diag
    frob2 = (torch.diagonal(big_m, dim1=-2, dim2=-1) * omega).sum(-1).clamp_min(0)
    tr2 = torch.einsum("i,bij,j->b", w, big_m, w).clamp_min(0)
    return Invariants(sff_norm=frob2.sqrt(), mean_curvature=tr2.sqrt() / dim, scalar_curvature=tr2 - frob2)


def curvature_invariants(
    points: torch.Tensor,
    neighbours: torch.Tensor,
    dim: int,
    *,
    allow_underdetermined: bool = False,
    tol: float | None = None,
    max_iter: int = 10,
) -> Invariants:
    """Rotation-invariant curvature statistics of the CAML fit, per point.

    Equal to ``Invariants.from_hessians`` of :func:`principal_curvatures`'s Hessians, but
    computed without per-direction Hessians and, where Δ has a spectral gap after the tangent
    directions, without the K × K eigendecomposition: the tangent subspace comes from a few thin
    subspace iterations, started from a sketch of Δ's columns (converged to a relative Ritz
    residual ``tol``, default 1e-5 in float32 and 1e-11 in float64); points that do not converge
    in ``max_iter`` iterations fall back to the Gram eigendecomposition, so the result is exact
    either way.

    Args:
        points: ``(n, D)``; neighbours: ``(n, K, D)``; dim: intrinsic dimension.

    Returns:
        :class:`Invariants` of ``(n,)`` tensors (``sff_norm``, ``mean_curvature``,
        ``scalar_curvature``), device and dtype following ``points``.
    """
    points, neighbours = _check_inputs(points, neighbours, dim, allow_underdetermined)
    if tol is None:
        tol = 1e-11 if points.dtype == torch.float64 else 1e-5
    _, k, big_d = neighbours.shape
    parts = []
    for delta in _displacements(points, neighbours):
        if min(k, big_d) <= 2 * (dim + 8):
            u = _coordinates_gram(delta, dim)
        else:
            u, ok = _tangent_coordinates(delta, dim, tol, max_iter)
            if not bool(ok.all()):
                bad = ~ok
                u = u.clone()
                u[bad] = _coordinates_gram(delta[bad], dim)
        parts.append(_invariants_from_tangent(delta, u))
    return Invariants(
        **{
            f: torch.cat([getattr(p, f) for p in parts])
            for f in ("sff_norm", "mean_curvature", "scalar_curvature")
        }
    )
