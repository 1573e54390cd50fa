"""Probing: a network's profile, its probes, its chunking and its bad input."""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import signal
import warnings

import pandas as pd
import pytest
import torch

from crlm_bench.experiment import probing
from crlm_bench.experiment.cell import DEVIATIONS, Measurement
from crlm_bench.geometry import UnderdeterminedFitWarning
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


def _chunk_bytes(split, model, probes, points):
    """The memory bound that makes chunks of ``points`` points for SMALL in float64."""
    sample = probing.activations(model, probes, datasets.normalize(split.images[:1], "synthetic"))
    widths = [a.shape[1] for a in sample.values()]
    return points * (SMALL.neighbours + 1) * (4 * sum(widths) + 2 * 8 * max(widths))


@pytest.fixture(scope="module")
def vgg():
    model = models.build("vgg6_narrow", 10, 3, seed=1)
    return model, models.probes(model)


@pytest.fixture(scope="module")
def whole(split, vgg):
    """The profile measured in one chunk, with no workdir."""
    return probing.measure(*vgg, split, SMALL)


@pytest.fixture(scope="module")
def one_by_one(split, vgg, tmp_path_factory):
    """A workdir of one-point chunks (as an interrupted run leaves it) and its profile."""
    workdir = tmp_path_factory.mktemp("one-by-one")
    return workdir, probing.measure(*vgg, split, SMALL, memory_bytes=1, workdir=workdir)


def _mark(path, probe="linear"):
    """Add 1000 to a saved chunk's MAPC at ``probe``: a resumed run that reads it shows it."""
    saved = torch.load(path, weights_only=True)
    saved["stats"][probe]["point_mapc"] += 1000.0
    return saved


def test_the_memory_bound_changes_no_number(split, vgg, whole, one_by_one):
    """--memory-mb is not in the cell's key, so it must not change a single bit of the profile."""
    workdir, by_one = one_by_one
    assert len(list(workdir.glob("curvature_*.pt"))) == SMALL.points
    pd.testing.assert_frame_equal(whole, by_one, check_exact=True)
    by_three = probing.measure(*vgg, split, SMALL, memory_bytes=_chunk_bytes(split, *vgg, 3))
    pd.testing.assert_frame_equal(whole, by_three, check_exact=True)


def test_resumes_from_saved_chunks(split, vgg, one_by_one, tmp_path):
    shutil.copytree(one_by_one[0], tmp_path, dirs_exist_ok=True)
    chunk = tmp_path / "curvature_000003_000004.pt"
    torch.save(_mark(chunk), chunk)  # a resumed run must read it, not recompute it
    resumed = probing.measure(*vgg, split, SMALL, memory_bytes=1, workdir=tmp_path)
    first = one_by_one[1]
    linear = resumed["probe"] == "linear"
    expected = float(first.loc[linear, "mapc"].iloc[0]) + 1000 / SMALL.points
    assert float(resumed.loc[linear, "mapc"].iloc[0]) == pytest.approx(expected)


def test_a_resume_with_another_memory_bound_mixes_no_chunking(split, vgg, whole, one_by_one, tmp_path):
    """Killed after some one-point chunks, resumed with chunks of three: every point is either
    reused from the chunk that covered it or recomputed, and the profile is the uninterrupted one."""
    shutil.copytree(one_by_one[0], tmp_path, dirs_exist_ok=True)
    for stale in ("curvature_000002_000003.pt", "curvature_000006_000007.pt"):
        (tmp_path / stale).unlink()  # as if killed before these were saved
    marked = tmp_path / "curvature_000000_000001.pt"
    torch.save(_mark(marked), marked)
    resumed = probing.measure(*vgg, split, SMALL, memory_bytes=_chunk_bytes(split, *vgg, 3), workdir=tmp_path)
    # chunk [0, 3) lacks point 2, so it is recomputed whole (the marked point 0 with it);
    # chunk [3, 6) is read from the saved points 3, 4 and 5; [6, 8) is recomputed
    pd.testing.assert_frame_equal(whole, resumed, check_exact=True)
    names = {p.name for p in tmp_path.glob("curvature_*.pt")}
    assert {"curvature_000000_000003.pt", "curvature_000006_000008.pt"} <= names
    assert "curvature_000003_000006.pt" not in names


