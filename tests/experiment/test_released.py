"""The ``authors`` preset and each of its deviations against a re-implementation of the released
procedure written from its description (released_reference.py): on the same small inputs they
give the same numbers, to 1e-5 in float32, and exactly where the arithmetic is the same (zero
curvatures, ranks, neighbour counts, the point among its neighbours)."""

from __future__ import annotations

import pytest
import torch

from crlm_bench.experiment import probing
from crlm_bench.experiment.cell import Measurement
from crlm_bench.experiment.neighbourhoods import released_neighbourhoods, released_toggles
from crlm_bench.geometry.manifolds import sphere_patches
from crlm_bench.vision.datasets import normalize
from tests.experiment import released_reference as released

#: the issue's tolerance for the same procedure in float32 (relative)
FLOAT32_RTOL = 1e-5
F32 = torch.float32
AUTHORS = Measurement(points=16, toggles=3, id_runs=1, id_samples=64).with_preset("authors")

#: (K, D, d, noise): more neighbours than dimensions and the other way round, d of 1 to 3; noise in
#: every coordinate, so that every normal direction is resolved in float32
FIT_CASES = [(31, 8, 2, 1e-2), (24, 40, 2, 1e-2), (40, 12, 3, 3e-3), (15, 30, 1, 1e-2)]


def _patch(k: int, big_d: int, d: int, noise: float, scale: float, seed: int = 0):
    c = sphere_patches(3, k, d, 1.0, ambient=big_d, spread=0.3, noise=noise, seed=seed, dtype=torch.float64)
    return (c.points * scale).to(F32), (c.neighbours * scale).to(F32)


def _preset_fit(point: torch.Tensor, neighbours: torch.Tensor, d: int) -> dict[str, torch.Tensor]:
    """One point's fit as the authors preset's plan makes it at a probe of width D."""
    plan = probing.Plan(AUTHORS, torch.arange(1), torch.device("cpu"), F32, probing.MEMORY_BYTES)
    dtype, method, rescale, among, fit_d = probing._fit_setting(plan, d, point.shape[0])
    assert (dtype, method, rescale, among) == (F32, "svd", False, True)
    return probing._fit_settings(point[None], neighbours, ((dtype, method, rescale, among, fit_d),))[0]


@pytest.mark.parametrize("k,big_d,d,noise", FIT_CASES)
@pytest.mark.parametrize("scale", [1.0, 1e-3])
def test_the_presets_fit_gives_the_released_curvature(k, big_d, d, noise, scale):
    """float32, svd_fit, unscaled_fit and point_among_neighbours together: the released fit of the
    point with itself among its neighbours."""
    points, neighbours = _patch(k, big_d, d, noise, scale)
    for x, around in zip(points, neighbours, strict=True):
        ours = float(_preset_fit(x, around, d)["point_mapc"][0])
        theirs = released.point_mapc(x, torch.cat([x[None], around]), d)
        assert ours == pytest.approx(theirs, rel=FLOAT32_RTOL)


@pytest.mark.parametrize("deviations", [("svd_fit",), ("svd_fit", "unscaled_fit"), ("unscaled_fit",)])
def test_each_fit_deviation_alone_gives_the_released_curvature_where_it_is_the_only_difference(deviations):
    """Alone, each fit deviation changes only its own part: with the point left out, float32 fits
    of svd_fit and unscaled_fit agree with the released fit of the same neighbours (the Gram route
    of unscaled_fit alone too: in float32 it resolves these patches' normal directions)."""
    plan = probing.Plan(Measurement(deviations=deviations), torch.arange(1), torch.device("cpu"), F32, 1)
    points, neighbours = _patch(31, 8, 2, 1e-2, 1.0)
    eps = probing.coarser_eps(F32)
    for x, around in zip(points, neighbours, strict=True):
        ours = probing._fit(x[None], around[None], 2, plan.method, eps, rescale=plan.rescale)
        theirs = released.point_mapc(x, around, 2)
        assert float(ours["point_mapc"][0]) == pytest.approx(theirs, rel=FLOAT32_RTOL)


def test_a_tiny_neighbourhood_collapses_in_both_and_a_rescaled_fit_keeps_it():
    """At a radius of 1e-6 the released float32 pinv cuts the quadratic terms: both give a MAPC
    under 1e-6 of the patch's curvature, and agree to 1e-5 of it; the rescaled fit keeps it."""
    points, neighbours = _patch(31, 8, 2, 1e-2, 1e-6)
    big, big_nbs = _patch(31, 8, 2, 1e-2, 1.0)
    for i in range(points.shape[0]):
        curvature = released.point_mapc(big[i], torch.cat([big[i, None], big_nbs[i]]), 2) * 1e6
        ours = float(_preset_fit(points[i], neighbours[i], 2)["point_mapc"][0])
        theirs = released.point_mapc(points[i], torch.cat([points[i, None], neighbours[i]]), 2)
        assert ours < 1e-6 * curvature and theirs < 1e-6 * curvature
        assert abs(ours - theirs) <= FLOAT32_RTOL * curvature
        kept = probing._fit(points[i : i + 1], neighbours[i : i + 1], 2, "svd", probing.coarser_eps(F32))
        assert float(kept["point_mapc"][0]) > 0.5 * curvature


