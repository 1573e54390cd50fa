"""Speed of the geometry estimators on the paper's neighbourhood size and a ResNet block's width.

Run: ``.venv/bin/python -m pytest benchmarks/test_geometry.py --benchmark-only``. The ratios
are measured in one run and recorded in ``benchmark.extra_info``; the targets are asserted only
when benchmarking is enabled: the test command runs this file with ``--benchmark-disable``, which
executes every function once as a correctness check. Targets, on this 2-core machine:

- issue 2: gram ≥ 3.5× and invariants ≥ 10× faster than svd on the benchmark case;
- issue 11: on a patch without a gap, invariants ≤ 1.25× the time of gram (they used to run ten
  subspace iterations before falling back to it: 1.5× to 6.5×); on a noisy patch with many
  curved normal directions, invariants still ≥ 10× faster than svd (it used to be 7.6×).

The cases, all K = 1023 neighbours, D = 16384, dim = 15, float32:

- benchmark: n = 8 points; each point's neighbours are exponential-map offsets on S^15 (spread
  0.2 r) plus isotropic noise 3e-3, so the spectrum has the tangent / curvature / noise
  structure the fit is for.
- no gap: n = 2 points of S^10 (the toggles of a perturbation neighbourhood) with the same spread
  and noise, fitted with dim = 15 as where TwoNN's d exceeds the toggles: the last fitted tangent
  directions are noise, as strong as the normal directions after them.
- noisy: n = 4 points of a 15-dimensional quadric with 16 curved normal directions (Hessians
  (A + Aᵀ)/2, A with N(0, 1/16) entries: curvatures of order 1, like the sphere's), spread 0.2,
  noise 3e-3 in every one of the D coordinates of points and neighbours: normal directions down
  from 0.6 of the tangent singular values. Calibrated on the issue's measurement: the released
  subspace iteration needs 6 iterations here (the benchmark case: 3) and measured 7.2× (the
  issue: 7.6×); the block Krylov iteration needs 3 blocks, and reached 10× once its passes formed
  the displacements slice by slice instead of storing them (8.0–8.8× before). Harsher patches
  remain slower: 64 normal directions with A of N(0, 1/25) entries took the subspace iteration 8
  iterations (5.3×) and the Krylov iteration 4 blocks (8.9× before that change), below the target.

Fewer points than the benchmark case keep the untimed run of the test command short: two for
the no-gap ratio, whose two routes pay the same fixed costs per call, four for the noisy one.
"""

from __future__ import annotations

import time

import pytest
import torch

from crlm_bench.geometry import curvature_invariants, mapc, principal_curvatures, twonn
from crlm_bench.geometry.manifolds import sphere_patches

N, K, D, DIM = 8, 1023, 16384, 15
N_NO_GAP, N_NOISY, TOGGLES, CODIM, CURVATURE = 2, 4, 10, 16, 0.25
TARGET_GRAM_OVER_SVD = 3.5
TARGET_INVARIANTS_OVER_SVD = 10.0
TARGET_NO_GAP_INVARIANTS_OVER_GRAM = 1.25  # at most
FLOAT32_RTOL = 1e-3

#: best wall time per function over the rounds run in this session
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def case():
    c = sphere_patches(N, K, DIM, 1.0, ambient=D, spread=0.2, noise=3e-3, seed=0, dtype=torch.float32)
    return c.points, c.neighbours


@pytest.fixture(scope="module")
def no_gap_case():
    c = sphere_patches(
        N_NO_GAP, K, TOGGLES, 1.0, ambient=D, spread=0.2, noise=3e-3, seed=0, dtype=torch.float32
    )
    return c.points, c.neighbours


@pytest.fixture(scope="module")
def noisy_case():
    """Points of a dim-dimensional quadric x ↦ (x, ½xᵀA_αx), α = 1 … CODIM, each with K
    neighbours at Gaussian offsets, in a random frame of R^D, plus noise in every coordinate (the
    wide arrays are drawn in float32 directly, which keeps the untimed run short)."""
    g = torch.Generator().manual_seed(0)
    a = CURVATURE * torch.randn(N_NOISY, CODIM, DIM, DIM, generator=g, dtype=torch.float64)
    a = (a + a.mT) / 2
    w = 0.2 * torch.randn(N_NOISY, K, DIM, generator=g, dtype=torch.float64)
    z = 0.5 * torch.einsum("nki,naij,nkj->nka", w, a, w)
    frame = torch.linalg.qr(torch.randn(D, DIM + CODIM, generator=g, dtype=torch.float64)).Q
    pts = torch.randn(N_NOISY, D, generator=g)
    nbs = torch.cat([w, z], dim=-1).float() @ frame.T.float() + pts[:, None, :]
    nbs += 3e-3 * torch.randn(nbs.shape, generator=g)
    pts += 3e-3 * torch.randn(pts.shape, generator=g)
    return pts, nbs


def _timed(name, fn):
    def run():
        t0 = time.perf_counter()
        out = fn()
        TIMINGS[name] = min(TIMINGS.get(name, float("inf")), time.perf_counter() - t0)
        return out

    return run