@pytest.mark.parametrize(
    "damage",
    [
        lambda saved: saved.__setitem__("indices", saved["indices"] + 1),  # other points
        lambda saved: saved["dims"].__setitem__("linear", saved["dims"]["linear"] + 1),  # other d
        lambda saved: saved["stats"].pop("features.pool1"),  # a probe missing
        lambda saved: saved.pop("positions"),  # the chunk-index format of earlier versions
    ],
    ids=["points", "d", "probes", "unrecorded"],
)
def test_a_saved_chunk_that_does_not_match_is_recomputed(split, vgg, one_by_one, tmp_path, damage):
    shutil.copytree(one_by_one[0], tmp_path, dirs_exist_ok=True)
    chunk = tmp_path / "curvature_000003_000004.pt"
    saved = _mark(chunk)
    damage(saved)
    torch.save(saved, chunk)
    resumed = probing.measure(*vgg, split, SMALL, memory_bytes=1, workdir=tmp_path)
    pd.testing.assert_frame_equal(one_by_one[1], resumed, check_exact=True)


def test_a_fifo_among_the_saved_results_is_recomputed_not_waited_on(split, vgg, one_by_one, tmp_path):
    shutil.copytree(one_by_one[0], tmp_path, dirs_exist_ok=True)
    for name in ("intrinsic_dimension.json", "curvature_000003_000004.pt"):
        (tmp_path / name).unlink()
        os.mkfifo(tmp_path / name)  # opening it for reading would block forever

    def hung(*_):
        raise TimeoutError("measure blocked on a FIFO in its workdir")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)
    try:
        resumed = probing.measure(*vgg, split, SMALL, memory_bytes=1, workdir=tmp_path)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    pd.testing.assert_frame_equal(one_by_one[1], resumed, check_exact=True)


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


def test_the_profile_keeps_the_per_point_values_behind_each_row(split):
    model = models.build("resnet8_narrow", 10, 3, seed=0)
    profile = probing.measure_profile(model, models.probes(model), split, SMALL)
    frame, points = profile.frame, profile.points
    assert list(points.columns) == probing.POINT_COLUMNS
    assert len(points) == len(frame) * SMALL.points
    for _, row in frame.iterrows():
        mine = points[(points["probe"] == row["probe"]) & (points["neighbourhood"] == row["neighbourhood"])]
        assert mine["point"].tolist() == list(range(SMALL.points))
        assert row["mapc"] == pytest.approx(mine["point_mapc"].mean(), rel=1e-12)
        # torch's median: the lower of the two middle values of an even count
        assert row["sff_norm_median"] == pytest.approx(_lower_median(mine["sff_norm"]), rel=1e-12)
        assert row["radius"] == pytest.approx(_lower_median(mine["radius"]), rel=1e-12)
        assert row["mapc_undiluted"] == pytest.approx(row["m"] * row["mapc"], rel=1e-12)
        expected = (mine["point_mapc"] * mine["radius"]).mean()
        assert row["mapc_dimensionless"] == pytest.approx(expected, rel=1e-12)
        assert row["unresolved"] == (row["resolution"] < probing.RESOLUTION_MIN)


def _lower_median(values) -> float:
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def _sphere_patch(radius: float, scale: float = 1.0, k: int = 63, big_d: int = 20):
    """A point of the unit 2-sphere in R^big_d and k neighbours at geodesic distance ~radius,
    everything times ``scale`` (a sphere of radius ``scale``)."""
    gen = torch.Generator().manual_seed(0)
    angles = torch.randn(k, 2, generator=gen, dtype=torch.float64) * radius
    x, y = angles[:, 0], angles[:, 1]
    neighbours = torch.zeros(k, big_d, dtype=torch.float64)
    neighbours[:, 0], neighbours[:, 1], neighbours[:, 2] = x, y, torch.sqrt(1 - x**2 - y**2)
    point = torch.zeros(big_d, dtype=torch.float64)
    point[2] = 1.0
    return point[None] * scale, neighbours[None] * scale


