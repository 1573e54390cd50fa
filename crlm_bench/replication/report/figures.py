"""The report's PNG figures, per dataset, from the final checkpoint of each cell:

- ``profiles_<dataset>.png``: MAPC against relative depth, one line per trained baseline model;
- ``untrained_<dataset>.png``: trained against untrained, a panel per model that has both;
- ``recipes_<dataset>.png``: the training recipes of each model that has two or more;
- ``gap_accuracy_<dataset>.png``: the curvature gap against test accuracy, the paper's points beside.

A figure whose data is absent is skipped. Figures are :class:`matplotlib.figure.Figure` objects,
never pyplot: no global state and no interactive backend.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from crlm_bench.replication import paper
from crlm_bench.replication.claims import CellResult, Curve, ProfileError, profile_curve

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["write_figures"]


def write_figures(directory: Path, results: Sequence[CellResult]) -> dict[str, Path]:
    """Draw the figures of ``results`` into ``directory``: file name → path, in the order drawn."""
    written: dict[str, Path] = {}
    final = [r for r in results if r.final]
    curves = {r.cell_id: _curve(r) for r in final}
    final = [r for r in final if curves[r.cell_id] is not None]
    for dataset in sorted({r.dataset for r in final}):
        here = [r for r in final if r.dataset == dataset]
        for kind, fig in _dataset_figures(dataset, here, curves):
            name = f"{kind}_{_slug(dataset)}.png"
            written[name] = _save(fig, directory / name)
    return written


def _dataset_figures(
    dataset: str, results: Sequence[CellResult], curves: Mapping[str, Curve]
) -> Iterator[tuple[str, Figure]]:
    """(kind, figure) for each figure of one dataset that has its data, drawn one at a time."""
    baseline = _first_per((r for r in results if r.recipe == "baseline"), lambda r: r.model)
    untrained = _first_per((r for r in results if not r.trained), lambda r: r.model)
    trained = _first_per((r for r in results if r.trained), lambda r: (r.model, r.recipe))

    if baseline:
        yield "profiles", _profiles_figure(dataset, baseline, curves)

    pairs = sorted(m for m in untrained if m in baseline)
    if pairs:
        yield "untrained", _untrained_figure(dataset, pairs, baseline, untrained, curves)

    by_model: dict[str, dict[str, CellResult]] = defaultdict(dict)
    for (model, recipe), r in trained.items():
        by_model[model][recipe] = r
    models = sorted(m for m, recipes in by_model.items() if len(recipes) >= 2)
    if models:
        yield "recipes", _recipes_figure(dataset, models, by_model, curves)

    points = []
    for model, r in sorted(baseline.items()):
        c = curves[r.cell_id]
        if c.input_value is not None and math.isfinite(r.test_accuracy):
            points.append((model, 100 * r.test_accuracy, c.gap))
    if points:
        yield "gap_accuracy", _gap_figure(dataset, points)


def _profiles_figure(dataset: str, baseline: Mapping[str, CellResult], curves: Mapping[str, Curve]) -> Figure:
    """MAPC against relative depth, one line per model."""
    fig, (ax,) = _new_figure()
    for model, r in sorted(baseline.items()):
        ax.plot(*_xy(curves[r.cell_id]), marker="o", ms=3, label=model)
    _profile_axes(ax, f"{dataset}: trained baseline profiles")
    ax.legend(fontsize=7)
    return fig


def _untrained_figure(
    dataset: str,
    models: Sequence[str],
    baseline: Mapping[str, CellResult],
    untrained: Mapping[str, CellResult],
    curves: Mapping[str, Curve],
) -> Figure:
    """Trained against untrained, a panel per model."""
    fig, axes = _new_figure(len(models))
    for ax, model in zip(axes, models):
        ax.plot(*_xy(curves[baseline[model].cell_id]), marker="o", ms=3, label="trained")
        ax.plot(*_xy(curves[untrained[model].cell_id]), marker="s", ms=3, label="untrained")
        _profile_axes(ax, f"{dataset}/{model}")
        ax.legend(fontsize=7)
    return fig


def _recipes_figure(
    dataset: str,
    models: Sequence[str],
    by_model: Mapping[str, Mapping[str, CellResult]],
    curves: Mapping[str, Curve],
) -> Figure:
    """The recipes of each model, a panel per model."""
    fig, axes = _new_figure(len(models))
    for ax, model in zip(axes, models):
        for recipe, r in sorted(by_model[model].items()):
            ax.plot(*_xy(curves[r.cell_id]), marker="o", ms=3, label=recipe)
        _profile_axes(ax, f"{dataset}/{model}: recipes")
        ax.legend(fontsize=7)
    return fig


def _gap_figure(dataset: str, points: Sequence[tuple[str, float, float]]) -> Figure:
    """The gap against accuracy of (model, accuracy in %, gap) points, the paper's points beside."""
    fig, (ax,) = _new_figure()
    ax.scatter([p[1] for p in points], [p[2] for p in points], label="this run", zorder=3)
    for model, x, y in points:
        ax.annotate(model, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    theirs = paper.paper_points(dataset)
    if theirs:
        ax.scatter(
            [p.accuracy_percent for p in theirs],
            [p.gap for p in theirs],
            marker="x",
            label="paper (read from figure acc_vs_mapc_ngap)",
        )
        for p in theirs:
            ax.annotate(
                p.model,
                (p.accuracy_percent, p.gap),
                fontsize=6,
                color="gray",
                xytext=(3, -8),
                textcoords="offset points",
            )
    ax.set_xlabel("test accuracy (%)")
    ax.set_ylabel("NMAPC gap (last − penultimate)")
    ax.set_title(f"{dataset}: curvature gap against accuracy", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return fig


# ---------------------------------------------------------------------------------------------
# helpers


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _curve(r: CellResult) -> Curve | None:
    for input_row in ("knn", "perturbation", None):
        try:
            return profile_curve(r.profile, "mapc", input_row)
        except ProfileError:
            continue
    return None


def _xy(curve: Curve) -> tuple[list[float], list[float]]:
    xs, ys = list(curve.relative_depth), list(curve.values)
    if curve.input_value is not None:
        xs, ys = [0.0, *xs], [curve.input_value, *ys]
    return xs, [y if y > 0 else math.nan for y in ys]  # log axis: zeros leave a gap


def _new_figure(n_panels: int = 1):
    from matplotlib.figure import Figure  # no pyplot: no global state, no interactive backend

    cols = min(n_panels, 3)
    rows = math.ceil(n_panels / cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _profile_axes(ax, title: str) -> None:
    ax.set_yscale("log")
    ax.set_xlabel("relative depth")
    ax.set_ylabel("MAPC")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="major", alpha=0.3)


def _first_per(results: Iterable[CellResult], key: Callable[[CellResult], Hashable]) -> dict:
    out: dict = {}
    for r in sorted(results, key=lambda r: (r.seed, r.cell_id)):
        out.setdefault(key(r), r)
    return out


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=100)
    return path
