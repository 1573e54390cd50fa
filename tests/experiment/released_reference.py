"""The authors' released procedure, written again from its description for the tests of the
``authors`` deviations (tests/experiment/test_released.py).

It follows the algorithm as docs/design.md §5 and the curvature module's docstring describe it,
one image, one channel, one neighbour and one point at a time, in plain loops. It shares no code
with the package: the two agree only if both follow the description.

- Neighbourhoods: the SVD of each channel of the *normalised* float32 image; a singular value
  counts above max(s) · max(B, C, H, W) · eps, s over the whole batch; the batch's rank is the
  fewest such values of any image and channel (at least 1); every image is rebuilt from that many
  components and its t = min(rank, toggles) smallest kept ones are zeroed in every non-empty
  subset, the subset of neighbour j being the binary expansion of j (bit i: the i-th smallest).
- Curvature at a point: displacements Δ = neighbours − point (the point itself among them where
  the released code includes it); the SVD Δᵀ = U S Vᵀ; coordinates Δ U; least squares of the
  normal coordinates on [u_i | u_i u_j, i ≤ j] of the d tangent ones by ``torch.linalg.pinv`` with
  its default cutoff; the Hessian of normal α has H_ii = 2 c_ii and H_ij = H_ji = c_ij; its
  eigenvalues are the principal curvatures. d ≥ D gives zero curvatures.
"""

from __future__ import annotations

import itertools

import torch


def batch_rank(batch: torch.Tensor) -> int:
    """The fewest singular values above the batch's threshold, of any image and channel."""
    values = [torch.linalg.svdvals(batch[b, c]) for b in range(batch.shape[0]) for c in range(batch.shape[1])]
    threshold = max(float(s.max()) for s in values) * max(batch.shape) * torch.finfo(batch.dtype).eps
    return max(1, min(int((s > threshold).sum()) for s in values))


def neighbourhoods(batch: torch.Tensor, toggles: int) -> torch.Tensor:
    """``(B, 2^t − 1, C, H, W)`` neighbours of a normalised batch, in its dtype."""
    rank = batch_rank(batch)
    t = min(rank, toggles)
    out = torch.empty(batch.shape[0], 2**t - 1, *batch.shape[1:], dtype=batch.dtype)
    for b, c in itertools.product(range(batch.shape[0]), range(batch.shape[1])):
        u, s, vh = torch.linalg.svd(batch[b, c], full_matrices=False)
        for j in range(1, 2**t):
            kept = s[:rank].clone()
            for i in range(t):  # bit i zeroes the i-th smallest of the kept values
                if j >> i & 1:
                    kept[rank - 1 - i] = 0
            out[b, j - 1, c] = u[:, :rank] @ torch.diag(kept) @ vh[:rank]
    return out


def point_curvatures(point: torch.Tensor, neighbours: torch.Tensor, d: int) -> torch.Tensor:
    """Principal curvatures ``(m, d)`` at ``point`` ``(D,)`` from ``neighbours`` ``(K, D)``, in
    their dtype, at their own scale; zeros ``(0, 0)`` where d ≥ D."""
    if d >= neighbours.shape[1]:
        return torch.zeros(0, 0, dtype=point.dtype)
    delta = neighbours - point
    u = torch.linalg.svd(delta.T, full_matrices=False).U
    coordinates = delta @ u
    tangent, normal = coordinates[:, :d], coordinates[:, d:]
    pairs = [(i, j) for i in range(d) for j in range(i, d)]
    columns = [tangent[:, i] for i in range(d)] + [tangent[:, i] * tangent[:, j] for i, j in pairs]
    coefficients = torch.linalg.pinv(torch.stack(columns, dim=1)) @ normal  # (d + len(pairs), m)
    curvatures = []
    for alpha in range(normal.shape[1]):
        hessian = torch.zeros(d, d, dtype=point.dtype)
        for n, (i, j) in enumerate(pairs):
            c = coefficients[d + n, alpha]
            if i == j:
                hessian[i, i] = 2 * c
            else:
                hessian[i, j] = hessian[j, i] = c
        curvatures.append(torch.linalg.eigvalsh(hessian))
    return torch.stack(curvatures)


def point_mapc(point: torch.Tensor, neighbours: torch.Tensor, d: int) -> float:
    """Mean absolute principal curvature at one point (0 where d ≥ D, as the released code gives)."""
    kappa = point_curvatures(point, neighbours, d)
    return float(kappa.abs().mean()) if kappa.numel() else 0.0
