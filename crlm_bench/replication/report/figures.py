"""The report's figures, per dataset, each a PNG at :data:`DPI` dpi with an SVG beside it, each
carrying the verdicts and thresholds it illustrates (:mod:`.plots` draws them):

- ``profiles_<dataset>``: MAPC along depth of each trained baseline network, the input on its own
  scale in a narrow panel, the plateau and the final-rise threshold marked; beside it the
  intrinsic dimension per probe (profile-shape, id-not-curvature);
- ``untrained_<dataset>``: trained against untrained, a panel per model on one shared y-scale,
  the collapse threshold and the paper's collapse drawn (untrained-flattens);
- ``recipes_<dataset>``: the recipes' plateau medians as a ratio to the baseline's, with the 0.5
  line, beside their profiles (mixup-flattens);
- ``gap_accuracy_<dataset>``: the curvature gap against test accuracy across models, with ρ and
  its threshold, the paper's points beside where it has them (gap-tracks-accuracy);
- ``gap_training_<dataset>``: the gap against accuracy along the checkpoints of a training run,
  with r, the slope and their thresholds (gap-tracks-accuracy, along training);
- ``attribution_<cell>``: a demonstration cell under the default measurement and each change, MAPC
  and MAPC · r on log scales, unresolved probes open, the paper's untrained collapse shaded
  (:mod:`.demonstration`).

Numbers a verdict states are taken from the verdict (main variant), so that a figure and its
verdict cannot disagree. A figure whose data is absent is skipped. Figures are
:class:`matplotlib.figure.Figure` objects, never pyplot: no global state and no interactive
backend; the SVG is written without a date and with fixed ids, so the same data gives the same file.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from crlm_bench.replication.claims import MAIN_VARIANT, CellResult, Verdict
from crlm_bench.replication.claims.curves import unique
from crlm_bench.replication.claims.intervals import pool
from crlm_bench.replication.report import plots
from crlm_bench.replication.report.demonstration import demonstration_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

__all__ = ["DPI", "FIGURE_KINDS", "figure_title", "write_figures"]

#: Resolution of the PNGs: legible on a slide.
DPI = 150

#: Figure kind (the file name's prefix) → its title in ``report.md``.
FIGURE_KINDS = {
    "profiles": "Curvature and intrinsic dimension along depth (profile-shape, id-not-curvature)",
    "untrained": "Untrained against trained (untrained-flattens)",
    "recipes": "Recipes: plateau against the baseline's (mixup-flattens)",
    "gap_accuracy": "Curvature gap against accuracy across models (gap-tracks-accuracy)",
    "gap_training": "Curvature gap against accuracy along training (gap-tracks-accuracy)",
    "attribution": "Attribution: one network under each measurement (untrained-flattens)",
}


def figure_title(name: str) -> str:
    """The title of a figure file in ``report.md``: ``profiles_cifar10.png`` → its kind's title
    and dataset."""
    stem = Path(name).stem
    for kind in sorted(FIGURE_KINDS, key=len, reverse=True):
        if stem.startswith(kind + "_"):
            return f"{FIGURE_KINDS[kind]} · {stem[len(kind) + 1 :]}"
    return stem


def write_figures(
    directory: Path,
    results: Sequence[CellResult],
    verdicts: Sequence[Verdict] = (),
    demonstrations: Sequence[tuple[str, CellResult]] = (),
) -> dict[str, Path]:
    """Draw the figures of ``results`` and ``verdicts`` into ``directory``, then one per
    demonstration cell of ``demonstrations`` ((change, result) pairs): file name → path (each PNG
    followed by its SVG), in the order drawn."""
    written: dict[str, Path] = {}
    _draw_figures(directory, results, verdicts, written)
    by_cell: dict[str, list[tuple[str, CellResult]]] = defaultdict(list)
    for change, r in demonstrations:
        by_cell[r.cell_id].append((change, r))
    import matplotlib

    for cell_id, measured in by_cell.items():
        with matplotlib.rc_context(plots.STYLE):
            try:
                fig = demonstration_figure(cell_id, measured)
            except Exception:  # a figure never costs the report
                log.exception(
                    "the attribution figure of %s could not be drawn; the report has the rest", cell_id
                )
                continue
            written.update(_save(fig, directory, f"attribution_{_slug(cell_id)}"))
    return written


def _draw_figures(
    directory: Path, results: Sequence[CellResult], verdicts: Sequence[Verdict], written: dict[str, Path]
) -> None:
    main = [v for v in verdicts if v.variant == MAIN_VARIANT]
    # one result per network: seeds pooled into their mean profile as the claims judge them (the
    # plots draw the seeds' range around it)
    final = pool(unique(r for r in results if r.final))
    curves = {r.cell_id: plots.curve(r) for r in final}
    final = [r for r in final if curves[r.cell_id] is not None]
    datasets = sorted({r.dataset for r in final} | {_run_dataset(v) for v in main if _along_training(v)})
    import matplotlib

    for dataset in datasets:
        here = [r for r in final if r.dataset == dataset]
        for kind, draw in _dataset_figures(dataset, here, curves, main):
            stem = f"{kind}_{_slug(dataset)}"
            with matplotlib.rc_context(plots.STYLE):
                try:
                    fig = draw()
                except Exception:  # a figure never costs the report: log it, write the rest
                    log.exception(
                        "the %s figure of %s could not be drawn; the report has the rest", kind, dataset
                    )
                    continue
                written.update(_save(fig, directory, stem))


def _along_training(v: Verdict) -> bool:
    return v.claim == "gap-tracks-accuracy" and "checkpoints" in v.details


def _run_dataset(v: Verdict) -> str:
    return v.group.split("/")[0]


def _dataset_figures(
    dataset: str,
    results: Sequence[CellResult],
    curves: dict,
    verdicts: Sequence[Verdict],
) -> Iterator[tuple[str, Callable[[], Figure]]]:
    """(kind, drawing function) for each figure of one dataset that has its data."""
    baseline = _first_per((r for r in results if r.recipe == "baseline"), lambda r: r.model)
    untrained = _first_per((r for r in results if not r.trained), lambda r: r.model)
    trained = _first_per((r for r in results if r.trained), lambda r: (r.model, r.recipe))
    by_group = {(v.claim, v.group): v for v in verdicts}

    if baseline:
        yield "profiles", lambda: plots.profiles(dataset, baseline, curves, by_group)

    pairs = sorted(m for m in untrained if m in baseline)
    if pairs:
        yield "untrained", lambda: plots.untrained(dataset, pairs, baseline, untrained, curves, by_group)

    by_model: dict[str, dict[str, CellResult]] = defaultdict(dict)
    for (model, recipe), r in trained.items():
        by_model[model][recipe] = r
    models = sorted(m for m, recipes in by_model.items() if len(recipes) >= 2 and "baseline" in recipes)
    if models:
        yield "recipes", lambda: plots.recipes(dataset, models, by_model, curves, by_group)

    if any(curves[r.cell_id].input_value is not None for r in baseline.values()):
        yield "gap_accuracy", lambda: plots.gap_accuracy(dataset, baseline, curves, by_group)

    runs = [v for v in verdicts if _along_training(v) and _run_dataset(v) == dataset]
    if runs:
        yield "gap_training", lambda: plots.gap_training(dataset, runs)


# ---------------------------------------------------------------------------------------------
# helpers


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _first_per(results: Iterable[CellResult], key: Callable[[CellResult], Hashable]) -> dict:
    out: dict = {}
    for r in sorted(results, key=lambda r: (r.seed, r.cell_id)):
        out.setdefault(key(r), r)
    return out


def _save(fig: Figure, directory: Path, stem: str) -> dict[str, Path]:
    """Write ``fig`` as ``stem.png`` (at :data:`DPI`) and ``stem.svg`` (no date, fixed ids)."""
    import matplotlib

    png, svg = directory / f"{stem}.png", directory / f"{stem}.svg"
    fig.savefig(png, dpi=DPI)
    fig.set_layout_engine("none")  # laid out once for the PNG: the SVG keeps that layout
    with matplotlib.rc_context({"svg.hashsalt": stem}):
        fig.savefig(svg, metadata={"Date": None})
    return {png.name: png, svg.name: svg}
