"""Exact nearest-neighbour search with bounded memory."""

from __future__ import annotations

import torch

from ._validation import check_points

#: Bytes allowed for one block of the distance matrix (rows × n × itemsize).
BLOCK_BYTES = 256 * 2**20


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
        k: number of neighbours, ``1 ≤ k < n``.
        rows: optional ``LongTensor (q,)`` of the points to query (default all); their
            neighbours are searched among all ``n`` points.
        return_distances: also return the Euclidean distances ``(n, k)``.

    Returns:
        ``LongTensor (n, k)`` (``(q, k)`` with ``rows``) sorted by increasing distance (and the
        distances if asked).

    Distances are screened block by block with ‖x‖² + ‖y‖² − 2⟨x, y⟩ (memory ``block_bytes`` per
    block, so n = 50 000 stays bounded), then the candidates are re-measured exactly from the
    differences, so exact duplicates have distance 0 and near ties are ordered correctly.
    Duplicates of a point are neighbours like any other; only the point's own row is excluded.
    """
    points = check_points(points, min_points=2)
    n = points.shape[0]
    if not isinstance(k, int) or k < 1 or k >= n:
        raise ValueError(f"k must be an integer with 1 ≤ k < n = {n}, got {k!r}")
    margin = min(n - 1 - k, 4)  # extra candidates re-ranked exactly
    kk = k + margin
    if rows is None:
        rows = torch.arange(n, device=points.device)
    else:
        rows = torch.as_tensor(rows, dtype=torch.long, device=points.device).reshape(-1)
        if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= n):
            raise ValueError(f"rows must index the {n} points (0 … {n - 1})")
    q = rows.shape[0]
    sq = points.square().sum(1)
    idx_out = torch.empty(q, k, dtype=torch.long, device=points.device)
    dist_out = torch.empty(q, k, dtype=points.dtype, device=points.device) if return_distances else None
    step = _row_block(q, n, points.element_size(), block_bytes)
    for start in range(0, q, step):
        stop = min(q, start + step)
        query = rows[start:stop]
        block = points[query]
        d2 = sq[query, None] + sq[None, :] - 2.0 * (block @ points.T)
        d2[torch.arange(stop - start, device=points.device), query] = float("inf")
        cand = torch.topk(d2, kk, dim=1, largest=False).indices  # (b, kk)
        exact = (points[cand] - block[:, None, :]).norm(dim=-1)  # (b, kk)
        order = torch.sort(exact, dim=1, stable=True)
        idx_out[start:stop] = cand.gather(1, order.indices[:, :k])
        if dist_out is not None:
            dist_out[start:stop] = order.values[:, :k]
    return (idx_out, dist_out) if return_distances else idx_out
