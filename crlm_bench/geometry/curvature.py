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

Units. A curvature is 1/length, so scaling every point by s divides every curvature by s. Each
neighbourhood's displacements are multiplied by a power of two (exact) that brings their largest
magnitude to about 1 before anything is squared, and the result is put back in the input's units
at the end, so this holds in floating point over the whole range of the dtype: nothing overflows
or underflows on the way, and the pseudo-inverse's relative cutoff, which would otherwise discard
the quadratic terms of every neighbourhood smaller than about 1e-4 (float32; 1e-13 in float64),
sees the same design matrix at every scale. ``rescale=False`` skips this and gives the released
code's arithmetic, cutoff included (docs/design.md §6). A result that does not fit the dtype in
the input's units (a scalar curvature of 1e40 in float32, say) raises OverflowError.

Half precision. Float16 and bfloat16 input is fitted in float32 and the result is rounded back to
the input's dtype: torch has no half-precision eigensolver on the CPU, and a fit in half precision
would mean nothing anyway (the Gram route resolves only directions above √(16 eps) ≈ 12 % of the
largest in float16, 35 % in bfloat16). The inputs are exact in float32, so only the result is
rounded.

One module (about 600 lines, above the project's ~500): both fit routes (SVD and Gram), their
scaling and their chunking must agree to the last digit, and are easiest to check side by side.
"""

from __future__ import annotations

import warnings

import torch

from ._scale import compute_dtype, exponent, pow2, restore
from ._validation import as_float_tensor, check_finite, check_int, check_points
from .invariants import Invariants

#: Bytes allowed for the per-chunk intermediates (chunk × K × max(K, D) × itemsize).
CHUNK_BYTES = 512 * 2**20


class UnderdeterminedFitWarning(UserWarning):
    """A quadratic fit with fewer neighbours than coefficients (the paper's input probe)."""


def n_coefficients(dim: int) -> int:
    """Number of coefficients of one quadratic fit: dim linear + dim(dim + 1)/2 quadratic."""
    dim = check_int(dim, "dim", minimum=0)
    return dim + dim * (dim + 1) // 2


# --------------------------------------------------------------------------------------------
# input checks


def _check_inputs(points, neighbours, dim, allow_underdetermined) -> tuple[torch.Tensor, torch.Tensor, int]:
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
    dim = check_int(dim, "dim", minimum=1, fix="dim is the intrinsic dimension (tangent directions)")
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
    return points, neighbours, dim


def _chunk_points(
    n: int, k: int, big_d: int, itemsize: int, device: torch.device, *, stored: bool = True
) -> int:
    """Points per chunk: as many as ``CHUNK_BYTES`` allows and, where Δ is stored on a CPU, no more
    than its threads.

    Batched products already keep every thread busy from one point per thread on; a larger chunk
    only adds fresh pages to its displacement buffer, and faulting those in costs more than the
    subtraction that fills them (measured: 0.13 s against 0.02 s for 8 × 1023 × 16384 floats).
    Where Δ is not stored (``stored=False``, :class:`_Displacements`) there is no such buffer, and
    fewer, larger chunks save the fixed costs of each (measured on the benchmark's patches: 4
    points a chunk 3 to 6 % faster than 2); the chunks are then of equal size, as far as n allows
    (8 points in two chunks of 4, not 7 and 1: 13 % slower). The budget still counts K × D per
    point, for the points that go to the Gram route.
    """
    per_point = k * (max(k, big_d) + k) * itemsize
    step = max(1, min(n, CHUNK_BYTES // max(1, per_point)))
    if not stored:
        return -(-n // -(-n // step))  # n over the fewest chunks, evenly
    if device.type == "cpu":
        step = min(step, max(1, torch.get_num_threads()))
    return step


#: Rows of each neighbourhood whose displacements choose its power-of-two scale.
SCALE_SAMPLE_ROWS = 16
#: The scaled displacements Δ' of a point must have ‖Δ'‖_F ≤ 2^this · √(KD), i.e. be no larger
#: than if every entry were 2^this (so no sum of their squares comes near overflow); the sample
#: misses by more only where a few neighbours lie far further out than the rest.
SCALE_SLACK = 8


def _sampled_exponents(points: torch.Tensor, neighbours: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Per point, e with max |Δ| · 2^-e about 1, from ``SCALE_SAMPLE_ROWS`` evenly spaced neighbours.

    A sample, so that choosing the scale costs no pass over the neighbours; :func:`_by_chunk`
    checks the scaled Δ and takes :func:`_exact_exponents` where the sample missed. Where the
    sampled rows all coincide with the point, the exact scale is taken at once.
    """
    stride = max(1, neighbours.shape[1] // SCALE_SAMPLE_ROWS)
    sample = neighbours[:, ::stride].to(torch.float64) - points[:, None, :].to(torch.float64)
    maxabs = sample.abs().amax((1, 2))
    e = exponent(maxabs, dtype)
    zero = maxabs == 0
    if bool(zero.any()):
        e[zero] = _exact_exponents(points[zero], neighbours[zero], dtype)
    return e


def _exact_exponents(points: torch.Tensor, neighbours: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Per point, e with max |Δ| · 2^-e in [0.5, 1): max over k of |y_kj − x_j| is the larger of
    max_k y_kj − x_j and x_j − min_k y_kj, taken in float64 so that nothing overflows."""
    x = points.to(torch.float64)
    above = neighbours.amax(1).to(torch.float64) - x
    below = x - neighbours.amin(1).to(torch.float64)
    return exponent(torch.maximum(above, below).amax(-1), dtype)


def _fill(
    delta: torch.Tensor, points: torch.Tensor, neighbours: torch.Tensor, e: torch.Tensor
) -> torch.Tensor:
    """delta ← (neighbours − point) · 2^-e, in one pass: both terms are scaled exactly, so the one
    rounding is that of the difference, and a difference too large for the dtype cannot overflow."""
    scale = pow2(-e, delta.dtype)[:, None, None]
    return torch.addcmul(-(points.to(delta.dtype)[:, None, :] * scale), neighbours, scale, out=delta)


def _exact_where(e: torch.Tensor, rows: torch.Tensor, points: torch.Tensor, neighbours: torch.Tensor, dtype):
    """``e`` with the exact exponent of the points ``rows`` (a boolean mask)."""
    e = e.clone()
    if bool(rows.any()):
        e[rows] = _exact_exponents(points[rows], neighbours[rows], dtype)
    return e


def _by_chunk(points: torch.Tensor, neighbours: torch.Tensor, rescale: bool, fit, *, lazy: bool = False):
    """Yield ``(fit(Δ'), e)`` for consecutive chunks of points, Δ' = (neighbours − point) · 2^-e.

    ``fit`` maps Δ' ``(chunk, K, D)`` to a tuple of tensors, one row per point, in the units of Δ'.
    Every Δ' is written into one buffer allocated for the first chunk, so ``fit`` must return
    results computed from it, never views of it; with ``lazy``, ``fit`` gets Δ' as
    :class:`_Displacements` instead, formed where it is read and never stored whole. e comes from
    :func:`_sampled_exponents`; a point whose Δ' is then larger than ``SCALE_SLACK`` allows (its
    norm, one cheap reduction over the stored Δ', or taken during the first pass over a lazy one)
    gets its exact scale instead. The choice depends on the data only through quantities that
    scale with it, so for s a power of two the Δ' of s·x are those of x. With ``rescale=False``,
    e = 0.
    """
    n, k, big_d = neighbours.shape
    dtype = compute_dtype(points.dtype)
    step = _chunk_points(n, k, big_d, torch.finfo(dtype).bits // 8, points.device, stored=not lazy)
    bound = 2.0**SCALE_SLACK * (k * big_d) ** 0.5 if rescale else None  # on ‖Δ'‖_F
    buffer = None
    for start in range(0, n, step):
        pts, nbs = points[start : start + step], neighbours[start : start + step]
        if rescale:
            e = _sampled_exponents(pts, nbs, dtype)
        else:
            e = torch.zeros(pts.shape[0], dtype=torch.int64, device=points.device)
        if lazy:
            try:
                out = fit(_Displacements(pts, nbs, e, dtype, bound))
            except _ScaleMissed as missed:  # refit the chunk: the check comes before any result
                e = _exact_where(e, missed.args[0], pts, nbs, dtype)
                out = fit(_Displacements(pts, nbs, e, dtype))
            yield out, e
            continue
        if buffer is None:
            buffer = torch.empty((pts.shape[0], k, big_d), dtype=dtype, device=points.device)
        delta = _fill(buffer[: pts.shape[0]], pts, nbs, e)
        if rescale:
            missed = ~(torch.linalg.vector_norm(delta.view(delta.shape[0], -1), dim=-1) <= bound)
            e = _exact_where(e, missed, pts, nbs, dtype)  # also where the norm overflowed
            for i in missed.nonzero().flatten().tolist():
                _fill(delta[i : i + 1], pts[i : i + 1], nbs[i : i + 1], e[i : i + 1])
        yield fit(delta), e


class _ScaleMissed(Exception):
    """The first pass over a chunk's Δ' found points whose sampled scale leaves ‖Δ'‖_F above the
    bound of ``SCALE_SLACK``: ``args[0]``, a boolean mask. Caught by :func:`_by_chunk`."""


#: Columns of Δ' per slice of a pass of :class:`_Displacements` on a CPU: the slice is formed in a
#: buffer that stays in cache, and the products X ΔΔᵀ and X ΔΔᵀ Xᵀ are summed slice by slice, so
#: the second product reads it from cache and XΔ is never kept whole (measured on the benchmark
#: case: 20 % faster than the two whole products on a stored Δ).
FUSED_COLUMNS = 256


class _Displacements:
    """Δ' = (neighbours − point) · 2^-e of a chunk of points, ``(b, K, D)``, formed where it is read.

    On a CPU, a pass over Δ' fills one slice of ``FUSED_COLUMNS`` columns at a time into a small
    buffer that stays in cache while the products use it, with the same one rounding per entry as
    :func:`_fill`: a pass then reads the neighbours once, as it would read a stored Δ', but no
    K × D buffer is written, faulted in or kept, and the products run on contiguous slices
    (measured on the benchmark's noisy patch: a block's pass 25 ms instead of 29 ms on a stored
    Δ', and the 11 to 36 ms of filling a stored one saved). Off a CPU, Δ' is formed whole once.
    """

    def __init__(self, points, neighbours, e, dtype, bound: float | None = None):
        self.points, self.neighbours, self.e, self.dtype = points, neighbours, e, dtype
        self.shape, self.device = neighbours.shape, neighbours.device
        self._bound = bound  # until the first whole pass: then _ScaleMissed if a norm exceeds it
        self._whole = None
        if self.device.type != "cpu":
            self._whole = self.whole()

    def _check(self, norms: torch.Tensor) -> None:
        """Raise :class:`_ScaleMissed` where ``norms`` (‖Δ'‖_F, ``(b,)``) exceed the bound; called
        once, by the first whole pass."""
        missed = ~(norms <= self._bound)  # also where a norm overflowed
        self._bound = None
        if bool(missed.any()):
            raise _ScaleMissed(missed)

    def _fill_columns(self, columns, out: torch.Tensor | None = None) -> torch.Tensor:
        """:func:`_fill` of the columns ``columns`` (half-precision points are promoted to the
        float32 scale's dtype, exactly, by the product)."""
        scale = pow2(-self.e, self.dtype)[:, None, None]
        return torch.addcmul(
            -(self.points[:, None, columns] * scale), self.neighbours[..., columns], scale, out=out
        )

    def slices(self):
        """Δ' in consecutive column slices (on a CPU one buffer, overwritten by the next slice)."""
        if self._whole is not None:
            yield self._whole
            return
        b, k, big_d = self.shape
        buffer = torch.empty(b, k, min(FUSED_COLUMNS, big_d), dtype=self.dtype, device=self.device)
        norms = []
        for start in range(0, big_d, FUSED_COLUMNS):
            width = min(FUSED_COLUMNS, big_d - start)
            part = self._fill_columns(slice(start, start + width), buffer[..., :width])
            if self._bound is not None:
                norms.append(torch.linalg.vector_norm(part, dim=(1, 2)))
            yield part
        if self._bound is not None:
            self._check(torch.linalg.vector_norm(torch.stack(norms, -1), dim=-1))

    def columns(self, index: torch.Tensor) -> torch.Tensor:
        """Δ' of the columns ``index`` ``(b, K, len(index))``."""
        return self._fill_columns(index)

    def whole(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Δ' stored whole, of every point or of the points ``rows`` (a boolean mask)."""
        if rows is not None:
            return _Displacements(self.points[rows], self.neighbours[rows], self.e[rows], self.dtype).whole()
        if self._whole is not None:
            return self._whole
        out = _fill(
            torch.empty(self.shape, dtype=self.dtype, device=self.device),
            self.points,
            self.neighbours,
            self.e,
        )
        if self._bound is not None:
            self._check(torch.linalg.vector_norm(out.view(self.shape[0], -1), dim=-1))
        return out


# --------------------------------------------------------------------------------------------
# the coordinates of the neighbours in the singular basis


def _orient(coords: torch.Tensor) -> torch.Tensor:
    """Flip each column of ``coords`` ``(b, K, r)`` so its largest-magnitude entry is positive."""
    idx = coords.abs().argmax(dim=1, keepdim=True)
    sign = torch.sign(coords.gather(1, idx))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    return coords * sign


def _coordinates_svd(delta: torch.Tensor, r: int) -> torch.Tensor:
    """Original algorithm: SVD of the D × K displacement matrix; coordinates Δ U = V S.

    In float64 where D > K, through the R factor of Δᵀ = QR: R = U_R S Vᵀ has Δᵀ's singular
    values and right singular vectors, so V S comes from the SVD of the K × K matrix R, without
    forming U or the product Δ U (measured: 3.4× faster at K = 127, D = 12 544). Orthogonal
    transformations only, so nothing is squared: it agrees with the direct route to ~1e-15. In
    float32, the released code's precision, the direct route is kept: the two differ by ~1e-6 in
    the coordinates, which a fit at the neighbourhood's own scale turns into ~1e-5 in MAPC, and
    the ``authors`` preset must give the released numbers to 1e-5.
    """
    k, big_d = delta.shape[-2:]
    if big_d <= k or delta.dtype != torch.float64:
        u, s, _ = torch.linalg.svd(delta.mT, full_matrices=False)  # u: (b, D, min(K, D))
        return delta @ u[..., :r]
    rfactor = torch.linalg.qr(delta.mT, mode="r").R  # (b, K, K)
    _, s, vh = torch.linalg.svd(rfactor)
    return vh.mT[..., :r] * s[..., None, :r]


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
    rescale: bool = True,
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
        rescale: fit each neighbourhood at a power-of-two scale where its displacements are about
            1, so that the result scales exactly like 1/length (module docstring); False gives the
            released code's arithmetic.

    Returns:
        ``(n, m, d)`` with m = min(K, D) − d: for each normal direction, in descending
        singular-value order, the ascending eigenvalues of its Hessian. Device and dtype follow
        ``points`` (float16 and bfloat16 are fitted in float32, module docstring); OverflowError
        if a curvature does not fit the dtype.
    """
    if method not in ("gram", "svd"):
        raise ValueError(f"method must be 'gram' or 'svd', got {method!r}")
    points, neighbours, dim = _check_inputs(points, neighbours, dim, allow_underdetermined)
    _, k, big_d = neighbours.shape
    r = min(k, big_d)
    coordinates = _coordinates_gram if method == "gram" else _coordinates_svd

    def fit(delta):
        h = _hessians(_orient(coordinates(delta, r)), dim)
        return (torch.linalg.eigvalsh(h), h) if return_hessians else (torch.linalg.eigvalsh(h),)

    kappas, hessians = [], []
    for out, e in _by_chunk(points, neighbours, rescale, fit):
        kappas.append(restore(out[0], -e[:, None, None], points.dtype, "principal curvatures"))
        if return_hessians:
            hessians.append(restore(out[1], -e[:, None, None, None], points.dtype, "Hessians"))
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


#: Columns of Δ sampled for the warm start of the block Krylov iteration, and the power steps on them.
SKETCH_COLUMNS = 256
SKETCH_STEPS = 2

#: Columns of a Krylov block beyond the ``dim`` sought.
BLOCK_EXTRA = 8

#: Share of the Gram route's cost (ΔΔᵀ and its eigendecomposition) that the Krylov iteration may
#: spend on a chunk before the points it has not resolved go to the Gram route. With the warm start
#: and the iteration's own small products this keeps a point that never converges under 1.25× the
#: Gram route.
KRYLOV_BUDGET = 0.2
#: From the third block on, a point whose Ritz residual fell by less than this factor in the last
#: block goes to the Gram route at once: its top-``dim`` subspace has no usable gap (the normal
#: directions carry as much energy as the last tangent ones), and more blocks would not resolve it.
STALL_FACTOR = 0.5
#: After the first block, a point whose smallest Ritz value is at least this share of the dim-th
#: goes to the Gram route at once: its dim-th eigenvalue sits in a cluster wider than the block (the
#: noise floor of a patch fitted with more dimensions than it has), which no budget resolves.
CLUSTER_RATIO = 0.8
#: Default relative Ritz residual at which a point's tangent subspace is taken as converged, per
#: dtype. In float32 the invariants at a residual of 1e-4 are as close to the float64 ones as the
#: float32 Gram and SVD routes' own (measured on the benchmark's patch: ‖II‖ 9e-7, mean 5e-6,
#: scalar 3e-5, against the Gram route's 5e-6, 1e-5 and 1e-4), and that patch converges in two
#: blocks instead of the three 1e-5 took; a residual of 1e-2 errs up to 3e-3 on a patch of many
#: curved normal directions (tests/geometry). Float64's default is likewise near its rounding.
DEFAULT_TOL = {torch.float64: 1e-11, torch.float32: 1e-4}
#: Fewer blocks than this in the budget (a small K × D, or a large dim), or a rank min(K, D) of at
#: most two blocks, and the Gram route is the cheaper one.
MIN_BLOCKS = 3


def _times_gram(x: torch.Tensor, delta: _Displacements) -> torch.Tensor:
    """X ΔΔᵀ ``(b, r, K)`` for X ``(b, r, K)``, slice by slice: Σ_c (XΔ_c) Δ_cᵀ."""
    out = x.new_zeros(x.shape)
    for part in delta.slices():
        out.baddbmm_(x @ part, part.mT)
    return out


def _gram_form(x: torch.Tensor, delta: _Displacements) -> torch.Tensor:
    """X ΔΔᵀ Xᵀ ``(b, r, r)`` for X ``(b, r, K)``, slice by slice: Σ_c (XΔ_c)(XΔ_c)ᵀ."""
    out = x.new_zeros(x.shape[0], x.shape[1], x.shape[1])
    for part in delta.slices():
        xd = x @ part
        out.baddbmm_(xd, xd.mT)
    return out


def _block_budget(k: int, big_d: int, q: int) -> int:
    """Krylov blocks of width q worth at most ``KRYLOV_BUDGET`` of the Gram route, by a flop count.

    Gram route: 2K²D for ΔΔᵀ and about 10K³ for its eigendecomposition; one block: 4KDq for ΔᵀY
    and Δ(ΔᵀY). Measured on this project's 2-core CPU the ratio of the two was within 2× of this
    count from K = 255 to 1023 and D = 2048 to 16384.
    """
    gram = 2 * k * k * big_d + 10 * k**3
    block = 4 * k * big_d * q
    return int(KRYLOV_BUDGET * gram / block)


def _warm_start(delta: _Displacements, q: int, gen: torch.Generator) -> torch.Tensor:
    """An orthonormal start ``(b, K, q)`` for the block Krylov iteration on ΔΔᵀ.

    A random block, improved by power steps on ``SKETCH_COLUMNS`` columns of Δ drawn uniformly
    (``Δ_S Δ_Sᵀ`` is (s/D)·ΔΔᵀ in expectation): each step reads K × s entries instead of K × D, so
    the start costs a few percent of one block and, when Δ's energy is spread over its
    coordinates, lowers the residual of every block by one to two orders, which saves a block
    where that crosses the tolerance (measured on a tighter patch of the benchmark's kind: 3
    blocks instead of 4).
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
    sketch = delta.columns(columns)
    for _ in range(SKETCH_STEPS):
        y = torch.linalg.qr(sketch @ (sketch.mT @ y)).Q
    return y


def _tangent_coordinates(
    delta: _Displacements, dim: int, tol: float, max_blocks: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Coordinates of the neighbours in the top-``dim`` right singular subspace of Δ, ``(b, K, dim)``.

    Block Krylov iteration on A = ΔΔᵀ in the K-dimensional neighbour space (block q = dim +
    ``BLOCK_EXTRA``, started from a sketch of Δ's columns, :func:`_warm_start`), with a
    Rayleigh–Ritz step on the whole Krylov basis Q = [Y₀, Y₁, …]: each block costs one pass over Δ
    (ΔΔᵀY, :func:`_times_gram`), the products A·Q of earlier blocks are kept, so the projection
    QᵀAQ costs no further pass, and neither the K × K Gram matrix nor a QR of a D-long block is
    formed. For a Ritz pair (θ, Qs),
    the right singular vector is ΔᵀQs θ^(-1/2), so the coordinates are (AQ)s θ^(-1/2). Where many
    normal directions sit just below the tangent ones, the Krylov basis converges in a fraction of
    the steps that a subspace iteration on the last block alone needs (measured on 64 curved
    normal directions with noise: 5 blocks against 11).

    A point is done once every relative Ritz residual ‖Av − θv‖ / θ₁ is at most ``tol`` (its
    coordinates are then kept as they are). It is given up (left to the Gram route) when, after
    the first block, its Ritz values show a cluster across the dim-th (``CLUSTER_RATIO``); when,
    from the third block on, its residual fell by less than ``STALL_FACTOR`` in one block; or
    after ``max_blocks``. Returns the coordinates, the mask of points that converged and the
    number of blocks run.
    """
    b, k, big_d = delta.shape
    q = min(dim + BLOCK_EXTRA, k, big_d)
    # the basis Q and its image AQ, stored transposed ((b, columns, K), rows contiguous) and filled
    # block by block
    basis = torch.empty(b, q * max_blocks, k, dtype=delta.dtype, device=delta.device)
    images = torch.empty_like(basis)
    basis[:, :q] = _warm_start(delta, q, torch.Generator(device=delta.device).manual_seed(0x5EED)).mT
    tiny = torch.finfo(delta.dtype).tiny
    coords = basis.new_zeros(b, k, dim)
    converged = torch.zeros(b, dtype=torch.bool, device=delta.device)
    stalled = torch.zeros_like(converged)
    previous = None
    for block in range(1, max_blocks + 1):
        c = q * block
        images[:, c - q : c] = _times_gram(basis[:, c - q : c], delta)  # (ΔΔᵀY)ᵀ = YᵀΔΔᵀ
        q_t, aq_t = basis[:, :c], images[:, :c]
        projected = q_t @ aq_t.mT
        ritz, s = torch.linalg.eigh((projected + projected.mT) / 2)  # ascending Ritz pairs
        theta, s = ritz.flip(-1)[..., :dim].clamp_min(tiny), s.flip(-1)[..., :dim]
        a_v = aq_t.mT @ s  # (b, K, dim)
        resid = (a_v - (q_t.mT @ s) * theta.unsqueeze(-2)).norm(dim=-2)  # (b, dim)
        resid = (resid / theta[..., :1]).amax(-1)
        done = (resid <= tol) & ~converged & ~stalled
        coords = torch.where(done[:, None, None], a_v / theta.sqrt().unsqueeze(-2), coords)
        converged |= done
        if block == 1:  # the block's last Ritz value is as large as the dim-th: a cluster across both
            stalled |= ~converged & (ritz[..., 0] >= CLUSTER_RATIO * theta[..., -1])
        elif block >= 3:
            stalled |= ~converged & (resid > STALL_FACTOR * previous)
        if bool((converged | stalled).all()) or block == max_blocks:
            break
        previous = resid
        # the next block: the last image with the basis projected out twice ("twice is enough" keeps
        # it orthogonal to working precision, even where it lies almost in the span), then a QR
        y = images[:, c - q : c]
        for _ in range(2):
            y = y - (y @ q_t.mT) @ q_t
        basis[:, c : c + q] = torch.linalg.qr(y.mT).Q.mT
    return coords, converged, block


def _invariants_from_m(big_m: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sff_norm, mean_curvature, scalar_curvature) from M = Σ_α c^α c^αᵀ ``(b, q, q)``, c^α the
    quadratic coefficients of normal coordinate α: Σ_α ‖H^α‖²_F = Σ ω_ij M_ij,ij with ω = 4 on the
    diagonal pairs and 2 off it, and Σ_α (tr H^α)² = wᵀ M w with w = 2 on diagonal pairs and 0 off
    it. Nothing depends on the basis of the normal space or on m."""
    i, j = torch.triu_indices(dim, dim, device=big_m.device)
    diag = (i == j).to(big_m.dtype)
    omega = 2.0 + 2.0 * diag  # 4 on diagonal pairs, 2 off
    w = 2.0 * diag
    frob2 = (torch.diagonal(big_m, dim1=-2, dim2=-1) * omega).sum(-1).clamp_min(0)
    tr2 = torch.einsum("i,bij,j->b", w, big_m, w).clamp_min(0)
    return frob2.sqrt(), tr2.sqrt() / dim, tr2 - frob2


def _invariants_from_tangent(
    delta: _Displacements, u: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Invariants of the quadratic fit of all normal coordinates, from tangent coordinates ``u``.

    With P_q the quadratic rows of pinv(Φ), the coefficients of normal coordinate α are
    c^α = P_q f^α. Because P_q u = 0 (Φ has u as its first columns) and Δ = u Uᵀ + f Fᵀ with
    orthonormal bases, M = Σ_α c^α c^αᵀ = (P_q Δ)(P_q Δ)ᵀ, formed from P_qΔ, or from P_q ΔΔᵀ P_qᵀ
    when that is cheaper; the normal coordinates are never needed.
    """
    dim = u.shape[-1]
    pq = _quadratic_projector(u)  # (b, q, K)
    q, k = pq.shape[-2], delta.shape[-2]
    if q * (k + q) <= k * k:  # P_qΔ is the cheaper product (few coefficients, the usual case)
        big_m = _gram_form(pq, delta)
    else:  # many coefficients (large d, or an under-determined fit): through the Gram matrix
        whole = delta.whole()
        big_m = pq @ (whole @ whole.mT) @ pq.mT
    # subtract the tangent part that P_q u leaves when the fit is under-determined (0 otherwise)
    pu = pq @ u
    return _invariants_from_m(big_m - pu @ pu.mT, dim)


def _invariants_gram(delta: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Gram route: the invariants of :func:`principal_curvatures`'s Hessians (method "gram").

    Its eigendecomposition of ΔΔᵀ gives the coordinates in every direction, so M is formed from the
    normal coordinates f themselves, M = (P_q f)(P_q f)ᵀ (a product with K × m, not K × D), and
    equals the reference's. (Through ΔΔᵀ instead, P_q ΔΔᵀ P_qᵀ − (P_q u)(P_q u)ᵀ would be a
    difference of terms of the tangent's size, whose rounding leaves √eps of it in the invariants.)
    """
    coords = _coordinates_gram(delta, min(delta.shape[-2], delta.shape[-1]))
    u, f = coords[..., :dim], coords[..., dim:]
    coefficients = _quadratic_projector(u) @ f  # (b, q, m)
    return _invariants_from_m(coefficients @ coefficients.mT, dim)


def _invariants_chunk(
    delta: _Displacements, dim: int, tol: float, max_iter: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Invariants of one chunk: the Krylov route, and the Gram route for the points it leaves."""
    _, k, big_d = delta.shape
    q = min(dim + BLOCK_EXTRA, k, big_d)
    # the Krylov basis (q columns a block) must fit in the K-dimensional neighbour space
    blocks = min(max_iter, _block_budget(k, big_d, q), k // q)
    if blocks < MIN_BLOCKS or min(k, big_d) <= 2 * q:
        return _invariants_gram(delta.whole(), dim)
    u, ok, _ = _tangent_coordinates(delta, dim, tol, blocks)
    if not bool(ok.any()):
        return _invariants_gram(delta.whole(), dim)
    out = _invariants_from_tangent(delta, u)
    if not bool(ok.all()):
        bad = ~ok
        for whole, part in zip(out, _invariants_gram(delta.whole(bad), dim)):
            whole[bad] = part
    return out


def curvature_invariants(
    points: torch.Tensor,
    neighbours: torch.Tensor,
    dim: int,
    *,
    allow_underdetermined: bool = False,
    tol: float | None = None,
    max_iter: int = 10,
    rescale: bool = True,
) -> Invariants:
    """Rotation-invariant curvature statistics of the CAML fit, per point.

    Equal to ``Invariants.from_hessians`` of :func:`principal_curvatures`'s Hessians, but
    computed without per-direction Hessians and, where Δ has a spectral gap after the tangent
    directions, without the K × K eigendecomposition: the tangent subspace comes from a few thin
    block Krylov steps, started from a sketch of Δ's columns (converged to a relative Ritz
    residual ``tol``, default ``DEFAULT_TOL``: 1e-4 in float32, 1e-11 in float64). A point
    without a gap (its first Ritz values show a cluster across the dim-th, or its residual
    stalls), or that has not converged within ``max_iter`` blocks or the budget of
    :func:`_block_budget`, goes to the Gram eigendecomposition, whose invariants are those of
    :func:`principal_curvatures`: the result is exact either way, and a point without a gap costs
    little more than the Gram route (measured on the benchmark's no-gap patch: 1.1×, against 1.5×
    to 6.5× before the switch). On a CPU the K × D displacements are never stored (only those of
    the points that go to the Gram route): each pass over them forms them from the neighbours
    slice by slice (:class:`_Displacements`).

    Args:
        points: ``(n, D)``; neighbours: ``(n, K, D)``; dim: intrinsic dimension.
        max_iter: at most this many Krylov blocks (an integer ≥ 1).
        rescale: as in :func:`principal_curvatures`.

    Returns:
        :class:`Invariants` of ``(n,)`` tensors (``sff_norm``, ``mean_curvature``,
        ``scalar_curvature``), device and dtype following ``points`` (half precision is computed
        in float32); OverflowError if one does not fit the dtype.
    """
    points, neighbours, dim = _check_inputs(points, neighbours, dim, allow_underdetermined)
    max_iter = check_int(max_iter, "max_iter", minimum=1, fix="it caps the Krylov blocks")
    if tol is None:
        tol = DEFAULT_TOL[compute_dtype(points.dtype)]
    parts: list[list[torch.Tensor]] = [[], [], []]
    fit = lambda d: _invariants_chunk(d, dim, tol, max_iter)  # noqa: E731
    for out, e in _by_chunk(points, neighbours, rescale, fit, lazy=True):
        for part, value, power in zip(parts, out, (1, 1, 2)):
            part.append(restore(value, -power * e, points.dtype, "curvature invariants"))
    return Invariants(*(torch.cat(p) for p in parts))
