"""The paper's measurement of one network: intrinsic dimension and curvature at every probe.

Faithful by default (``docs/design.md``, section 5), each deviation a named setting of the
:class:`~crlm_bench.experiment.cell.Measurement`:

- **Points**: ``points`` images of the measured split, a seeded choice among those with at least
  ``toggles`` nonzero singular values per channel. The default split is the test split without
  augmentation; ``split="train-augmented"`` reproduces the authors' defect (points from the
  shuffled, augmented training loader).
- **Intrinsic dimension**: TwoNN at every probe on ``id_runs`` seeded subsets of ``id_samples``
  images of the split; d = round(mean), clipped to [1, min(K, D) − 1] (flagged). PCA-90 % linear
  dimension on the first subset.
- **Curvature**: each point's 2^toggles − 1 perturbation neighbours
  (:mod:`~crlm_bench.experiment.neighbourhoods`) are forwarded with the point; at every probe the
  CAML fit with the probe's d gives principal curvatures (MAPC, NMAPC) and the dilution-free
  invariants. Fits with K < d + d(d+1)/2 are taken as minimum-norm solutions and flagged
  (``underdetermined``).
- **Input**: measured the paper's way (kNN among the points on raw 0–255 pixels, K = 2d,
  under-determined) and consistently with the latent probes (perturbation neighbourhoods of the
  normalised input); column ``neighbourhood`` tells them apart.

Memory stays bounded: points are processed in chunks whose neighbour activations at all probes
fit ``memory_bytes``, and each point's fit is done alone; each chunk is reduced to per-point
statistics at once and — given a ``workdir`` — saved with the points it covers, so an
interrupted profile resumes where it stopped. Peak memory is about ``memory_bytes`` plus the
model, the TwoNN samples and one point's fit per torch thread. The memory bound changes only how
much is held at once, never a number: each point is forwarded with its neighbours as one batch
and fitted alone, so the profile is bit-identical for every ``memory_bytes``.

Measurements that differ only in how they fit (the precision and the fit's deviations,
:data:`FIT_DEVIATIONS`) share their activations: :func:`measure_profiles` forwards every point's
neighbourhood and runs TwoNN once for all of them, and fits each where the fits differ; those
that differ in their neighbourhoods too (:data:`NEIGHBOURHOOD_DEVIATIONS`) share the points and
TwoNN. Every profile is bit-identical to the one :func:`measure_profile` gives alone. The fits run
one per torch thread, each on one thread (:func:`run_fits`), so no number depends on the thread
count.

One module (about 800 lines, well above the project's ~500): the chunking, the resume, the memory
bound and the shared activations are one mechanism whose invariant (bit-identical for every bound
and every set of measurements taken together) is checked together. The profile's rows (``_row``,
``_profile``, :func:`add_nmapc`) are the part that could move out first.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from crlm_bench.experiment.cell import DEVIATIONS, Measurement
from crlm_bench.experiment.neighbourhoods import (
    image_ranks,
    perturbation_neighbourhoods,
    released_neighbourhoods,
    released_toggles,
)
from crlm_bench.experiment.store import load_tensors, save_tensors
from crlm_bench.files import atomic_write, open_regular
from crlm_bench.geometry import (
    Invariants,
    UnderdeterminedFitWarning,
    n_coefficients,
    pca_dimension,
    principal_curvatures,
    twonn,
)
from crlm_bench.vision.datasets import ImageDataset, augment_batch, normalize
from crlm_bench.vision.models import Probe

log = logging.getLogger(__name__)

#: ``report(message, step)``: a progress line; ``step=False`` for a point within a step
Reporter = Callable[[str, bool], None]

#: points per batch of the released code's neighbourhoods (``authors_neighbourhoods``)
AUTHORS_BATCH = 8
#: default bound on the neighbour activations held at once (all probes of one chunk of points)
MEMORY_BYTES = 2 * 2**30
#: images per forward batch when a point's neighbourhood is larger than that
FORWARD_IMAGES = 1024
#: seed of the choice of points and of the ID subsets
SEED = 0
INVARIANT_FIELDS = ("sff_norm", "mean_curvature", "scalar_curvature")
#: Per-point values kept with a profile (``points.parquet``): each statistic behind its columns.
POINT_FIELDS = ("point_mapc", *INVARIANT_FIELDS, "radius", "resolution")
#: A fit resolves its curvature when the normal offsets it fits (‖II‖ · radius²) are at least this
#: many times the rounding of the coordinates they are read from (eps · RMS coordinate).
RESOLUTION_MIN = 10.0
PROFILE_COLUMNS = [
    "probe",
    "neighbourhood",
    "depth",
    "total_depth",
    "relative_depth",
    "ambient_dim",
    "id_mean",
    "id_std",
    "pca_dim",
    "d",
    "d_clipped",
    "K",
    "m",
    "underdetermined",
    "points",
    "mapc",
    "nmapc",
    *[f"{f}_{s}" for f in INVARIANT_FIELDS for s in ("median", "mean")],
    "radius",
    "mapc_undiluted",
    "mapc_dimensionless",
    "resolution",
    "unresolved",
]


# --------------------------------------------------------------------------------------------
# reading the probes


@contextmanager
def recording(model: nn.Module, probes: list[Probe], store: dict[str, torch.Tensor]) -> Iterator[None]:
    """Forward hooks that put each probe's output, flattened to ``(B, D)``, in ``store[name]``.

    The input probe (``module is None``) records the tensor the model is called with.
    """
    handles = []
    for probe in probes:
        if probe.module is None:
            handles.append(
                model.register_forward_pre_hook(
                    lambda _m, args, name=probe.name: store.__setitem__(name, args[0].flatten(1).detach())
                )
            )
        else:
            handles.append(
                probe.module.register_forward_hook(
                    lambda _m, _a, out, name=probe.name: store.__setitem__(name, out.flatten(1).detach())
                )
            )
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def activations(
    model: nn.Module, probes: list[Probe], batch: torch.Tensor, *, batch_size: int = 1024
) -> dict[str, torch.Tensor]:
    """Every probe's output for a normalised ``batch`` ``(B, C, H, W)``: name → ``(B, D)``."""
    parts: dict[str, list[torch.Tensor]] = {p.name: [] for p in probes}
    for start in range(0, batch.shape[0], batch_size):
        out: dict[str, torch.Tensor] = {}
        with recording(model, probes, out):
            model(batch[start : start + batch_size])
        for name in parts:
            parts[name].append(out[name])
    return {name: torch.cat(v) for name, v in parts.items()}


