"""Probing: a network's profile, its probes, its chunking and its bad input."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from crlm_bench.experiment import probing
from crlm_bench.experiment.cell import Measurement
from crlm_bench.vision import datasets, models

SMALL = Measurement(points=8, toggles=3, id_runs=2, id_samples=64, precision="float64")


@pytest.fixture(scope="module")
def split():
    return datasets.load("synthetic", "test")


@pytest.mark.parametrize("name", ["resnet8_narrow", "vgg6_narrow"])
def test_profile_rows_match_the_probes(split, name):
    model = models.build(name, 10, 3, seed=0)
    probes = models.probes(model)
    frame = probing.measure(model, probes, split, SMALL)
    latent = frame[frame["depth"] > 0]
    assert latent["probe"].tolist() == [p.name for p in probes[1:]]
    assert latent["relative_depth"].tolist() == pytest.approx([p.relative_depth for p in probes[1:]])
    inputs = frame[frame["depth"] == 0]
    assert sorted(inputs["neighbourhood"]) == ["knn", "perturbation"]
    assert list(frame.columns) == probing.PROFILE_COLUMNS
    assert (frame["points"] == SMALL.points).all()
    assert (latent["K"] == SMALL.neighbours).all()
    assert frame["mapc"].notna().all() and (frame["mapc"] >= 0).all()
    # NMAPC normalises by the mean over probes with the paper's (kNN) input
    chosen = frame[(frame["depth"] > 0) | (frame["neighbourhood"] == "knn")]
    assert chosen["nmapc"].mean() == pytest.approx(1.0)


def test_chunking_does_not_change_the_profile(split, tmp_path):
    model = models.build("vgg6_narrow", 10, 3, seed=1)
    probes = models.probes(model)
    whole = probing.measure(model, probes, split, SMALL)
    one_by_one = probing.measure(model, probes, split, SMALL, memory_bytes=1, workdir=tmp_path)
    assert len(list(tmp_path.glob("curvature_*.pt"))) == SMALL.points  # one chunk per point
    # The perturbation input row fits d = 6 tangent directions to neighbours that span only 3
    # (the perturbations are affine): its curvature is rounding noise divided by rounding noise,
    # and batched LAPACK calls of other sizes round differently. Every other row is exact.
    degenerate = (whole["depth"] == 0) & (whole["neighbourhood"] == "perturbation")
    pd.testing.assert_frame_equal(whole[~degenerate], one_by_one[~degenerate], rtol=1e-10)
    pd.testing.assert_frame_equal(whole[degenerate], one_by_one[degenerate], rtol=1e-3)


def test_resumes_from_saved_chunks(split, tmp_path):
    model = models.build("vgg6_narrow", 10, 3, seed=2)
    probes = models.probes(model)
    first = probing.measure(model, probes, split, SMALL, memory_bytes=1, workdir=tmp_path)
    chunk = tmp_path / "curvature_00003.pt"
    stats = torch.load(chunk, weights_only=True)
    stats["linear"]["point_mapc"] += 1000.0  # a marker: a resumed run must read, not recompute
    torch.save(stats, chunk)
    resumed = probing.measure(model, probes, split, SMALL, memory_bytes=1, workdir=tmp_path)
    linear = resumed["probe"] == "linear"
    expected = float(first.loc[linear, "mapc"].iloc[0]) + 1000 / SMALL.points
    assert float(resumed.loc[linear, "mapc"].iloc[0]) == pytest.approx(expected)


def test_points_are_a_seeded_choice_with_enough_singular_values(split):
    idx = probing.choose_points(split.images, SMALL)
    assert idx.tolist() == probing.choose_points(split.images, SMALL).tolist()
    assert len(set(idx.tolist())) == SMALL.points


def test_too_many_points_is_a_clear_error(split):
    with pytest.raises(ValueError, match=r"only 256 images .* 1000 points asked"):
        probing.choose_points(split.images, Measurement(points=1000, toggles=3))


def test_unknown_deviation_is_refused(split):
    model = models.build("vgg6_narrow", 10, 3, seed=0)
    with pytest.raises(ValueError, match=r"unknown deviation.*svd_fit"):
        measurement = Measurement(points=4, toggles=2, deviations=("fast",))
        probing.measure(model, models.probes(model), split, measurement)


def test_dimension_for_fit_is_clipped_and_flagged():
    assert probing.dimension_for_fit(12.4, 1023, 512) == (12, False)
    assert probing.dimension_for_fit(40.0, 7, 512) == (6, True)
    assert probing.dimension_for_fit(9.0, 1023, 5) == (4, True)
    assert probing.dimension_for_fit(0.2, 1023, 512) == (1, True)


def test_train_augmented_split_reproduces_the_defect_deterministically(split):
    m = Measurement(points=4, toggles=2, split="train-augmented")
    a, b = probing.measured_images(split, m), probing.measured_images(split, m)
    assert torch.equal(a, b) and not torch.equal(a, split.images)
