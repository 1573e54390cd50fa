"""Exact kNN with bounded memory."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from crlm_bench.geometry import knn
from crlm_bench.geometry import neighbours as nb_module
from tests import tolerances as tol


def brute(points, k):
    d = torch.cdist(points, points)
    d.fill_diagonal_(float("inf"))
    return d.topk(k, largest=False)


@given(st.integers(3, 80), st.integers(1, 6), st.integers(0, 10_000), st.data())
def test_knn_matches_brute_force(n, ambient, seed, data):
    k = data.draw(st.integers(1, n - 1))
    x = torch.randn(n, ambient, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    idx, dist = knn(x, k, return_distances=True)
    ref = brute(x, k)
    torch.testing.assert_close(dist, ref.values)
    assert idx.dtype == torch.long and idx.shape == (n, k)
    assert not bool((idx == torch.arange(n)[:, None]).any())  # never itself
    torch.testing.assert_close((x[idx] - x[:, None]).norm(dim=-1), ref.values)


def test_knn_blocks_give_the_same_answer(monkeypatch):
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    whole = knn(x, 7)
    blocked = knn(x, 7, block_bytes=300 * 8 * 3)  # three rows per block
    torch.testing.assert_close(blocked, whole)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_knn_exact_slices_give_the_same_numbers(monkeypatch, dtype):
    """The candidates are re-measured in slices of EXACT_BYTES: one row per slice or all rows in
    one, the same neighbours and the same distances bit for bit."""
    x = torch.randn(300, 40, generator=torch.Generator().manual_seed(3), dtype=dtype)
    whole = knn(x, 5, return_distances=True)
    monkeypatch.setattr(nb_module, "EXACT_BYTES", 1)
    assert nb_module._slices(torch.zeros(300, 9, dtype=torch.long), 40, dtype)[1] == slice(1, 2)
    sliced = knn(x, 5, return_distances=True)
    assert torch.equal(sliced[0], whole[0]) and torch.equal(sliced[1], whole[1])


def test_knn_exact_slices_bound_their_memory():
    for big_d, dtype in [(12_544, torch.float32), (10, torch.float64), (10**7, torch.float64)]:
        slices = nb_module._slices(torch.zeros(2_000, 6, dtype=torch.long), big_d, dtype)
        rows = slices[0].stop - slices[0].start
        assert rows == 1 or rows * 6 * big_d * torch.finfo(dtype).bits // 8 <= nb_module.EXACT_BYTES
        assert slices[-1].stop >= 2_000 and all(a.stop == b.start for a, b in zip(slices, slices[1:]))


def test_knn_block_size_bounds_memory_for_50k_points():
    rows = nb_module._row_block(50_000, 50_000, 4)
    assert rows * 50_000 * 4 <= nb_module.BLOCK_BYTES


def test_duplicates_are_neighbours_at_distance_zero():
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [3.0, 0.0]], dtype=torch.float64)
    idx, dist = knn(x, 1, return_distances=True)
    assert idx[0, 0] == 1 and idx[1, 0] == 0
    assert float(dist[0, 0]) == 0.0


@pytest.mark.parametrize("k", [0, 4])
def test_knn_bad_k(k):
    with pytest.raises(ValueError, match="k must be"):
        knn(torch.randn(4, 2), k)


@pytest.mark.parametrize("offset", [1e3, 1e5])
def test_knn_is_exact_far_from_the_origin_in_float32(offset):
    """‖x‖² + ‖y‖² − 2⟨x, y⟩ cancels catastrophically when the cloud sits far from the origin; the
    screening runs on centred points, so the neighbours stay those of brute force."""
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(400, 8, generator=g, dtype=torch.float64) + offset).float()
    idx, dist = knn(x, 5, return_distances=True)
    ref = brute(x.double(), 5)  # the same float32 points, measured in float64
    assert torch.equal(idx, ref.indices)
    torch.testing.assert_close(dist.double(), ref.values, rtol=tol.FLOAT32_VS_FLOAT64_RTOL, atol=0.0)


def test_knn_of_selected_rows_searches_all_points():
    x = torch.randn(200, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    rows = torch.tensor([5, 0, 199])
    torch.testing.assert_close(knn(x, 6, rows=rows), knn(x, 6)[rows])
    with pytest.raises(ValueError, match="rows must index"):
        knn(x, 3, rows=torch.tensor([200]))