# --------------------------------------------------------------------------------------------
# settings of one measurement run


@dataclass(frozen=True)
class Plan:
    """What one profile measures, derived from a Measurement and the data."""

    measurement: Measurement
    point_indices: torch.Tensor  # (n,) indices into the split
    device: torch.device
    dtype: torch.dtype
    memory_bytes: int

    @property
    def method(self) -> str:
        return "svd" if self.deviates("svd_fit") else "gram"

    @property
    def rescale(self) -> bool:
        """Whether fits are rescaled before squaring (not with ``unscaled_fit``)."""
        return not self.deviates("unscaled_fit")

    def deviates(self, name: str) -> bool:
        return name in self.measurement.deviations


#: deviations that change only the fit, not the points, their neighbourhoods or the dimensions:
#: measurements that differ in these and the precision share their activations
FIT_DEVIATIONS = frozenset({"svd_fit", "unscaled_fit", "full_dim_zero", "point_among_neighbours"})


#: deviations that change the neighbourhoods only: measurements that differ in these (and in
#: :data:`FIT_DEVIATIONS`) share their points and intrinsic dimensions, not their activations
NEIGHBOURHOOD_DEVIATIONS = frozenset({"authors_neighbourhoods"})


def activation_settings(measurement: Measurement) -> Measurement:
    """What a measurement's activations and dimensions depend on: the measurement without its
    precision and its :data:`FIT_DEVIATIONS`. :func:`measure_profiles` forwards the neighbourhoods
    once for all measurements with equal activation settings."""
    kept = tuple(d for d in measurement.deviations if d not in FIT_DEVIATIONS)
    return dataclasses.replace(measurement, precision="float64", deviations=kept)


def shared_settings(measurement: Measurement) -> Measurement:
    """What a measurement's points and intrinsic dimensions depend on: its activation settings
    without :data:`NEIGHBOURHOOD_DEVIATIONS`. Measurements with equal shared settings can be
    measured together by :func:`measure_profiles` (one TwoNN per probe for all of them)."""
    settings = activation_settings(measurement)
    kept = tuple(d for d in settings.deviations if d not in NEIGHBOURHOOD_DEVIATIONS)
    return dataclasses.replace(settings, deviations=kept)


def check_deviations(measurement: Measurement) -> None:
    unknown = sorted(set(measurement.deviations) - DEVIATIONS.keys())
    if unknown:
        known = ", ".join(f"{k} ({v})" for k, v in DEVIATIONS.items())
        raise ValueError(f"unknown deviation(s) {unknown}; known: {known}")


def measured_images(split: ImageDataset, measurement: Measurement) -> torch.Tensor:
    """The split's images as measured: as stored, or with the training augmentation (seeded)."""
    if measurement.split == "train-augmented":
        return augment_batch(split.images, torch.Generator().manual_seed(SEED))
    return split.images


def choose_points(images: torch.Tensor, measurement: Measurement) -> torch.Tensor:
    """A seeded choice of ``points`` images with at least ``toggles`` nonzero singular values."""
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(SEED))
    chosen: list[torch.Tensor] = []
    have = 0
    for start in range(0, order.shape[0], 4096):
        block = order[start : start + 4096]
        ok = block[image_ranks(images[block]) >= measurement.toggles]
        chosen.append(ok)
        have += ok.shape[0]
        if have >= measurement.points:
            break
    idx = torch.cat(chosen)[: measurement.points]
    if idx.shape[0] < measurement.points:
        raise ValueError(
            f"only {idx.shape[0]} images of the split have {measurement.toggles} nonzero singular values per "
            f"channel, {measurement.points} points asked; use fewer points or toggles"
        )
    return idx


