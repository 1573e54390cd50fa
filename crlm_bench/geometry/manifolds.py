"""Synthetic manifolds with exact curvature, the ground truth for the estimators' tests and the demo.

Every sampler draws ``n`` points of a ``dim``-dimensional submanifold built in its *construction
coordinates* R^{D₀} (the smallest Euclidean space of the construction), pads them with zeros to
R^D (``ambient``, default D₀), and embeds them by a Haar-random rotation Q and a random
translation t:

    points = [y, 0] Qᵀ + t  (+ ε,  ε ~ N(0, noise² I_D) when ``noise > 0``).

Q and t are returned, so :func:`undo_embedding` recovers y. The true curvature is computed at the
noise-free point, in float64, and returned as :class:`~crlm_bench.geometry.invariants.Invariants`,
as the second fundamental form ``hessians`` and, where the codimension is 1, as the principal
curvatures ``curvatures``.

Conventions, matching the CAML fit f ≈ uᵀg + ½ uᵀHu (u tangent coordinates, f normal
coordinates): the second fundamental form in normal direction ν is the Hessian H^ν = ⟨∂²X, ν⟩ in an
orthonormal tangent basis, so a circle of radius r has H = 1/r with respect to its inward normal.
A principal curvature is positive when the manifold bends toward the chosen normal.

Randomness comes from a local ``torch.Generator`` seeded with ``seed``; the global RNG is never
touched. Everything is drawn and computed on the CPU in float64 and then cast to ``dtype`` and moved
to ``device``, so a seed gives the same sample (up to the cast) on every device. The draws happen in
a fixed order (construction points, rotation, translation, noise), so samples that differ only in
``noise`` share the same noise-free points, rotation and translation.

One module for every sampler (about 600 lines, above the project's ~500): each sampler is a short
function that needs the shared embedding and its exact curvature beside it, and the samplers are
read and tested side by side.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from crlm_bench.geometry._validation import check_int
from crlm_bench.geometry.invariants import Invariants

__all__ = [
    "ManifoldSample",
    "SAMPLERS",
    "clifford_torus",
    "cylinder",
    "flat",
    "graph_second_fundamental_form",
    "haar_orthogonal",
    "paraboloid",
    "sphere",
    "sphere_patches",
    "undo_embedding",
]

_F64 = torch.float64
_CPU = torch.device("cpu")
# Relative tolerance for accepting a matrix A as symmetric (it is then symmetrised exactly).
_SYMMETRY_RTOL = 1e-10


@dataclass(frozen=True, eq=False)
class ManifoldSample:
    """A point sample of a manifold with its exact curvature.

    Fields:

    - ``points`` ``(n, D)``: the sample, embedded in R^D by ``rotation`` and ``translation``, plus
      isotropic Gaussian noise of std ``noise`` added after the embedding.
    - ``dim``: intrinsic dimension d.
    - ``name``: e.g. ``"sphere(d=2, r=1.5)"``.
    - ``invariants``: :class:`Invariants` with the true per-point ``(n,)`` values at the noise-free
      points (‖II‖_F, ‖mean curvature vector‖, scalar curvature).
    - ``curvatures`` ``(n, d)`` or None: the true principal curvatures sorted ascending, where the
      construction has codimension 1 (sphere, cylinder, codimension-1 paraboloid; the flat sample
      reports zeros), else None. The sign is relative to the normal named by each sampler (positive
      when the manifold bends toward it: +1/r for a sphere of radius r and its inward normal).
      The orientation of a normal is arbitrary, so an estimator may return the spectrum up to a
      global sign flip, κ ↦ −κ (which reverses the ascending order); compare
      ``curvatures`` with both ``est`` and ``-est.flip(-1)``.
    - ``hessians`` ``(n, m, d, d)`` or None: the true second fundamental form, H^α for each of the
      construction's m normal directions α, in an orthonormal tangent basis and an orthonormal normal
      basis (bases are samplers' choices: compare basis-free quantities such as the invariants or the
      eigenvalues, not entries).
    - ``rotation`` ``(D, D)`` orthogonal Q and ``translation`` ``(D,)`` t used by the embedding.
    - ``construction_dim``: D₀, the dimension of the construction coordinates (the default
      ``ambient``); the columns D₀..D of ``[y, 0]`` are zero.
    - ``noise``: the std of the noise that was added to ``points``.

    Equality is identity (``eq=False``): fields are tensors.
    """

    points: torch.Tensor
    dim: int
    name: str
    invariants: Invariants
    curvatures: torch.Tensor | None
    hessians: torch.Tensor | None
    rotation: torch.Tensor
    translation: torch.Tensor
    construction_dim: int
    noise: float = 0.0

    @property
    def n(self) -> int:
        return self.points.shape[0]

    @property
    def ambient(self) -> int:
        return self.points.shape[1]


def undo_embedding(sample: ManifoldSample, *, keep_padding: bool = False) -> torch.Tensor:
    """The sample's points in construction coordinates: y = ((points − t) Q)[:, :D₀].

    With ``keep_padding`` the full ``(n, D)`` array is returned; its columns beyond D₀ are zero up to
    rounding for a noise-free sample (noise shows there). Dtype and device follow ``sample.points``.
    """
    full = (sample.points - sample.translation) @ sample.rotation
    return full if keep_padding else full[:, : sample.construction_dim]


def haar_orthogonal(size: int, generator: torch.Generator, dtype: torch.dtype = _F64) -> torch.Tensor:
    """A Haar-random orthogonal ``(size, size)`` matrix (Mezzadri 2007): Q of the QR decomposition of
    a standard Gaussian matrix, with each column multiplied by sign(R_ii) so the law is uniform on
    O(size). Drawn on the CPU with ``generator``."""
    size = check_int(size, "size", minimum=1, fix="pass the matrix size, an integer >= 1")
    gauss = torch.randn(size, size, generator=generator, dtype=dtype)
    q, r = torch.linalg.qr(gauss)
    signs = torch.sign(torch.diagonal(r))
    signs = torch.where(signs == 0, torch.ones_like(signs), signs)
    return q * signs


# --------------------------------------------------------------------------------------------------
# input checks


def _check_positive(value, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value}; pass e.g. {name}=1.0")
    return value


def _check_noise(noise) -> float:
    try:
        noise = float(noise)
    except (TypeError, ValueError):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}") from None
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0 (the std of the added noise), got {noise}")
    return noise


def _check_dtype(dtype) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(
            f"dtype must be a real floating-point torch dtype such as torch.float64, got {dtype!r}"
        )
    return dtype


def _resolve_ambient(ambient, minimal: int, what: str) -> int:
    if ambient is None:
        return minimal
    ambient = check_int(ambient, "ambient", minimum=1, fix=f"pass ambient >= {minimal} or None")
    if ambient < minimal:
        raise ValueError(
            f"ambient={ambient} is smaller than {minimal}, the minimal embedding dimension of {what}; "
            f"pass ambient >= {minimal}, or ambient=None for {minimal}"
        )
    return ambient


# --------------------------------------------------------------------------------------------------
# shared machinery


def _generator(seed) -> torch.Generator:
    seed = check_int(seed, "seed", minimum=0, fix="pass a non-negative integer seed")
    g = torch.Generator(device=_CPU)
    g.manual_seed(seed)
    return g


def _uniform_sphere(n: int, k: int, radius: float, g: torch.Generator) -> torch.Tensor:
    """``(n, k+1)``: uniform on S^k(radius) ⊂ R^{k+1} (normalised Gaussians)."""
    z = torch.randn(n, k + 1, generator=g, dtype=_F64)
    norms = z.norm(dim=1, keepdim=True)
    while bool((norms == 0).any()):  # probability zero, but exact
        bad = (norms == 0).squeeze(1)
        z[bad] = torch.randn(int(bad.sum()), k + 1, generator=g, dtype=_F64)
        norms = z.norm(dim=1, keepdim=True)
    return radius * z / norms


def _uniform_ball(n: int, k: int, radius: float, g: torch.Generator) -> torch.Tensor:
    """``(n, k)``: uniform in the ball of the given radius in R^k (direction × radius·U^{1/k})."""
    directions = _uniform_sphere(n, k - 1, 1.0, g)
    radii = radius * torch.rand(n, 1, generator=g, dtype=_F64).pow(1.0 / k)
    return directions * radii


def _finish(
    *,
    y: torch.Tensor,
    dim: int,
    name: str,
    hessians: torch.Tensor,
    curvatures: torch.Tensor | None,
    ambient: int,
    noise: float,
    g: torch.Generator,
    dtype: torch.dtype,
    device,
) -> ManifoldSample:
    """Embed construction points ``y`` ``(n, D₀)`` in R^ambient, add noise, cast, package."""
    n, d0 = y.shape
    rotation = haar_orthogonal(ambient, g)
    translation = torch.randn(ambient, generator=g, dtype=_F64)
    padded = torch.cat([y, y.new_zeros(n, ambient - d0)], dim=1)
    points = padded @ rotation.T + translation
    if noise > 0:
        points = points + noise * torch.randn(n, ambient, generator=g, dtype=_F64)
    invariants = Invariants.from_hessians(hessians)

    def cast(t: torch.Tensor) -> torch.Tensor:
        return t.to(device=device, dtype=dtype)

    return ManifoldSample(
        points=cast(points),
        dim=dim,
        name=name,
        invariants=Invariants(
            sff_norm=cast(invariants.sff_norm),
            mean_curvature=cast(invariants.mean_curvature),
            scalar_curvature=cast(invariants.scalar_curvature),
        ),
        curvatures=None if curvatures is None else cast(curvatures),
        hessians=cast(hessians),
        rotation=cast(rotation),
        translation=cast(translation),
        construction_dim=d0,
        noise=noise,
    )


# --------------------------------------------------------------------------------------------------
# samplers


def sphere(
    n: int,
    dim: int,
    radius: float = 1.0,
    *,
    ambient: int | None = None,
    noise: float = 0.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> ManifoldSample:
    """``n`` points uniform on the round sphere S^dim(r) ⊂ R^{dim+1}, r = ``radius``.

    With the inward normal, H = I_dim / r at every point, so
    ‖II‖ = √dim / r, mean curvature = 1/r, scalar curvature = dim(dim−1)/r²,
    principal curvatures all 1/r. Minimal ambient dimension dim + 1.
    """
    n = check_int(n, "n", minimum=1, fix="pass n >= 1 points")
    dim = check_int(dim, "dim", minimum=1, fix="pass dim >= 1 (S^1 is the circle)")
    r = _check_positive(radius, "radius")
    ambient = _resolve_ambient(ambient, dim + 1, f"sphere S^{dim}")
    noise, dtype = _check_noise(noise), _check_dtype(dtype)
    g = _generator(seed)

    y = _uniform_sphere(n, dim, r, g)
    hessians = (torch.eye(dim, dtype=_F64) / r).expand(n, 1, dim, dim).clone()
    curvatures = torch.full((n, dim), 1.0 / r, dtype=_F64)
    return _finish(
        y=y,
        dim=dim,
        name=f"sphere(d={dim}, r={r:g})",
        hessians=hessians,
        curvatures=curvatures,
        ambient=ambient,
        noise=noise,
        g=g,
        dtype=dtype,
        device=device,
    )


def cylinder(
    n: int,
    sphere_dim: int,
    flat_dim: int,
    radius: float = 1.0,
    *,
    extent: float = 1.0,
    ambient: int | None = None,
    noise: float = 0.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> ManifoldSample:
    """``n`` points of the generalised cylinder S^k(r) × [−extent, extent]^j ⊂ R^{k+1} × R^j.

    k = ``sphere_dim`` ≥ 1, j = ``flat_dim`` ≥ 0, dim = k + j; the sphere factor is uniform, the flat
    factor uniform in the cube. With the inward normal of the sphere factor and the tangent basis
    ordered (sphere, flat), H = diag(1/r ×k, 0 ×j), so
    ‖II‖ = √k / r, mean curvature = k / (r (k+j)), scalar curvature = k(k−1)/r²,
    principal curvatures (0 ×j, 1/r ×k) ascending. Construction coordinates (sphere, flat);
    minimal ambient dimension k + 1 + j.
    """
    n = check_int(n, "n", minimum=1, fix="pass n >= 1 points")
    k = check_int(sphere_dim, "sphere_dim", minimum=1, fix="pass sphere_dim >= 1 (1 gives a circle factor)")
    j = check_int(flat_dim, "flat_dim", minimum=0, fix="pass flat_dim >= 0")
    r = _check_positive(radius, "radius")
    extent = _check_positive(extent, "extent")
    dim = k + j
    ambient = _resolve_ambient(ambient, k + 1 + j, f"the cylinder S^{k} x R^{j}")
    noise, dtype = _check_noise(noise), _check_dtype(dtype)
    g = _generator(seed)

    round_part = _uniform_sphere(n, k, r, g)
    flat_part = extent * (2 * torch.rand(n, j, generator=g, dtype=_F64) - 1)
    y = torch.cat([round_part, flat_part], dim=1)
    diag = torch.cat([torch.full((k,), 1.0 / r, dtype=_F64), torch.zeros(j, dtype=_F64)])
    hessians = torch.diag(diag).expand(n, 1, dim, dim).clone()
    curvatures = torch.sort(diag).values.expand(n, dim).clone()
    return _finish(
        y=y,
        dim=dim,
        name=f"cylinder(k={k}, j={j}, r={r:g}, extent={extent:g})",
        hessians=hessians,
        curvatures=curvatures,
        ambient=ambient,
        noise=noise,
        g=g,
        dtype=dtype,
        device=device,
    )


def flat(
    n: int,
    dim: int,
    *,
    extent: float = 1.0,
    ambient: int | None = None,
    noise: float = 0.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> ManifoldSample:
    """``n`` points uniform in the cube [−extent, extent]^dim; every curvature is zero.

    Minimal ambient dimension dim (pass ``ambient > dim`` to give it a normal space). ``hessians`` is
    ``(n, 1, dim, dim)`` zeros (one zero normal direction, so shapes match the codimension-1
    samplers; any number of zero directions has the same invariants) and ``curvatures`` ``(n, dim)``
    zeros.
    """
    n = check_int(n, "n", minimum=1, fix="pass n >= 1 points")
    dim = check_int(dim, "dim", minimum=1, fix="pass dim >= 1")
    extent = _check_positive(extent, "extent")
    ambient = _resolve_ambient(ambient, dim, f"the flat R^{dim}")
    noise, dtype = _check_noise(noise), _check_dtype(dtype)
    g = _generator(seed)

    y = extent * (2 * torch.rand(n, dim, generator=g, dtype=_F64) - 1)
    hessians = torch.zeros(n, 1, dim, dim, dtype=_F64)
    curvatures = torch.zeros(n, dim, dtype=_F64)
    return _finish(
        y=y,
        dim=dim,
        name=f"flat(d={dim}, extent={extent:g})",
        hessians=hessians,
        curvatures=curvatures,
        ambient=ambient,
        noise=noise,
        g=g,
        dtype=dtype,
        device=device,
    )


def _inv_sqrt_spd(m: torch.Tensor) -> torch.Tensor:
    """M^{-1/2} of a batch of symmetric positive-definite matrices, by eigendecomposition."""
    evals, evecs = torch.linalg.eigh(m)
    return (evecs * evals.rsqrt().unsqueeze(-2)) @ evecs.mT


def _check_quadratic_forms(A) -> torch.Tensor:
    """A as a float64 CPU stack ``(c, dim, dim)`` of symmetric matrices, or ValueError."""
    try:
        a = torch.as_tensor(A, dtype=_F64).detach().to(device=_CPU)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"A must be a (dim, dim) or (c, dim, dim) array of numbers: {err}") from None
    if a.ndim not in (2, 3) or a.shape[-1] != a.shape[-2]:
        raise ValueError(
            f"A must have shape (dim, dim) for a hypersurface or (c, dim, dim) for codimension c, "
            f"got {tuple(a.shape)}; pass square symmetric matrices"
        )
    if a.ndim == 2:
        a = a.unsqueeze(0)
    c, dim = a.shape[0], a.shape[-1]
    if dim < 1:
        raise ValueError("A has dim = 0; pass matrices of size dim >= 1")
    if c < 1:
        raise ValueError("A is an empty stack (c = 0); pass at least one (dim, dim) matrix")
    if not bool(torch.isfinite(a).all()):
        raise ValueError("A has non-finite entries; pass finite matrices")
    asym = (a - a.mT).abs().max()
    scale = max(1.0, float(a.abs().max()))
    if float(asym) > _SYMMETRY_RTOL * scale:
        raise ValueError(
            f"A must be symmetric (max |A - Aᵀ| = {float(asym):.3g}); pass (A + A.T) / 2 "
            f"(for a stack, (A + A.transpose(-1, -2)) / 2), which defines the same quadratic form"
        )
    return (a + a.mT) / 2


def graph_second_fundamental_form(x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """Second fundamental form ``(n, c, dim, dim)`` of the graph X(x) = (x, ½ xᵀA_α x) at ``x``.

    ``x`` is ``(n, dim)``, ``A`` ``(c, dim, dim)`` symmetric. With J the c × dim Jacobian (rows
    ∇f_α = A_α x): tangent vectors T = [I; J], metric g = I + JᵀJ; normal vectors N = [−Jᵀ; I] with
    Gram matrix G = I + JJᵀ; ∂_ij X = (0, (A_α)_ij), so ⟨∂_ij X, N_β⟩ = (A_β)_ij. In the orthonormal
    frames T g^{-1/2} and N G^{-1/2}:

        H^γ = g^{-1/2} (Σ_β (G^{-1/2})_{βγ} A_β) g^{-1/2}.

    For c = 1, G = W² = 1 + |∇f|², the normal is (−∇f, 1)/W and H = g^{-1/2} (A/W) g^{-1/2}, whose
    eigenvalues are those of the shape operator g^{-1}A/W. At x = 0, H^α = A_α.
    """
    c, dim = A.shape[0], A.shape[-1]
    jac = torch.einsum("aij,nj->nai", A, x)  # (n, c, dim)
    metric = torch.eye(dim, dtype=x.dtype, device=x.device) + jac.mT @ jac  # (n, dim, dim)
    normal_gram = torch.eye(c, dtype=x.dtype, device=x.device) + jac @ jac.mT  # (n, c, c)
    g_is = _inv_sqrt_spd(metric)
    n_is = _inv_sqrt_spd(normal_gram)
    mixed = torch.einsum("nbg,bij->ngij", n_is, A)  # (n, c, dim, dim)
    hess = g_is.unsqueeze(1) @ mixed @ g_is.unsqueeze(1)
    return (hess + hess.mT) / 2  # exact symmetry


def paraboloid(
    n: int,
    A,
    *,
    extent: float = 0.5,
    include_origin: bool = True,
    ambient: int | None = None,
    noise: float = 0.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> ManifoldSample:
    """``n`` points of the graph X(x) = (x, f(x)), f_α(x) = ½ xᵀA_α x, x uniform in the ball of radius
    ``extent`` in R^dim.

    ``A`` is a symmetric ``(dim, dim)`` matrix (a hypersurface, codimension 1) or a stack
    ``(c, dim, dim)`` (codimension c). With ``include_origin`` point 0 is exactly x = 0, where
    H^α = A_α and the principal curvatures (c = 1) are eig(A).

    The truth at every point is :func:`graph_second_fundamental_form`: H^γ =
    g^{-1/2}(Σ_β (G^{-1/2})_{βγ} A_β) g^{-1/2} with g = I + JᵀJ, G = I + JJᵀ, J the Jacobian of f.
    For c = 1 the normal is (−∇f, 1)/W, W = √(1 + |∇f|²), and ``curvatures`` are the ascending
    eigenvalues of g^{-1/2}(A/W)g^{-1/2} (positive where the graph bends toward +z, e.g. A ≻ 0).
    A = I/r has the curvature of S^dim(r) at the origin. Construction coordinates (x, f(x));
    minimal ambient dimension dim + c.
    """
    n = check_int(n, "n", minimum=1, fix="pass n >= 1 points")
    a = _check_quadratic_forms(A)
    c, dim = a.shape[0], a.shape[-1]
    extent = _check_positive(extent, "extent")
    ambient = _resolve_ambient(ambient, dim + c, f"a {dim}-dimensional graph of codimension {c}")
    noise, dtype = _check_noise(noise), _check_dtype(dtype)
    g = _generator(seed)

    x = _uniform_ball(n, dim, extent, g)
    if include_origin:
        x[0] = 0.0
    f = 0.5 * torch.einsum("ni,aij,nj->na", x, a, x)
    y = torch.cat([x, f], dim=1)
    hessians = graph_second_fundamental_form(x, a)
    curvatures = torch.linalg.eigvalsh(hessians[:, 0]) if c == 1 else None
    return _finish(
        y=y,
        dim=dim,
        name=f"paraboloid(d={dim}, c={c}, extent={extent:g})",
        hessians=hessians,
        curvatures=curvatures,
        ambient=ambient,
        noise=noise,
        g=g,
        dtype=dtype,
        device=device,
    )


def clifford_torus(
    n: int,
    a: float = 1.0,
    b: float = 1.0,
    *,
    ambient: int | None = None,
    noise: float = 0.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> ManifoldSample:
    """``n`` points of the flat torus S¹(a) × S¹(b) ⊂ R⁴, (a cos θ, a sin θ, b cos φ, b sin φ), with θ, φ
    uniform on [0, 2π) (uniform in area, since the area element ab dθ dφ is constant).

    dim 2, codimension 2. With the two inward radial normals and the tangent basis (∂θ/a, ∂φ/b),
    H¹ = diag(1/a, 0), H² = diag(0, 1/b), so ‖II‖ = √(1/a² + 1/b²), mean curvature =
    √(1/a² + 1/b²)/2, scalar curvature = 0 (the torus is intrinsically flat). ``curvatures`` is None
    (codimension 2). Minimal ambient dimension 4.
    """
    n = check_int(n, "n", minimum=1, fix="pass n >= 1 points")
    a = _check_positive(a, "a")
    b = _check_positive(b, "b")
    ambient = _resolve_ambient(ambient, 4, "the Clifford torus S^1 x S^1")
    noise, dtype = _check_noise(noise), _check_dtype(dtype)
    g = _generator(seed)

    angles = 2 * math.pi * torch.rand(n, 2, generator=g, dtype=_F64)
    theta, phi = angles[:, 0], angles[:, 1]
    y = torch.stack([a * theta.cos(), a * theta.sin(), b * phi.cos(), b * phi.sin()], dim=1)
    hessians = torch.zeros(n, 2, 2, 2, dtype=_F64)
    hessians[:, 0, 0, 0] = 1.0 / a
    hessians[:, 1, 1, 1] = 1.0 / b
    return _finish(
        y=y,
        dim=2,
        name=f"clifford_torus(a={a:g}, b={b:g})",
        hessians=hessians,
        curvatures=None,
        ambient=ambient,
        noise=noise,
        g=g,
        dtype=dtype,
        device=device,
    )


@dataclass(frozen=True, eq=False)
class Neighbourhoods:
    """Points with K neighbours each, drawn directly (no kNN), and the true invariants at the points."""

    points: torch.Tensor  # (n, D)
    neighbours: torch.Tensor  # (n, K, D)
    dim: int
    invariants: Invariants


def sphere_patches(
    n: int,
    k: int,
    dim: int,
    radius: float = 1.0,
    *,
    ambient: int,
    spread: float = 0.2,
    noise: float = 0.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Neighbourhoods:
    """``n`` points on S^dim(r), each with ``k`` neighbours drawn around it, in a wide R^ambient.

    Built for perturbation-like neighbourhoods at sizes where a kNN sample is out of reach (the
    benchmark case: K = 1023, D = 16384): each neighbour is the exponential map at the point of a
    tangent offset w ~ N(0, (spread·r)² I_dim), i.e. r (cos(|w|/r) p + sin(|w|/r) w/|w|). The
    sphere is placed in R^ambient by a random orthonormal frame of dim + 1 columns (a Haar frame,
    not a full D × D rotation, so D can be large) and a random translation; isotropic noise of
    std ``noise`` is then added to points and neighbours alike. The truth is the sphere's.
    """
    n = check_int(n, "n", minimum=1, fix="pass n >= 1 points")
    k = check_int(k, "k", minimum=1, fix="pass k >= 1 neighbours")
    dim = check_int(dim, "dim", minimum=1, fix="pass dim >= 1")
    r = _check_positive(radius, "radius")
    ambient = _resolve_ambient(ambient, dim + 1, f"sphere S^{dim}")
    spread = _check_positive(spread, "spread")
    noise, dtype = _check_noise(noise), _check_dtype(dtype)
    g = _generator(seed)
    centre = _uniform_sphere(n, dim, 1.0, g)  # unit vectors (n, dim+1)
    w = torch.randn(n, k, dim + 1, generator=g, dtype=_F64) * spread * r
    w = w - (w * centre[:, None, :]).sum(-1, keepdim=True) * centre[:, None, :]  # tangent at centre
    length = w.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    nbs = r * (torch.cos(length / r) * centre[:, None, :] + torch.sin(length / r) * w / length)
    frame = torch.linalg.qr(torch.randn(ambient, dim + 1, generator=g, dtype=_F64)).Q
    shift = torch.randn(ambient, generator=g, dtype=_F64)
    pts, nbs = (r * centre) @ frame.T + shift, nbs @ frame.T + shift
    if noise:
        pts = pts + noise * torch.randn(pts.shape, generator=g, dtype=_F64)
        nbs = nbs + noise * torch.randn(nbs.shape, generator=g, dtype=_F64)
    hessians = (torch.eye(dim, dtype=_F64) / r).expand(n, 1, dim, dim)
    truth = Invariants.from_hessians(hessians)
    cast = dict(dtype=dtype, device=device)
    return Neighbourhoods(
        points=pts.to(**cast),
        neighbours=nbs.to(**cast),
        dim=dim,
        invariants=Invariants(
            *(getattr(truth, f).to(**cast) for f in ("sff_norm", "mean_curvature", "scalar_curvature"))
        ),
    )


SAMPLERS: dict[str, Callable[..., ManifoldSample]] = {
    "sphere": sphere,
    "cylinder": cylinder,
    "flat": flat,
    "paraboloid": paraboloid,
    "clifford_torus": clifford_torus,
}
"""The samplers by name, for the demo (a plain dict, not one of the harness's registries)."""