@pytest.mark.parametrize("big_d", [2, 3])
def test_full_dim_zero_gives_the_released_zeros_exactly(big_d):
    """d ≥ D (a 3-dimensional estimate at a probe of width 2 or 3): zero curvature, as released."""
    g = torch.Generator().manual_seed(1)
    x, around = torch.randn(big_d, generator=g), torch.randn(12, big_d, generator=g)
    stats = _preset_fit(x, around, 3)
    assert float(stats["point_mapc"][0]) == released.point_mapc(x, torch.cat([x[None], around]), 3) == 0.0


def test_the_point_is_among_its_neighbours_exactly_as_released():
    """point_among_neighbours adds the zero displacement: the fit of K + 1 rows whose first is the
    point, bit for bit the fit of the neighbours with the point put in front by hand."""
    points, neighbours = _patch(24, 40, 2, 1e-2, 1.0)
    x, around = points[0], neighbours[0]
    eps = probing.coarser_eps(F32)
    among = probing._fit_settings(x[None], around, ((F32, "svd", False, True, 2),))[0]
    by_hand = probing._fit(x[None], [torch.cat([x[None], around])], 2, "svd", eps, rescale=False)
    assert all(torch.equal(among[f], by_hand[f]) for f in probing.POINT_FIELDS)


def _images(n: int, seed: int, rank: int | None = None) -> torch.Tensor:
    """``n`` grey 12 × 10 images, 0–255; with ``rank``, every image of that exact rank."""
    g = torch.Generator().manual_seed(seed)
    if rank is None:
        return torch.randint(0, 256, (n, 1, 12, 10), generator=g).to(torch.uint8)
    low = torch.rand(n, 1, 12, rank, generator=g, dtype=torch.float64) @ torch.rand(
        n, 1, rank, 10, generator=g, dtype=torch.float64
    )
    return 255 * low / low.amax()


@pytest.mark.parametrize(
    "ranks,toggles",
    [((None,), 3), ((None,), 10), ((8, 3), 10), ((8, 3), 2), ((5,), 5)],
)
def test_the_released_neighbourhoods_are_those_of_the_description(ranks, toggles):
    """A batch of 8 normalised images (of full rank, or of mixed exact ranks, where the smallest
    rank truncates every image): the same t exactly, the same neighbours to 1e-5."""
    parts = [_images(8 // len(ranks), seed, rank) for seed, rank in enumerate(ranks)]
    batch = normalize(torch.cat(parts), "fashion-mnist")
    assert batch.dtype == F32
    t = min(released.batch_rank(batch), toggles)
    assert released_toggles(batch, toggles) == t
    ours, theirs = released_neighbourhoods(batch, toggles), released.neighbourhoods(batch, toggles)
    assert ours.shape == theirs.shape == (8, 2**t - 1, 1, 12, 10)
    torch.testing.assert_close(ours, theirs, rtol=FLOAT32_RTOL, atol=FLOAT32_RTOL * float(batch.abs().max()))


def test_a_value_under_the_batchs_threshold_does_not_count_towards_its_rank():
    """Eight rank-4 images whose fourth value is 5e-7 of the batch's largest: above eps · max(s),
    under max(shape) · eps · max(s) = 12 eps · max(s), so the batch's rank is 3 in both."""
    g = torch.Generator().manual_seed(2)
    q1 = torch.linalg.qr(torch.randn(8, 1, 12, 4, generator=g, dtype=torch.float64)).Q
    q2 = torch.linalg.qr(torch.randn(8, 1, 10, 4, generator=g, dtype=torch.float64)).Q
    values = torch.tensor([3.0, 2.0, 1.0, 1.5e-6], dtype=torch.float64)
    batch = ((q1 * values) @ q2.mT).to(F32)
    assert released.batch_rank(batch) == 3 == released_toggles(batch, 10)
    torch.testing.assert_close(released_neighbourhoods(batch, 10), released.neighbourhoods(batch, 10))


def test_the_presets_points_and_neighbours_are_the_released_ones_of_their_batch_of_eight():
    """The preset's plan forwards, for the point at position 11, the normalised point and the
    released neighbours of the batch of positions 8–15 (the released code's batch of 8)."""
    images = _images(20, 3)
    indices = torch.randperm(20, generator=torch.Generator().manual_seed(0))[:16]
    plan = probing.Plan(AUTHORS, indices, torch.device("cpu"), F32, probing.MEMORY_BYTES)
    rows = probing._point_and_neighbours(images, "fashion-mnist", plan, 11)
    batch = normalize(images[indices[8:16]], "fashion-mnist")
    theirs = released.neighbourhoods(batch, AUTHORS.toggles)[3]
    assert torch.equal(rows[0], batch[3])
    torch.testing.assert_close(
        rows[1:], theirs, rtol=FLOAT32_RTOL, atol=FLOAT32_RTOL * float(batch.abs().max())
    )