# --------------------------------------------------------------------------------------------
# intrinsic dimension


def intrinsic_dimensions(
    model: nn.Module,
    probes: list[Probe],
    images: torch.Tensor,
    dataset: str,
    plan: Plan,
    report: Reporter | None = None,
) -> dict[str, dict]:
    """TwoNN over ``id_runs`` seeded subsets and PCA-90 % on the first, per probe; whatever the
    measurement's precision (TwoNN in the activations' dtype, PCA in float64)."""
    m = plan.measurement
    n_samples = min(m.id_samples, images.shape[0])
    runs: dict[str, list[float]] = {p.name: [] for p in probes}
    pca: dict[str, int] = {}
    for run in range(m.id_runs):
        if report is not None:
            report(f"intrinsic dimension, run {run + 1}/{m.id_runs} ({n_samples} images)", True)
        gen = torch.Generator().manual_seed(SEED + 1 + run)
        subset = torch.randperm(images.shape[0], generator=gen)[:n_samples]
        x = normalize(images[subset].to(plan.device), dataset)
        acts = activations(model, probes, x)
        for name, a in acts.items():
            # in the activations' own dtype (float32 from the network): the fits' precision is not
            # the dimension's, and TwoNN's neighbour search costs twice as much in float64
            runs[name].append(twonn(a))
            if run == 0:
                pca[name] = pca_dimension(a.to(torch.float64))
        del acts
    out = {}
    for name, values in runs.items():
        t = torch.tensor(values, dtype=torch.float64)
        std = float(t.std()) if len(values) > 1 else 0.0
        out[name] = {"runs": values, "mean": float(t.mean()), "std": std, "pca": pca[name]}
    return out


def dimension_for_fit(id_mean: float, k: int, big_d: int) -> tuple[int, bool]:
    """The paper's d = round(mean TwoNN), clipped to [1, min(K, D) − 1]; and whether it was clipped."""
    d = int(round(id_mean)) if math.isfinite(id_mean) else 1
    top = min(k, big_d) - 1
    clipped = max(1, min(d, top))
    return clipped, clipped != d


# --------------------------------------------------------------------------------------------
# curvature, streamed over chunks of points


def fit_bytes(k: int, big_d: int, d: int, itemsize: int) -> int:
    """Memory of one point's fit: design matrix and its pseudo-inverse (K × p each), Hessians
    (m × d × d, twice with their eigenvalues' workspace), displacements (K × D)."""
    m = max(1, min(k, big_d) - d)
    return (2 * k * n_coefficients(d) + 2 * m * d * d + k * big_d) * itemsize


