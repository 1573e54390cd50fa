"""Intrinsic and linear dimension of a point cloud.

- :func:`twonn`: the Two-NN estimator of Facco, d'Errico, Rodriguez & Laio (Sci. Rep. 7, 12140,
  2017) in the variant of Ansuini, Laio, Macke & Zoccolan (NeurIPS 2019) that the paper uses.
- :func:`pca_dimension`: the paper's "linear dimension", the number of principal components that
  explain a given fraction of the variance of the standardised features.
"""

from __future__ import annotations

import logging
import math
import warnings

import torch

from ._scale import exponent, ldexp_
from ._validation import check_points
from .neighbours import scaled_knn

log = logging.getLogger(__name__)

#: Share of dropped points (duplicates or ties) above which :func:`twonn` warns.
DROP_WARNING_SHARE = 0.10


class DuplicatePointsWarning(UserWarning):
    """Many points were dropped by TwoNN because they coincide with or tie their neighbours."""


def twonn(points: torch.Tensor, fraction: float = 0.9) -> float:
    """Two-NN intrinsic dimension of ``points`` ``(n, D)``.

    For each point, μ = r₂ / r₁ with r₁, r₂ the distances to its first and second nearest
    neighbours. Under local uniformity μ is Pareto distributed, P(μ ≤ x) = 1 − x^(−d), so
    −log(1 − F(μ)) = d · log μ (Facco et al. 2017, eq. 3). Variant of Ansuini et al. (2019):

    1. drop points with r₁ = 0 (duplicates) or r₁ = r₂ (μ = 1 carries no information);
    2. sort the N kept μ ascending and set the empirical F(μ_i) = i / N, i = 1 … N;
    3. drop the last two (where 1 − F = 0 and its neighbour dominate the fit);
    4. fit −log(1 − F) = d · log μ by least squares through the origin on the first
       ``floor(fraction · N)`` pairs: d = Σ xy / Σ x².

    A warning (:class:`DuplicatePointsWarning`) is issued when more than 10 % of the points are
    dropped in step 1. Only ratios of distances enter, so the estimate does not depend on the scale
    of ``points`` (the distances are measured at a power-of-two scale where nothing overflows or
    underflows, :func:`~crlm_bench.geometry.knn`).
    """
    points = check_points(points)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    n = points.shape[0]
    _, dist, _ = scaled_knn(points, 2, torch.arange(n, device=points.device))
    dist = dist.to(torch.float64)
    r1, r2 = dist[:, 0], dist[:, 1]
    keep = (r1 > 0) & (r2 > r1)
    dropped = n - int(keep.sum())
    if dropped > DROP_WARNING_SHARE * n:
        warnings.warn(
            f"twonn dropped {dropped} of {n} points ({dropped / n:.0%}) whose nearest neighbour is a "
            "duplicate or ties the second; the estimate rests on the remaining points",
            DuplicatePointsWarning,
            stacklevel=2,
        )
    mu = torch.sort(r2[keep] / r1[keep]).values
    big_n = mu.shape[0]
    n_fit = min(math.floor(fraction * big_n), big_n - 2)
    if n_fit < 1:
        raise ValueError(
            f"twonn needs at least 3 distinct, untied points; only {big_n} of {n} remain after dropping "
            "duplicates and ties"
        )
    f_emp = torch.arange(1, big_n + 1, dtype=torch.float64, device=mu.device) / big_n
    x = torch.log(mu[:n_fit])
    y = -torch.log1p(-f_emp[:n_fit])
    denom = float((x * x).sum())
    if denom == 0.0:
        raise ValueError("twonn is undefined: every kept point has r₂ / r₁ = 1")
    return float((x * y).sum()) / denom


def pca_dimension(points: torch.Tensor, variance: float = 0.9) -> int:
    """Number of principal components whose cumulative explained variance first exceeds ``variance``.

    Features are standardised (zero mean, unit variance; constant features are left at zero and
    contribute nothing) before the principal components are taken, as in the paper's "linear
    dimension". Uses the n × n Gram matrix when D > n, so wide layers stay cheap. Computed in float64
    on the points divided by a power of two (exact) that brings their largest magnitude to about 1,
    so that neither the mean nor the variance overflows or underflows at any scale.
    """
    points = check_points(points, min_points=2)
    if not 0.0 < variance < 1.0:
        raise ValueError(f"variance must be in (0, 1), got {variance!r}")
    x = points.to(torch.float64, copy=True)
    ldexp_(x, -exponent(x.abs().amax(), torch.float64))
    x = x - x.mean(0)
    std = x.std(0)
    x = x / torch.where(std > 0, std, torch.ones_like(std))
    n, d = x.shape
    gram = x @ x.T if d > n else x.T @ x
    eig = torch.linalg.eigvalsh(gram).flip(0).clamp_min(0)
    total = float(eig.sum())
    if total == 0.0:
        return 0
    cum = torch.cumsum(eig, 0) / total
    return int((cum > variance).nonzero()[0, 0]) + 1