@pytest.mark.parametrize(
    "radius,dtype,unresolved",
    [
        (1e-2, torch.float32, False),  # offsets r² = 1e-4 ≫ float32's rounding of coordinates ~1
        (1e-4, torch.float32, True),  # offsets 1e-8 < rounding 1e-7: the fit reads no curvature
        (1e-4, torch.float64, False),  # the same patch in float64 resolves it
    ],
)
def test_the_audit_flags_a_fit_that_cannot_resolve_curvature_at_its_precision(radius, dtype, unresolved):
    point, neighbours = _sphere_patch(radius)
    stats = probing._fit(point.to(dtype), neighbours.to(dtype), 2, "gram", probing.coarser_eps(dtype))
    assert bool(stats["resolution"][0] < probing.RESOLUTION_MIN) is unresolved
    mapc = float(stats["point_mapc"][0])  # the unit sphere in R^20: 1/m = 1/18 when resolved
    assert (mapc == pytest.approx(1 / 18, rel=0.02)) is not unresolved


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_the_dimensionless_curvature_does_not_change_with_the_scale(scale):
    point, neighbours = _sphere_patch(1e-2, scale)
    stats = probing._fit(point, neighbours, 2, "gram", probing.coarser_eps(torch.float64))
    base = probing._fit(*_sphere_patch(1e-2), 2, "gram", probing.coarser_eps(torch.float64))
    assert float(stats["point_mapc"][0]) == pytest.approx(float(base["point_mapc"][0]) / scale, rel=1e-6)
    dimensionless = float(stats["point_mapc"][0] * stats["radius"][0])
    assert dimensionless == pytest.approx(float(base["point_mapc"][0] * base["radius"][0]), rel=1e-6)
    assert float(stats["resolution"][0]) == pytest.approx(float(base["resolution"][0]), rel=1e-6)


@pytest.mark.parametrize("scale,collapses", [(1.0, False), (1e-3, False), (1e-6, True)])
def test_the_released_float32_fit_cuts_the_curvature_of_a_small_neighbourhood(scale, collapses):
    """unscaled_fit: pinv's relative cutoff sees linear columns ~ r and quadratic ones ~ r², so in
    float32 a neighbourhood of radius 1e-8 loses its quadratic terms; rescaled, it keeps them."""
    point, neighbours = _sphere_patch(1e-2, scale)
    eps = probing.coarser_eps(torch.float32)
    args = (point.float(), neighbours.float(), 2, "svd", eps)
    kept = float(probing._fit(*args)["point_mapc"][0]) * scale
    released = probing._fit(*args, rescale=False)
    assert kept == pytest.approx(1 / 18, rel=0.02)  # the unit sphere in R^20, at every scale
    assert (float(released["point_mapc"][0]) * scale < 1e-6) is collapses
    assert bool(released["resolution"][0] < probing.RESOLUTION_MIN) is collapses  # the audit sees it


def test_full_dim_zero_gives_zero_curvature_and_keeps_the_radius():
    point, neighbours = _sphere_patch(1e-2)
    stats = probing._fit(point, neighbours, None, "gram", probing.coarser_eps(torch.float64))
    for field in ("point_mapc", *probing.INVARIANT_FIELDS, "resolution"):
        assert float(stats[field][0]) == 0.0
    fitted = probing._fit(point, neighbours, 2, "gram", probing.coarser_eps(torch.float64))
    assert float(stats["radius"][0]) == float(fitted["radius"][0]) > 0


TINY = Measurement(points=10, toggles=3, id_runs=1, id_samples=64, precision="float64")


@pytest.mark.parametrize("deviation", sorted(DEVIATIONS))
def test_each_deviation_alone_measures_a_profile(split, deviation):
    model = models.build("vgg6_narrow", 10, 3, seed=0)
    measurement = dataclasses.replace(TINY, deviations=(deviation,))
    frame = probing.measure(model, models.probes(model), split, measurement)
    default = probing.measure(model, models.probes(model), split, TINY)
    latent = frame[frame["depth"] > 0]
    assert latent["mapc"].notna().all() and (latent["mapc"] >= 0).all()
    among = deviation == "point_among_neighbours"
    assert (latent["K"] == TINY.neighbours + among).all()
    if deviation in ("authors_neighbourhoods", "point_among_neighbours", "unscaled_fit", "svd_fit"):
        assert not frame["mapc"].equals(default["mapc"])  # it changes what is measured
    if deviation == "full_dim_zero":  # no probe here has d >= D: nothing changes
        pd.testing.assert_frame_equal(frame, default)