def _fit(
    points: torch.Tensor,
    neighbours: torch.Tensor | list[torch.Tensor],
    d: int | None,
    method: str,
    eps: float,
    *,
    rescale: bool = True,
    radii: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Per-point MAPC, invariants, radius and resolution, one point's fit at a time: batched LAPACK
    calls of other sizes round differently, so a fixed batch of one keeps every number independent
    of how the points were chunked (and one point's fit is the least memory a fit can take).

    ``radius``: the median distance from the point to its neighbours, in the probe's space (what
    makes curvature dimensionless: curvature × radius). ``resolution``: the fitted normal offsets
    ‖II‖ · radius² over the rounding of the coordinates they come from, ``eps`` · RMS coordinate
    of the point (``eps`` of the coarser of the activations' and the fit's precision). Below
    :data:`RESOLUTION_MIN` the fit reads rounding, not curvature — or the pseudo-inverse's
    relative cutoff has dropped the quadratic terms, which gives ‖II‖ = 0.

    ``neighbours``: ``(n, K, D)``, or one ``(K_i, D)`` tensor per point. ``d=None``: zero
    curvatures without a fit (the deviation ``full_dim_zero``). ``rescale=False``: the fit at the
    neighbourhood's own scale (the deviation ``unscaled_fit``). Under-determined fits warn
    (:class:`UnderdeterminedFitWarning`); the profile records them as a column instead
    (:func:`run_fits` silences the warning). ``radii``: the points' radii ``(n,)`` where already
    measured (:func:`_distances`), so that fits of the same neighbours need not measure them again.
    """
    parts: list[dict[str, torch.Tensor]] = []
    zero = torch.zeros(1, dtype=torch.float64)
    for i in range(points.shape[0]):
        x = points[i].to(torch.float64)
        around = neighbours[i]
        radius = _distances(points[i], around).median() if radii is None else radii[i]
        if d is None:
            zeros = {f: zero.clone() for f in ("point_mapc", *INVARIANT_FIELDS, "resolution")}
            parts.append({**zeros, "radius": radius.reshape(1).cpu()})
            continue
        kappa, hessians = principal_curvatures(
            points[i : i + 1],
            around[None],
            d,
            method=method,
            allow_underdetermined=True,
            return_hessians=True,
            rescale=rescale,
        )
        # one fit gives both; the same numbers as curvature_invariants
        inv = Invariants.from_hessians(hessians)
        del hessians
        rms = x.norm() / math.sqrt(x.numel())
        sff = inv.sff_norm.to(torch.float64).cpu()
        floor = eps * float(rms)
        resolution = sff * float(radius) ** 2 / floor if floor > 0 else torch.full_like(sff, math.inf)
        parts.append(
            {
                "point_mapc": kappa.abs().mean(dim=(1, 2)).to(torch.float64).cpu(),
                **{f: getattr(inv, f).to(torch.float64).cpu() for f in INVARIANT_FIELDS},
                "radius": radius.reshape(1).cpu(),
                "resolution": resolution,
            }
        )
    return _concatenated(parts)


def _distances(point: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
    """The distances ``(K,)`` from ``point`` ``(D,)`` (or ``(1, D)``) to its ``neighbours``
    ``(K, D)``, in float64; their median is the point's radius."""
    return (neighbours.to(torch.float64) - point.to(torch.float64)).norm(dim=-1)


def _concatenated(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Per-point results, one dict of ``(n_i,)`` tensors each, as one dict of their concatenations."""
    return {f: torch.cat([p[f] for p in parts]) for f in parts[0]}


def coarser_eps(*dtypes: torch.dtype) -> float:
    """The machine epsilon of the coarsest of ``dtypes``."""
    return max(torch.finfo(t).eps for t in dtypes)


def run_fits(
    fits: list[Callable[[], dict[str, torch.Tensor]]], device: torch.device
) -> list[dict[str, torch.Tensor]]:
    """The results of ``fits`` (one point's fit each), in order.

    On a CPU every fit runs on one torch thread, and as many fits at once as torch has threads: a
    fit is a chain of small LAPACK calls that a second thread barely speeds up (measured: 11.5 s
    against 10.8 s for a profile's fits), while two fits side by side take 0.6 of the time. One
    thread per fit also makes every number independent of the thread count (a thread count
    changes how a product rounds). On a GPU the fits run one after the other. The warnings of
    under-determined fits are silenced here, once for all threads (``warnings.catch_warnings``
    is not thread-safe): the profile records them in its ``underdetermined`` column.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnderdeterminedFitWarning)
        if device.type != "cpu":
            return [fit() for fit in fits]
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(1)
            if threads == 1 or len(fits) < 2:
                return [fit() for fit in fits]
            with ThreadPoolExecutor(threads, initializer=torch.set_num_threads, initargs=(1,)) as pool:
                return list(pool.map(lambda fit: fit(), fits))
        finally:
            torch.set_num_threads(threads)


def chunk_size(n_neighbours: int, widths: list[int], fit_itemsize: int, memory_bytes: int) -> int:
    """Points per chunk so that the chunk's activations at every probe (float32), plus one probe's
    copy in the fit dtype and its displacements, stay within ``memory_bytes`` (at least one point)."""
    per_point = (n_neighbours + 1) * (4 * sum(widths) + 2 * fit_itemsize * max(widths))
    return max(1, memory_bytes // max(1, per_point))


def _saved_points(
    workdir: Path, plan: Plan, dims: dict[str, int]
) -> dict[int, dict[str, dict[str, torch.Tensor]]]:
    """Per-point statistics of the chunk files in ``workdir`` that match this plan: position →
    probe → field → scalar tensor. A file is used only where it records the same point (split
    index at that position) and the same probes with the same d; anything else is ignored (and
    removed), so a run resumed with another memory bound or another choice of points recomputes
    what does not match instead of mixing it in."""
    out: dict[int, dict[str, dict[str, torch.Tensor]]] = {}
    for path in sorted(workdir.glob("curvature_*.pt")):
        try:
            saved = load_tensors(path)
            positions = saved["positions"].tolist()
            indices = saved["indices"]
            ok = (
                saved["dims"] == dims
                and set(saved["stats"]) == set(dims)
                and len(positions) == indices.shape[0]
                and all(0 <= p < plan.point_indices.shape[0] for p in positions)
                and torch.equal(plan.point_indices[positions], indices)
            )
        except Exception as error:  # noqa: BLE001 - any unreadable partial file is recomputed
            log.warning("ignoring partial result %s (%s)", path, error)
            ok = False
        if not ok:
            path.unlink(missing_ok=True)
            continue
        for i, pos in enumerate(positions):
            out[pos] = {name: {f: v[i] for f, v in fields.items()} for name, fields in saved["stats"].items()}
    return out


def curvature_chunks(
    model: nn.Module,
    probes: list[Probe],
    images: torch.Tensor,
    dataset: str,
    dims: list[dict[str, int]],
    widths: dict[str, int],
    plans: list[Plan],
    *,
    workdirs: list[Path | None] | None = None,
    progress: bool | None = None,
    report: Reporter | None = None,
) -> list[dict[str, dict[str, torch.Tensor]]]:
    """Per-point statistics at every probe for each plan's points: one name → field → ``(n,)``
    per plan. The plans share their activations (:func:`activation_settings`): each chunk's
    neighbourhoods are forwarded once and fitted under each plan, with that plan's ``dims``.

    The result is bit-identical whatever ``memory_bytes`` and whichever plans are measured
    together: each point is forwarded with its neighbours as one batch (in fixed slices of
    :data:`FORWARD_IMAGES` when larger) and fitted alone, so the chunking decides only what is
    held at once. Each chunk saved in a plan's ``workdirs`` entry records its points' positions,
    their split indices and every probe's d; a resumed run reuses saved points wherever they match,
    chunked any way (:func:`_saved_points`).
    """
    plan = plans[0]
    m = plan.measurement
    idx = plan.point_indices
    workdirs = workdirs if workdirs is not None else [None] * len(plans)
    itemsize = max(torch.finfo(p.dtype).bits // 8 for p in plans)
    step = chunk_size(m.neighbours, list(widths.values()), itemsize, plan.memory_bytes)
    saved = [_saved_points(w, p, d) if w is not None else {} for w, p, d in zip(workdirs, plans, dims)]
    results: list[list[dict[str, dict[str, torch.Tensor]]]] = [[] for _ in plans]
    disable = (not progress) if progress is not None else None
    bar = tqdm(range(0, idx.shape[0], step), desc="curvature", unit="chunk", disable=disable)
    n = idx.shape[0]
    for i, start in enumerate(bar):
        positions = list(range(start, min(start + step, n)))
        done = [all(p in got for p in positions) for got in saved]
        if report is not None:
            reused = " (saved)" if all(done) else ""
            where = f"points {start + 1}-{positions[-1] + 1} of {n}, chunk {i + 1}/{-(-n // step)}{reused}"
            report(f"curvature, {where}", True)
        for k in (k for k, whole in enumerate(done) if whole):
            results[k].append(
                {
                    probe.name: {
                        f: torch.stack([saved[k][p][probe.name][f] for p in positions])
                        for f in saved[k][start][probe.name]
                    }
                    for probe in probes
                }
            )
        if all(done):
            continue
        chunk = idx[positions]
        per_probe: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {p.name: [] for p in probes}
        for j, position in enumerate(positions):
            if report is not None and j:
                report(f"curvature, point {start + j + 1} of {n}", False)
            x = _point_and_neighbours(images, dataset, plan, position).to(plan.device)
            acts = activations(model, probes, x, batch_size=FORWARD_IMAGES)
            for probe in probes:
                a = acts.pop(probe.name)  # as the model computes it; the fit's dtype below
                per_probe[probe.name].append((a[:1], a[1:]))
            del acts
        todo = [k for k, whole in enumerate(done) if not whole]
        fitted = _fit_chunk(probes, per_probe, [dims[k] for k in todo], widths, [plans[k] for k in todo])
        for k, stats in zip(todo, fitted):
            if workdirs[k] is not None:
                record = {
                    "positions": torch.tensor(positions),
                    "indices": chunk,
                    "dims": dict(dims[k]),
                    "stats": stats,
                }
                name = f"curvature_{positions[0]:06d}_{positions[-1] + 1:06d}.pt"
                save_tensors(workdirs[k] / name, record)
            results[k].append(stats)
        del per_probe
    return [
        {p.name: {f: torch.cat([r[p.name][f] for r in res]) for f in res[0][p.name]} for p in probes}
        for res in results
    ]


def _fit_chunk(
    probes: list[Probe],
    per_probe: dict[str, list[tuple[torch.Tensor, torch.Tensor]]],
    dims: list[dict[str, int]],
    widths: dict[str, int],
    plans: list[Plan],
) -> list[dict[str, dict[str, torch.Tensor]]]:
    """One chunk's per-point statistics at every probe under each of ``plans`` (with its
    ``dims``), from each point's (centre, neighbours) activations.

    Plans that fit a probe the same way (:func:`_fit_setting`: precision, method, scale, d, the
    point among its neighbours or not) share that probe's fits: ``full_dim_zero`` costs nothing
    where d < D, and a fit deviation nothing at a probe where it changes nothing. Every point's
    fit is one task of :func:`run_fits`."""
    settings = [
        {p.name: _fit_setting(plan, dims[k][p.name], widths[p.name]) for p in probes}
        for k, plan in enumerate(plans)
    ]
    unique: dict[str, list[tuple]] = {p.name: [] for p in probes}
    for name, setting in dict.fromkeys((p.name, kept[p.name]) for kept in settings for p in probes):
        unique[name].append(setting)
    fits, spans = [], {}
    for name, kept in unique.items():
        start = len(fits)
        for centre, around in per_probe[name]:
            fits.append(functools.partial(_fit_settings, centre, around, tuple(kept)))
        spans[name] = (start, len(fits))
    results = run_fits(fits, plans[0].device)
    stats = {
        (name, setting): _concatenated([r[j] for r in results[slice(*spans[name])]])
        for name, kept in unique.items()
        for j, setting in enumerate(kept)
    }
    return [{p.name: stats[p.name, kept[p.name]] for p in probes} for kept in settings]


def _fit_settings(centre: torch.Tensor, around: torch.Tensor, settings: tuple[tuple, ...]) -> list[dict]:
    """One point's fits under each of ``settings`` (:func:`_fit_setting`): the fit of its
    activations ``centre`` ``(1, D)`` and ``around`` ``(K, D)`` copied to the setting's dtype, with
    the point put first among its neighbours where the setting says so. The settings share what
    they have in common, bit for bit what each would compute alone: one copy of the activations
    per dtype (made here, so that only the fits running hold one), and the distances to the
    point, from which every setting's radius is taken (measured: 1.2x faster for a seed-0 cell's
    five fits of a point at D = 12 544)."""
    copies: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor]] = {}
    measured: dict[torch.dtype, torch.Tensor] = {}
    out = []
    for dtype, method, rescale, among, d in settings:
        if dtype not in copies:
            copies[dtype] = (centre.to(dtype), around.to(dtype))
        c, a = copies[dtype]
        # the distances _fit measures from the copy: those of the activations wherever the copy
        # is exact (a dtype at least as fine as theirs), else those of the rounded copy
        exact = torch.finfo(dtype).eps <= torch.finfo(centre.dtype).eps
        rounding = centre.dtype if exact else dtype
        if rounding not in measured:
            measured[rounding] = _distances(c, a)
        distances = measured[rounding]
        if among:  # the point's own distance, 0, joins the others
            a, distances = torch.cat([c, a]), torch.cat([distances.new_zeros(1), distances])
        eps = coarser_eps(centre.dtype, dtype)  # the activations' and the fit's
        out.append(_fit(c, [a], d, method, eps, rescale=rescale, radii=distances.median().reshape(1)))
    return out


def _fit_setting(plan: Plan, d: int, width: int) -> tuple:
    """What a plan's fit at a probe depends on besides the activations: the fit's dtype, method
    and scale, whether the point is among its neighbours, and d (None: zero curvatures without
    a fit, ``full_dim_zero`` where d ≥ D)."""
    among = plan.deviates("point_among_neighbours")
    return (plan.dtype, plan.method, plan.rescale, among, None if d >= width else d)


def _point_and_neighbours(images: torch.Tensor, dataset: str, plan: Plan, position: int) -> torch.Tensor:
    """The normalised point at ``position`` of the plan followed by its neighbours, ``(1 + M, C, H, W)``.

    The paper's neighbourhoods are built from the point alone (0–255 pixels, float64); the
    released code's (``authors_neighbourhoods``) from the batch of :data:`AUTHORS_BATCH` points the
    position falls in, normalised in float32, so they too do not depend on the chunking.
    """
    point = int(plan.point_indices[position])
    raw = images[point : point + 1]
    if not plan.deviates("authors_neighbourhoods"):
        nbs = perturbation_neighbourhoods(raw, plan.measurement.toggles)  # (1, M, C, H, W) float64, 0–255
        return normalize(torch.cat([raw.to(torch.float64), nbs[0]]).to(plan.device), dataset)
    first = position - position % AUTHORS_BATCH
    batch = normalize(_authors_batch(images, plan, first).to(plan.device), dataset)  # float32
    nbs = released_neighbourhoods(batch, plan.measurement.toggles, image=position - first)
    return torch.cat([batch[position - first : position - first + 1], nbs[0]])


def _authors_batch(images: torch.Tensor, plan: Plan, first: int) -> torch.Tensor:
    return images[plan.point_indices[first : first + AUTHORS_BATCH]]


def neighbour_count(images: torch.Tensor, dataset: str, plan: Plan) -> int:
    """K of the plan's perturbation neighbourhoods: 2^toggles − 1, or with
    ``authors_neighbourhoods`` the fewest of any batch (2^t − 1, t = min(batch rank, toggles));
    one more with ``point_among_neighbours``."""
    k = plan.measurement.neighbours
    if plan.deviates("authors_neighbourhoods"):
        for first in range(0, plan.point_indices.shape[0], AUTHORS_BATCH):
            batch = normalize(_authors_batch(images, plan, first), dataset)
            k = min(k, 2 ** released_toggles(batch, plan.measurement.toggles) - 1)
    return k + plan.deviates("point_among_neighbours")


def input_knn(images: torch.Tensor, plan: Plan, d: int) -> tuple[dict[str, torch.Tensor], int]:
    """The paper's input probe: kNN among the points on raw 0–255 pixels, K = 2d."""
    from crlm_bench.geometry import knn

    raw = images[plan.point_indices].flatten(1).to(torch.float64)
    k = min(2 * d, raw.shape[0] - 1)
    d_fit = min(d, min(k, raw.shape[1]) - 1)
    idx = knn(raw, k)
    eps = coarser_eps(plan.dtype)  # integer pixel values: exact in float64
    points, neighbours = raw.to(plan.dtype), raw[idx].to(plan.dtype)
    fits = [
        functools.partial(
            _fit, points[i : i + 1], neighbours[i : i + 1], d_fit, plan.method, eps, rescale=plan.rescale
        )
        for i in range(points.shape[0])
    ]
    parts = run_fits(fits, plan.device)
    return _concatenated(parts), k


# --------------------------------------------------------------------------------------------
# the profile


def _row(
    probe: Probe,
    neighbourhood: str,
    big_d: int,
    ids: dict,
    d: int,
    clipped: bool,
    k: int,
    stats: dict[str, torch.Tensor],
) -> dict:
    row = {
        "probe": probe.name,
        "neighbourhood": neighbourhood,
        "depth": probe.depth,
        "total_depth": probe.total_depth,
        "relative_depth": probe.relative_depth,
        "ambient_dim": big_d,
        "id_mean": ids["mean"],
        "id_std": ids["std"],
        "pca_dim": ids["pca"],
        "d": d,
        "d_clipped": clipped,
        "K": k,
        "m": max(0, min(k, big_d) - d),
        "underdetermined": k < n_coefficients(d),
        "points": int(stats["point_mapc"].shape[0]),
        "mapc": float(stats["point_mapc"].mean()),
    }
    for f in INVARIANT_FIELDS:
        row[f"{f}_median"] = float(stats[f].median())
        row[f"{f}_mean"] = float(stats[f].mean())
    row["radius"] = float(stats["radius"].median())
    row["mapc_undiluted"] = row["m"] * row["mapc"]
    row["mapc_dimensionless"] = float((stats["point_mapc"] * stats["radius"]).mean())
    row["resolution"] = float(stats["resolution"].median())
    row["unresolved"] = not row["resolution"] >= RESOLUTION_MIN
    return row


def add_nmapc(frame: pd.DataFrame, input_neighbourhood: str = "knn") -> pd.Series:
    """NMAPC = MAPC / mean MAPC over the probes (input included, measured with ``input_neighbourhood``)."""
    is_input = frame["depth"] == 0
    chosen = frame[~is_input | (frame["neighbourhood"] == input_neighbourhood)]
    if not (chosen["depth"] == 0).any():  # that input row was not measured: use the other one
        chosen = frame
    return frame["mapc"] / chosen["mapc"].mean()


def _saved_ids(path: Path, probes: list[Probe]) -> dict | None:
    """The intrinsic dimensions saved by an interrupted run, if ``path`` is a regular file that
    holds them for exactly these probes; else None (and the file is removed), to be recomputed."""
    if not path.exists() and not path.is_symlink():
        return None
    try:
        with open_regular(path) as fh:
            ids = json.load(fh)
        if sorted(ids) != sorted(p.name for p in probes):
            raise ValueError(f"probes {sorted(ids)}")
        return ids
    except (OSError, ValueError) as error:  # not a regular file, unreadable, not JSON, other probes
        log.warning("ignoring partial result %s (%s)", path, error)
        path.unlink(missing_ok=True)
        return None


#: Columns of a profile's per-point values: which probe row and point, and :data:`POINT_FIELDS`.
POINT_COLUMNS = ["probe", "neighbourhood", "point", "index", *POINT_FIELDS]


@dataclass(frozen=True)
class Profile:
    """A measured profile: one row per probe (:data:`PROFILE_COLUMNS`) and, behind each row, the
    per-point values (:data:`POINT_COLUMNS`) its statistics are summaries of."""

    frame: pd.DataFrame
    points: pd.DataFrame


def _point_rows(probe: Probe, neighbourhood: str, plan: Plan, stats: dict[str, torch.Tensor]) -> pd.DataFrame:
    n = stats["point_mapc"].shape[0]
    return pd.DataFrame(
        {
            "probe": [probe.name] * n,
            "neighbourhood": [neighbourhood] * n,
            "point": range(n),
            "index": plan.point_indices[:n].tolist(),
            **{f: stats[f].numpy() for f in POINT_FIELDS},
        }
    )


def measure_profile(
    model: nn.Module,
    probes: list[Probe],
    split: ImageDataset,
    measurement: Measurement,
    *,
    device: str | torch.device = "cpu",
    workdir: str | Path | None = None,
    memory_bytes: int = MEMORY_BYTES,
    progress: bool | None = None,
    report: Reporter | None = None,
) -> Profile:
    """The profile of ``model``: one row per probe (two for the input when ``input_probe="both"``),
    with the per-point values behind each row.

    Columns: :data:`PROFILE_COLUMNS`. ``workdir`` keeps the intermediate results (ID per probe,
    per-chunk curvature) so that an interrupted call resumes where it stopped. ``report(message,
    step)`` receives a line per stage (ID run, chunk of points) and, with ``step=False``, per point.
    """
    (profile,) = measure_profiles(
        model,
        probes,
        split,
        [measurement],
        device=device,
        workdirs=[workdir],
        memory_bytes=memory_bytes,
        progress=progress,
        report=report,
    )
    return profile


def _dtype(measurement: Measurement) -> torch.dtype:
    return torch.float64 if measurement.precision == "float64" else torch.float32


def measure_profiles(
    model: nn.Module,
    probes: list[Probe],
    split: ImageDataset,
    measurements: list[Measurement],
    *,
    device: str | torch.device = "cpu",
    workdirs: list[str | Path | None] | None = None,
    memory_bytes: int = MEMORY_BYTES,
    progress: bool | None = None,
    report: Reporter | None = None,
) -> list[Profile]:
    """:func:`measure_profile` under each of ``measurements``, which must have the same
    :func:`shared_settings` (they differ only in the precision, the fit's deviations and the
    neighbourhoods'): the points and the intrinsic dimensions are computed once, the
    neighbourhoods' activations once per :func:`activation_settings`, the fits once per
    measurement and probe where they differ. Each profile is bit-identical to the one measured
    alone.
    ``workdirs``: one per measurement (or None), as ``workdir`` there."""
    if not measurements:
        raise ValueError("measure_profiles needs at least one measurement")
    shared = {shared_settings(m) for m in measurements}
    if len(shared) > 1:
        raise ValueError(
            "measurements measured together must differ only in the precision, the fit's deviations "
            f"({', '.join(sorted(FIT_DEVIATIONS))}) and the neighbourhoods' "
            f"({', '.join(sorted(NEIGHBOURHOOD_DEVIATIONS))}); got {list(measurements)}"
        )
    for m in measurements:
        check_deviations(m)
    model.eval()
    device = torch.device(device)
    paths = [Path(w) if w is not None else None for w in (workdirs or [None] * len(measurements))]
    if len(paths) != len(measurements):
        raise ValueError(f"{len(measurements)} measurements but {len(paths)} workdirs")
    for path in paths:
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
    first = measurements[0]
    images = measured_images(split, first)
    dataset = split.info.name
    points = choose_points(images, first)
    plans = [Plan(m, points, device, _dtype(m), memory_bytes) for m in measurements]

    id_files = [p / "intrinsic_dimension.json" if p is not None else None for p in paths]
    found = [_saved_ids(f, probes) if f is not None else None for f in id_files]
    ids = next((i for i in found if i is not None), None)
    if ids is None:
        ids = intrinsic_dimensions(model, probes, images, dataset, plans[0], report)
    for id_file, saved in zip(id_files, found):
        if id_file is not None and saved is None:
            with atomic_write(id_file, "w") as fh:
                json.dump(ids, fh)

    sample = activations(model, probes, normalize(images[points[:1]].to(device), dataset))
    widths = {name: a.shape[1] for name, a in sample.items()}
    ks = [neighbour_count(images, dataset, plan) for plan in plans]
    dims: list[dict[str, int]] = []
    clipped: list[dict[str, bool]] = []
    for plan, k in zip(plans, ks):
        chosen = {p.name: dimension_for_fit(ids[p.name]["mean"], k, widths[p.name]) for p in probes}
        if plan.deviates("full_dim_zero"):
            for p in probes:
                full = max(1, int(round(ids[p.name]["mean"])))
                if full >= widths[p.name]:
                    chosen[p.name] = (full, False)  # zero curvatures there (curvature_chunks)
        dims.append({name: d for name, (d, _) in chosen.items()})
        clipped.append({name: c for name, (_, c) in chosen.items()})

    stats: list = [None] * len(plans)
    groups: dict[Measurement, list[int]] = {}
    for i, m in enumerate(measurements):  # one forward pass of the neighbourhoods per group
        groups.setdefault(activation_settings(m), []).append(i)
    for group in groups.values():
        measured = curvature_chunks(
            model,
            probes,
            images,
            dataset,
            [dims[i] for i in group],
            widths,
            [plans[i] for i in group],
            workdirs=[paths[i] for i in group],
            progress=progress,
            report=report,
        )
        for i, st in zip(group, measured):
            stats[i] = st
    return [
        _profile(probes, images, plan, ids, widths, k, d, c, st)
        for plan, k, d, c, st in zip(plans, ks, dims, clipped, stats)
    ]


def _profile(
    probes: list[Probe],
    images: torch.Tensor,
    plan: Plan,
    ids: dict,
    widths: dict[str, int],
    k: int,
    dims: dict[str, int],
    clipped: dict[str, bool],
    stats: dict[str, dict[str, torch.Tensor]],
) -> Profile:
    measurement = plan.measurement
    rows, point_rows = [], []
    for p in probes:
        perturbation = p.module is not None or measurement.input_probe in ("perturbation", "both")
        if p.module is None and measurement.input_probe in ("knn", "both"):
            d_in = max(1, int(round(ids[p.name]["mean"])))
            knn_stats, k_in = input_knn(images, plan, d_in)
            d_fit = min(d_in, min(k_in, widths[p.name]) - 1)
            rows.append(_row(p, "knn", widths[p.name], ids[p.name], d_fit, d_fit != d_in, k_in, knn_stats))
            point_rows.append(_point_rows(p, "knn", plan, knn_stats))
        if perturbation:
            args = (widths[p.name], ids[p.name], dims[p.name], clipped[p.name], k, stats[p.name])
            rows.append(_row(p, "perturbation", *args))
            point_rows.append(_point_rows(p, "perturbation", plan, stats[p.name]))
    frame = pd.DataFrame(rows)
    frame["nmapc"] = add_nmapc(frame)
    return Profile(frame[PROFILE_COLUMNS], pd.concat(point_rows, ignore_index=True)[POINT_COLUMNS])


def measure(*args, **kwargs) -> pd.DataFrame:
    """The profile table of :func:`measure_profile` (same arguments), without its per-point values."""
    return measure_profile(*args, **kwargs).frame