def _enabled(benchmark) -> bool:
    return not getattr(benchmark, "disabled", False)


def test_principal_curvatures_svd(benchmark, case):
    pts, nbs = case
    out = benchmark.pedantic(
        _timed("svd", lambda: principal_curvatures(pts, nbs, DIM, method="svd")), rounds=2
    )
    assert out.shape == (N, K - DIM, DIM)


def test_principal_curvatures_gram(benchmark, case):
    pts, nbs = case
    out = benchmark.pedantic(
        _timed("gram", lambda: principal_curvatures(pts, nbs, DIM, method="gram")), rounds=3
    )
    assert out.shape == (N, K - DIM, DIM)


def test_curvature_invariants(benchmark, case):
    pts, nbs = case
    out = benchmark.pedantic(_timed("invariants", lambda: curvature_invariants(pts, nbs, DIM)), rounds=3)
    assert out.sff_norm.shape == (N,)


def test_no_gap_principal_curvatures_gram(benchmark, no_gap_case):
    pts, nbs = no_gap_case
    out = benchmark.pedantic(
        _timed("no_gap_gram", lambda: principal_curvatures(pts, nbs, DIM, method="gram")), rounds=3
    )
    assert out.shape == (N_NO_GAP, K - DIM, DIM)


def test_no_gap_curvature_invariants(benchmark, no_gap_case):
    pts, nbs = no_gap_case
    out = benchmark.pedantic(
        _timed("no_gap_invariants", lambda: curvature_invariants(pts, nbs, DIM)), rounds=3
    )
    assert out.sff_norm.shape == (N_NO_GAP,)


def test_noisy_principal_curvatures_svd(benchmark, noisy_case):
    pts, nbs = noisy_case
    out = benchmark.pedantic(
        _timed("noisy_svd", lambda: principal_curvatures(pts, nbs, DIM, method="svd")), rounds=2
    )
    assert out.shape == (N_NOISY, K - DIM, DIM)


def test_noisy_curvature_invariants(benchmark, noisy_case):
    pts, nbs = noisy_case
    out = benchmark.pedantic(
        _timed("noisy_invariants", lambda: curvature_invariants(pts, nbs, DIM)), rounds=3
    )
    assert out.sff_norm.shape == (N_NOISY,)


#: each ratio: (name, numerator, denominator), all from TIMINGS of this session
RATIOS = [
    ("gram_over_svd", "svd", "gram"),
    ("invariants_over_svd", "svd", "invariants"),
    ("no_gap_invariants_over_gram", "no_gap_invariants", "no_gap_gram"),
    ("noisy_invariants_over_svd", "noisy_svd", "noisy_invariants"),
]


def test_speed_ratios(benchmark):
    needed = {key for _, *keys in RATIOS for key in keys}
    if not needed <= TIMINGS.keys():
        pytest.skip("run the curvature benchmarks of this file in the same session first")
    ratios = {
        **{name: TIMINGS[num] / TIMINGS[den] for name, num, den in RATIOS},
        **{f"seconds_{k}": v for k, v in TIMINGS.items()},
    }
    benchmark.extra_info.update(ratios)
    benchmark.pedantic(lambda: None, rounds=1)
    if _enabled(benchmark):
        assert ratios["gram_over_svd"] >= TARGET_GRAM_OVER_SVD, ratios
        assert ratios["invariants_over_svd"] >= TARGET_INVARIANTS_OVER_SVD, ratios
        assert ratios["no_gap_invariants_over_gram"] <= TARGET_NO_GAP_INVARIANTS_OVER_GRAM, ratios
        assert ratios["noisy_invariants_over_svd"] >= TARGET_INVARIANTS_OVER_SVD, ratios


def test_float32_matches_float64_on_the_benchmark_case(benchmark, case):
    """Correctness on the benchmark case (not a timing): float32 within 1e-3 of float64."""
    pts, nbs = case
    p64, n64 = pts.double(), nbs.double()

    def compare():
        errors = {
            "mapc_gram": abs(
                mapc(principal_curvatures(pts, nbs, DIM)) / mapc(principal_curvatures(p64, n64, DIM)) - 1
            )
        }
        i32, i64 = curvature_invariants(pts, nbs, DIM), curvature_invariants(p64, n64, DIM)
        for f in ("sff_norm", "mean_curvature", "scalar_curvature"):
            errors[f] = abs(float(getattr(i32, f).median()) / float(getattr(i64, f).median()) - 1)
        return errors

    errors = benchmark.pedantic(compare, rounds=1)
    benchmark.extra_info.update({f"rel_err_{k}": v for k, v in errors.items()})
    assert max(errors.values()) <= FLOAT32_RTOL, errors


def test_twonn(benchmark):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5000, 12, generator=g) @ torch.randn(12, 4096, generator=g)
    est = benchmark.pedantic(lambda: twonn(x), rounds=3)
    assert 10 < est < 14