def test_full_dim_zero_zeroes_the_probes_whose_d_reaches_their_width(split, monkeypatch):
    model = models.build("vgg6_narrow", 10, 3, seed=0)
    probes = models.probes(model)
    real = probing.intrinsic_dimensions

    def huge_ids(*args, **kwargs):
        ids = real(*args, **kwargs)
        ids["linear"] = {**ids["linear"], "mean": 12.0}  # d = 12 >= D = 10 logits
        return ids

    monkeypatch.setattr(probing, "intrinsic_dimensions", huge_ids)
    zeroed = probing.measure(model, probes, split, dataclasses.replace(TINY, deviations=("full_dim_zero",)))
    clipped = probing.measure(model, probes, split, TINY)
    last = zeroed[zeroed["probe"] == "linear"].iloc[0]
    assert last["d"] == 12 and not last["d_clipped"] and last["m"] == 0
    assert last["mapc"] == 0.0 and last["sff_norm_median"] == 0.0
    ours = clipped[clipped["probe"] == "linear"].iloc[0]
    assert ours["d_clipped"] and ours["d"] == 6 and ours["mapc"] > 0  # min(K = 7, D = 10) − 1
    others = zeroed["probe"] != "linear"
    pd.testing.assert_frame_equal(
        zeroed[others].drop(columns="nmapc"), clipped[others].drop(columns="nmapc"), check_dtype=False
    )


def test_the_authors_preset_measures_the_released_way_whatever_the_chunking(split):
    model = models.build("vgg6_narrow", 10, 3, seed=0)
    probes = models.probes(model)
    authors = TINY.with_preset("authors")
    assert authors.precision == "float32" and authors.split == "train-augmented"
    whole = probing.measure_profile(model, probes, split, authors)
    pieces = probing.measure_profile(model, probes, split, authors, memory_bytes=1)  # one point a chunk
    pd.testing.assert_frame_equal(whole.frame, pieces.frame)
    pd.testing.assert_frame_equal(whole.points, pieces.points)
    latent = whole.frame[whole.frame["depth"] > 0]
    assert (latent["K"] <= TINY.neighbours + 1).all()  # 2^t − 1 with t <= toggles, and the point
    assert latent["mapc"].notna().all()


def test_the_fit_precision_changes_the_fits_not_the_dimensions(split, vgg, whole):
    """The precision is that of the curvature fits: TwoNN runs on the activations as the network
    computes them and PCA in float64 under both, so a float32 measurement has the same d."""
    single = probing.measure(*vgg, split, dataclasses.replace(SMALL, precision="float32"))
    for column in ("id_mean", "id_std", "pca_dim", "d"):
        assert single[column].tolist() == whole[column].tolist(), column
    assert not single["mapc"].equals(whole["mapc"])  # the fits did change


def test_measurements_at_the_same_points_share_their_dimensions_and_activations(split, vgg, whole, tmp_path):
    """Measured together, each profile is bit-identical to the one measured alone; TwoNN is run
    once for all of them, and the neighbourhoods forwarded once per kind of neighbourhood."""
    fits = [
        dataclasses.replace(SMALL, precision="float32"),
        dataclasses.replace(SMALL, deviations=("unscaled_fit",)),
        dataclasses.replace(SMALL, precision="float32", deviations=("full_dim_zero", "svd_fit")),
        dataclasses.replace(SMALL, deviations=("point_among_neighbours",)),
        dataclasses.replace(SMALL, deviations=("authors_neighbourhoods",)),
        dataclasses.replace(SMALL, precision="float32", deviations=("authors_neighbourhoods",)),
    ]
    model, probes = vgg
    forwards = []
    hook = model.register_forward_hook(lambda module, args, out: forwards.append(args[0].shape[0]))
    try:
        together = probing.measure_profiles(
            model, probes, split, [SMALL, *fits], workdirs=[tmp_path / str(i) for i in range(len(fits) + 1)]
        )
    finally:
        hook.remove()
    alone = [whole, *(probing.measure(model, probes, split, m) for m in fits)]
    for shared, own in zip(together, alone):
        pd.testing.assert_frame_equal(shared.frame, own, check_exact=True)
    assert not together[1].frame["mapc"].equals(together[0].frame["mapc"])
    perturbed = [t.frame[t.frame["neighbourhood"] == "perturbation"] for t in (together[0], together[4])]
    assert (perturbed[1]["K"] == perturbed[0]["K"] + 1).all()  # the point among its neighbours
    # one forward pass per point's neighbourhood of each kind (ours, the authors') and per TwoNN
    # run, not one per measurement
    neighbourhoods = [n for n in forwards if n not in (1, SMALL.id_samples)]
    assert len(neighbourhoods) == 2 * SMALL.points
    assert sum(n == SMALL.id_samples for n in forwards) == SMALL.id_runs
    # each measurement's workdir holds its own partial results, for a resume of any of them
    for i in range(len(fits) + 1):
        assert (tmp_path / str(i) / "intrinsic_dimension.json").is_file()
        assert list((tmp_path / str(i)).glob("curvature_*.pt"))


