"""Exact nearest-neighbour search with bounded memory."""

from __future__ import annotations

import torch

from ._scale import compute_dtype, exponent, pow2, restore
from ._validation import check_indices, check_int, check_points

#: Bytes allowed for one block of the distance matrix (rows × n × itemsize).
BLOCK_BYTES = 256 * 2**20
#: Bytes allowed for the differences that re-measure one slice of a block's candidates exactly
#: (rows × candidates × D × itemsize): small enough to stay in cache, where one array per block
#: faulted in fresh pages for every call (measured: 0.2 s against 1.8–2.9 s for the 2 + 4
#: candidates of 2 000 points in D = 12 544, float32; the same numbers).
EXACT_BYTES = 4 * 2**20


def _row_block(n_rows: int, n_cols: int, itemsize: int, block_bytes: int = BLOCK_BYTES) -> int:
    return max(1, min(n_rows, block_bytes // max(1, n_cols * itemsize)))


def knn(
    points: torch.Tensor,
    k: int,
    *,
    rows: torch.Tensor | None = None,
    return_distances: bool = False,
    block_bytes: int = BLOCK_BYTES,
):
    """Indices of the ``k`` nearest neighbours of every point, the point itself excluded.

    Args:
        points: ``(n, D)``.
        k: number of neighbours, an integer ``1 ≤ k < n`` (``numpy.int64`` too; not a bool).
        rows: optional integer indices ``(q,)`` of the points to query (default all); their
            neighbours are searched among all ``n`` points. A boolean mask is refused: pass
            ``mask.nonzero().squeeze(1)``.
        return_distances: also return the Euclidean distances ``(n, k)``.

    Returns:
        ``LongTensor (n, k)`` (``(q, k)`` with ``rows``) sorted by increasing distance (and the
        distances if asked, in the dtype of ``points``; OverflowError if one does not fit it).

    Distances are screened block by block with ‖x‖² + ‖y‖² − 2⟨x, y⟩ (memory ``block_bytes`` per
    block, so n = 50 000 stays bounded), then the candidates are re-measured exactly from the
    differences, so exact duplicates have distance 0 and near ties are ordered correctly.
    Duplicates of a point are neighbours like any other; only the point's own row is excluded.

    Scale and position do not matter: the points are divided by a power of two (exact) that brings
    their largest magnitude to about 1, so nothing overflows or underflows when squared, and the
    screening runs on centred points (one copy of ``points``, besides the blocks), so a cloud far
    from the origin keeps its resolution. Float16 and bfloat16 points are searched in float32.
    """
    points = check_points(points, min_points=2)
    n = points.shape[0]
    k = check_int(k, "k", minimum=1, maximum=n - 1, fix=f"k counts neighbours among the other {n - 1} points")
    block_bytes = check_int(block_bytes, "block_bytes", minimum=1)
    rows = (
        torch.arange(n, device=points.device)
        if rows is None
        else check_indices(rows, n, "rows", points.device)
    )
    idx, dist, e = scaled_knn(points, k, rows, block_bytes)
    if not return_distances:
        return idx
    return idx, restore(dist, e, points.dtype, "knn distances")


def scaled_knn(
    points: torch.Tensor, k: int, rows: torch.Tensor, block_bytes: int = BLOCK_BYTES
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`knn` on checked input: indices ``(q, k)``, distances ``(q, k)`` in units of 2^e, and e.

    The distances are those of ``points``·2^-e (in the compute dtype), so ratios of them need no
    rescaling and never overflow.
    """
    n = points.shape[0]
    dtype = compute_dtype(points.dtype)
    maxabs = torch.maximum(points.amax(), -points.amin()).to(torch.float64)
    e = exponent(maxabs, dtype)
    scale = pow2(-e, dtype)
    centred = points.to(dtype) * scale  # exact: a power of two
    centred -= centred.mean(0)  # for the screening only; exact distances use the points themselves
    margin = min(n - 1 - k, 4)  # extra candidates re-ranked exactly
    kk = k + margin
    q = rows.shape[0]
    sq = centred.square().sum(1)
    idx_out = torch.empty(q, k, dtype=torch.long, device=points.device)
    dist_out = torch.empty(q, k, dtype=dtype, device=points.device)
    step = _row_block(q, n, centred.element_size(), block_bytes)
    for start in range(0, q, step):
        stop = min(q, start + step)
        query = rows[start:stop]
        d2 = sq[query, None] + sq[None, :] - 2.0 * (centred[query] @ centred.T)
        d2[torch.arange(stop - start, device=points.device), query] = float("inf")
        cand = torch.topk(d2, kk, dim=1, largest=False).indices  # (b, kk)
        del d2
        exact = torch.cat(
            [
                _exact_distances(points, query[s], cand[s], scale, dtype)
                for s in _slices(cand, points.shape[1], dtype)
            ]
        )
        order = torch.sort(exact, dim=1, stable=True)
        idx_out[start:stop] = cand.gather(1, order.indices[:, :k])
        dist_out[start:stop] = order.values[:, :k]
    return idx_out, dist_out, e


def _slices(cand: torch.Tensor, big_d: int, dtype: torch.dtype) -> list[slice]:
    """Row slices of the candidates ``(b, kk)`` whose differences in D = ``big_d`` take at most
    :data:`EXACT_BYTES` in ``dtype`` (at least one row each)."""
    rows = max(1, EXACT_BYTES // max(1, cand.shape[1] * big_d * (torch.finfo(dtype).bits // 8)))
    return [slice(start, start + rows) for start in range(0, cand.shape[0], rows)]


def _exact_distances(
    points: torch.Tensor, query: torch.Tensor, cand: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """Distances ``(b, kk)`` from the points ``query`` ``(b,)`` to their candidates ``cand``, measured
    from the differences at the power-of-two ``scale`` (exact) in ``dtype``."""
    diff = points[cand].to(dtype) * scale - (points[query].to(dtype) * scale)[:, None, :]
    return diff.norm(dim=-1)