@pytest.mark.parametrize(
    "other",
    [
        dict(toggles=2),
        dict(split="train-augmented"),
        dict(points=SMALL.points - 1),
    ],
)
def test_measurements_on_other_points_are_not_measured_together(split, vgg, other):
    with pytest.raises(ValueError, match="differ only in the precision, the fit's deviations"):
        probing.measure_profiles(*vgg, split, [SMALL, dataclasses.replace(SMALL, **other)])


def _fits(n=6, big_d=40, k=20, d=3):
    gen = torch.Generator().manual_seed(5)
    points = torch.randn(n, big_d, generator=gen, dtype=torch.float64)
    around = points[:, None] + 0.1 * torch.randn(n, k, big_d, generator=gen, dtype=torch.float64)
    eps = probing.coarser_eps(torch.float64)
    return [
        functools.partial(probing._fit, points[i : i + 1], around[i : i + 1], d, "gram", eps)
        for i in range(n)
    ]


#: every kind of fit setting (dtype, method, rescale, among, d) a plan makes; None: full_dim_zero
FIT_SETTINGS = [
    (torch.float64, "gram", True, False, 2),
    (torch.float32, "gram", True, False, 2),
    (torch.float64, "svd", True, False, 2),
    (torch.float64, "gram", False, False, 2),
    (torch.float64, "gram", True, True, 2),
    (torch.float32, "svd", False, True, 3),
    (torch.float64, "gram", True, False, None),
]


@pytest.mark.parametrize("activations", [torch.float32, torch.float64])
@pytest.mark.parametrize("big_d", [9, 40])
def test_fits_of_one_point_together_are_bit_for_bit_each_fit_alone(big_d, activations):
    """_fit_settings shares the copies and distances of a point's fits: every setting gives the
    numbers its own _fit gives from its copy of the activations (radius measured there; an odd K,
    so that the point among its neighbours moves the median)."""
    gen = torch.Generator().manual_seed(4)
    centre = torch.randn(1, big_d, generator=gen, dtype=activations)
    around = centre + 0.1 * torch.randn(21, big_d, generator=gen, dtype=activations)
    together = probing._fit_settings(centre, around, tuple(FIT_SETTINGS))
    for setting, ours in zip(FIT_SETTINGS, together, strict=True):
        dtype, method, rescale, among, d = setting
        c, a = centre.to(dtype), around.to(dtype)
        a = torch.cat([c, a]) if among else a
        alone = probing._fit(c, [a], d, method, probing.coarser_eps(activations, dtype), rescale=rescale)
        assert ours.keys() == alone.keys()
        for field in ours:
            assert torch.equal(ours[field], alone[field]), (setting, field)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_fits_are_the_same_for_every_thread_count_and_leave_it_as_it_was(threads):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        got = probing.run_fits(_fits(), torch.device("cpu"))
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    torch.set_num_threads(1)
    try:
        alone = [fit() for fit in _fits()]  # one after the other, on one thread
    finally:
        torch.set_num_threads(before)
    assert len(got) == len(alone)
    for ours, theirs in zip(got, alone):
        for field in ours:
            assert torch.equal(ours[field], theirs[field]), field


def test_fits_silence_only_their_own_warnings_and_raise_their_errors():
    """An under-determined fit (K = 4 < 2 + 3) does not warn from run_fits, the warning filters
    are those of before (catch_warnings is not thread-safe: it is entered once, not per fit), and
    a fit's error reaches the caller."""
    filters = list(warnings.filters)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, generator=gen, dtype=torch.float64)
    nb = x[:, None] + torch.randn(2, 4, 6, generator=gen, dtype=torch.float64)
    fits = [functools.partial(probing._fit, x[i : i + 1], nb[i : i + 1], 2, "gram", 1e-16) for i in range(2)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probing.run_fits(fits, torch.device("cpu"))
    assert not [w for w in caught if issubclass(w.category, UnderdeterminedFitWarning)]
    assert warnings.filters == filters

    def broken():
        raise RuntimeError("this fit failed")

    with pytest.raises(RuntimeError, match="this fit failed"):
        probing.run_fits([*fits, broken], torch.device("cpu"))
    assert warnings.filters == filters
