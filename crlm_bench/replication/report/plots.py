"""The drawing of each report figure (:mod:`.figures` chooses which and saves them).

Each function returns a :class:`matplotlib.figure.Figure` sized for a slide (fonts of 9–11 pt at
150 dpi) whose titles and annotations state the verdicts and thresholds it shows: the numbers
come from the main variant's verdicts where there is one, from the curves otherwise. Values that a
log axis cannot show (zero, negative, NaN) leave a gap.

One module for the five figures (over 500 lines): they share the helpers below (log-axis gaps,
labels kept inside the axes, the verdict text box), and each figure is one function read top to
bottom.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from crlm_bench.replication import paper
from crlm_bench.replication.claims import (
    CellResult,
    Curve,
    ProfileError,
    Verdict,
    fmt,
    gap_across_models,
    gap_along_training,
    mixup_flattens,
    profile_curve,
    profile_shape,
    untrained_flattens,
)
from crlm_bench.replication.claims.verdict import OUTCOME_MARKS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["STYLE", "curve", "gap_accuracy", "gap_training", "profiles", "recipes", "untrained"]

#: (claim, group) → main-variant verdict.
Verdicts = Mapping[tuple[str, str], Verdict]

HOLDS = {True: "✓", False: "✗", None: "–"}
#: matplotlib settings the figures are drawn and saved under (:mod:`.figures`).
STYLE = {
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "figure.titlesize": 11,
    "svg.fonttype": "none",  # text stays text in the SVG: searchable, editable on a slide
}
_GREY = "0.45"
#: One colour per recipe in both panels of the recipes figure.
_RECIPE_COLOURS = {"baseline": "C0", "mixup": "C1", "no_regularization": "C2", "manifold_mixup": "C4"}


def curve(r: CellResult) -> Curve | None:
    """MAPC along ``r``'s probes with the kNN input row (the main variant's), else the
    perturbation row, else no input; None when the profile has no curve."""
    for input_row in ("knn", "perturbation", None):
        try:
            return profile_curve(r.profile, "mapc", input_row)
        except ProfileError:
            continue
    return None


# ---------------------------------------------------------------------------------------------
# profiles: MAPC with the input on its own scale, and ID per probe


def profiles(
    dataset: str, baseline: Mapping[str, CellResult], curves: Mapping[str, Curve], verdicts: Verdicts
) -> Figure:
    """Trained baseline networks: [input | latent MAPC | intrinsic dimension]."""
    fig = _figure(14, 5.6)
    grid = fig.add_gridspec(1, 3, width_ratios=[1.0, 5.2, 4.2])
    ax_in, ax, ax_id = fig.add_subplot(grid[0]), fig.add_subplot(grid[1]), fig.add_subplot(grid[2])
    shape = {m: verdicts.get(("profile-shape", r.cell_id)) for m, r in baseline.items()}
    id_verdict = verdicts.get(("id-not-curvature", dataset))
    colours = _colours(len(baseline))
    rises = []
    for (model, r), colour in zip(sorted(baseline.items()), colours):
        c = curves[r.cell_id]
        v = shape[model]
        label = model if v is None else f"{model} {OUTCOME_MARKS[v.outcome]} margin {fmt(v.value)}"
        xs, ys = list(c.relative_depth), _positive(c.values)
        if r.replicas:
            label += f" (mean of {len(r.replicas)} seeds)"
            band = _seed_band(r, len(xs))
            if band is not None:
                ax.fill_between(xs, band[0], band[1], color=colour, alpha=0.2, lw=0, zorder=1)
        ax.plot(xs, ys, marker="o", ms=4, color=colour, label=label, zorder=3)
        if len(c.values) > 2:  # the plateau: latent probes before the last two
            ax.plot(xs[:-2], ys[:-2], lw=9, alpha=0.18, color=colour, solid_capstyle="round", zorder=2)
        needed = _times(c.penultimate, profile_shape.FINAL_RISE.value)
        if needed is not None:
            ax.plot([xs[-1]], [needed], marker="_", ms=16, mew=2.5, color=colour, zorder=4)
        if c.input_value is not None:
            ax_in.plot([0], _positive([c.input_value]), marker="o", ms=6, color=colour, alpha=0.8)
            if v is not None:
                rises.append(v.details.get("rise"))
        if id_verdict is not None or "id_mean" in r.profile.columns:
            ids = _input_id(r)
            rho = (id_verdict.details.get("rho") or {}).get(r.cell_id) if id_verdict else None
            id_label = model + (f" ρ = {fmt(rho)}" if rho is not None else "")
            ax_id.plot([0.0, *xs], [ids, *c.ids], marker="o", ms=4, color=colour, label=id_label)
    _paper_profile_band(ax, ax_in, dataset, baseline)
    # legend entries for the marks
    ax.plot([], [], lw=9, alpha=0.18, color=_GREY, label="plateau (latent probes before the last two)")
    ax.plot(
        [], [], ls="none", marker="_", ms=16, mew=2.5, color=_GREY, label="last probe needed: 5× penultimate"
    )
    if any(r.replicas for r in baseline.values()):
        ax.fill_between([], [], [], color=_GREY, alpha=0.2, lw=0, label="band: lowest to highest seed")
    ax.set_yscale("log")
    ax.set_xlabel("relative depth")
    ax.set_title("latent probes: MAPC")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, framealpha=0.9)

    ax_in.set_yscale("log")
    ax_in.set_xticks([0], ["input"])
    ax_in.set_xlim(-0.5, 0.5)
    ax_in.set_ylabel("MAPC (log scale)")
    ax_in.set_title("input (kNN)\non its own scale")
    ax_in.grid(True, which="major", alpha=0.3)
    finite = [x for x in rises if x is not None and math.isfinite(x)]
    rise = _span(finite, "–\n") + "×" if finite else "n/a"
    ax_in.set_xlabel(
        f"rise to the\nfirst latent\nprobe:\n{rise}\nneeds {profile_shape.RISE.text}",
        fontsize=9,
    )
    _break_marks(ax_in, ax)

    ax_id.set_xlabel("relative depth (0 = input)")
    ax_id.set_ylabel("intrinsic dimension (TwoNN)")
    ax_id.grid(True, alpha=0.3)
    ax_id.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, framealpha=0.9)
    if id_verdict is not None:
        ax_id.set_title(
            f"id-not-curvature {OUTCOME_MARKS[id_verdict.outcome]}: "
            f"median |ρ(ID, MAPC)| = {fmt(id_verdict.value)}"
            f" (needs {id_verdict.threshold})"
        )
    else:
        ax_id.set_title("intrinsic dimension per probe (no id-not-curvature verdict)")

    given = [v for v in shape.values() if v is not None]
    held = sum(v.outcome == "holds" for v in given)
    bound = {k: t.text for k, t in profile_shape.PROFILE_SHAPE.thresholds.items()}
    fig.suptitle(
        f"{dataset}, trained baselines: profile-shape holds for {held} of {len(given)} "
        f"(margin {bound['margin']}: rise {bound['rise']}, plateau span {bound['plateau-span']}, "
        f"final rise {bound['final-rise']})"
    )
    return fig


def _seed_curves(r: CellResult) -> list[Curve]:
    """The curves of the seeds a pooled result is the mean of (none for one seed)."""
    return [c for c in (curve(x) for x in r.replicas) if c is not None]


def _seed_band(r: CellResult, n: int) -> tuple[list[float], list[float]] | None:
    """Per latent probe, the lowest and the highest MAPC over ``r``'s seeds."""
    values = np.array([c.values for c in _seed_curves(r) if len(c.values) == n], dtype=float)
    if len(values) < 2:
        return None
    return list(values.min(0)), list(values.max(0))


def _input_id(r: CellResult) -> float:
    frame = r.profile
    rows = frame[frame["depth"] == 0]
    if "neighbourhood" in rows.columns and (rows["neighbourhood"] == "knn").any():
        rows = rows[rows["neighbourhood"] == "knn"]
    if rows.empty or "id_mean" not in rows.columns:
        return math.nan
    return float(rows["id_mean"].iloc[0])


def _paper_profile_band(ax: Axes, ax_in: Axes, dataset: str, baseline: Mapping[str, CellResult]) -> None:
    """The paper's plateau band and input (figure common_mapc), where it has this dataset."""
    prof = next((p for m in baseline if (p := paper.paper_profile(dataset, m)) is not None), None)
    if prof is None:
        return
    ax.axhspan(*prof.plateau_band, color=_GREY, alpha=0.12, label="paper's plateau band (common_mapc)")
    ax_in.plot([0], [prof.input], marker="x", ms=8, color="black", label="paper")


def _break_marks(left: Axes, right: Axes) -> None:
    """Diagonal marks between two panels on different scales (a broken axis), at the bottom only:
    the top keeps room for the input panel's title."""
    left.spines["right"].set_visible(False)
    right.spines["left"].set_linestyle((0, (4, 3)))
    d = 0.02
    for ax, x in ((left, 1.0), (right, 0.0)):
        ax.plot((x - d, x + d), (-2 * d, 2 * d), transform=ax.transAxes, color="k", lw=1, clip_on=False)


# ---------------------------------------------------------------------------------------------
# untrained against trained


def untrained(
    dataset: str,
    models: Sequence[str],
    baseline: Mapping[str, CellResult],
    untrained_cells: Mapping[str, CellResult],
    curves: Mapping[str, Curve],
    verdicts: Verdicts,
) -> Figure:
    """A panel per model on one shared y-scale: trained and untrained MAPC, the collapse the claim
    needs at the last probe and the collapse the paper reports there."""
    n = len(models)
    rows = math.ceil(n / 4)
    cols = math.ceil(n / rows)
    fig = _figure(max(3.6 * cols + 0.6, 8.5), 3.9 * rows + 1.1)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True).ravel()
    collapse_needed = untrained_flattens.LAST_COLLAPSE
    held = 0
    given = 0
    for ax, model in zip(axes, models):
        ct, cu = curves[baseline[model].cell_id], curves[untrained_cells[model].cell_id]
        ax.plot(*_xy(ct), marker="o", ms=4, color="C0", label="trained")
        ax.plot(*_xy(cu), marker="s", ms=4, color="C1", label="untrained")
        x_last = ct.relative_depth[-1]
        needed = _times(ct.last, collapse_needed.value)
        if needed is not None:
            ax.plot(
                [x_last],
                [needed],
                ls="none",
                marker="_",
                ms=16,
                mew=2.5,
                color="C3",
                label=f"needed: untrained last {collapse_needed.text}× trained",
            )
        paper_ratio, paper_text = _paper_collapse(dataset, model)
        reference = _times(ct.last, paper_ratio)
        if reference is not None:
            ax.plot([x_last, x_last], [ct.last, reference], ls=":", color="black", lw=1.2)
            ax.plot(
                [x_last],
                [reference],
                ls="none",
                marker="v",
                ms=8,
                color="black",
                label="paper's collapse: untrained / trained last (figures mapc_rand_n_reg, common_mapc)",
            )
            ax.annotate(
                paper_text,
                (x_last, reference),
                xytext=(-8, 0),
                textcoords="offset points",
                ha="right",
                va="center",
                fontsize=8.5,
            )
        v = verdicts.get(("untrained-flattens", f"{dataset}/{model}"))
        if v is not None:
            given += 1
            held += v.outcome == "holds"
            final = v.details.get("final_ratio")
            final_needed = untrained_flattens.FINAL_RATIO.text
            ax.set_title(
                f"{model} {OUTCOME_MARKS[v.outcome]}\n"
                f"untrained/trained last {fmt(v.value)} (needs {collapse_needed.text})\n"
                f"untrained last/penult. {fmt(final)} (needs {final_needed})",
                fontsize=9,
            )
        else:
            ax.set_title(model)
        ax.set_yscale("log")
        ax.set_xlabel("relative depth")
        ax.grid(True, which="major", alpha=0.3)
    for ax in axes[::cols]:
        ax.set_ylabel("MAPC (log scale)")
    handles, labels = axes[0].get_legend_handles_labels()
    spare = axes[n:]
    for ax in spare:
        ax.axis("off")
    if len(spare):  # the legend fills the first spare slot: no empty panel
        spare[0].legend(handles, labels, loc="center")
    else:
        fig.legend(handles, labels, loc="outside lower center", ncol=len(labels) if cols >= 3 else 2)
    fig.suptitle(f"{dataset}: untrained-flattens holds for {held} of {given} (one y-scale for all panels)")
    return fig


def _paper_collapse(dataset: str, model: str) -> tuple[float | None, str]:
    """Where to draw the paper's collapse on a model's panel, as a ratio to the trained last probe,
    and its label: the model's own ratio (figure mapc_rand_n_reg over common_mapc) where the paper
    has a nonzero one, else the largest over the paper's models, as a bound."""
    ratios = {}
    for (ds, m), value in paper.UNTRAINED_LAST_PROBE.items():
        trained = paper.paper_profile(ds, m)
        if trained is not None and trained.last > 0:
            ratios[(ds, m)] = value.value / trained.last
    positive = [r for r in ratios.values() if r > 0]
    if not positive:
        return None, ""
    bound = max(positive)
    own = ratios.get((dataset, model))
    if own is None:
        return bound, f"paper (CIFAR-10): ≤ {fmt(bound)}×"
    if own > 0:
        return own, f"paper ≈ {fmt(own)}×"
    return bound, f"paper: 0 (≤ {fmt(bound)}× drawn)"


# ---------------------------------------------------------------------------------------------
# recipes


def recipes(
    dataset: str,
    models: Sequence[str],
    by_model: Mapping[str, Mapping[str, CellResult]],
    curves: Mapping[str, Curve],
    verdicts: Verdicts,
) -> Figure:
    """Per model: a bar of each recipe's median plateau MAPC over the baseline's, with the
    threshold line; beside it the recipes' profiles."""
    fig = _figure(13, 4.8 * len(models) + 0.4)
    axes = fig.subplots(len(models), 2, squeeze=False, width_ratios=[4, 5])
    threshold = mixup_flattens.RATIO_TO_BASELINE
    for (ax_bar, ax), model in zip(axes, models):
        v = verdicts.get(("mixup-flattens", f"{dataset}/{model}"))
        cells = by_model[model]
        ratios = dict(v.details.get("ratio_to_baseline", {})) if v is not None else {}
        if not ratios:
            base = _plateau_median(curves[cells["baseline"].cell_id])
            ratios = {recipe: _ratio(_plateau_median(curves[r.cell_id]), base) for recipe, r in cells.items()}
        order = ["baseline", *sorted(k for k in ratios if k != "baseline" and k in cells)]
        heights = [ratios[k] if ratios[k] is not None and math.isfinite(ratios[k]) else 0.0 for k in order]
        colours = [_RECIPE_COLOURS.get(k, f"C{5 + i}") for i, k in enumerate(order)]
        bars = ax_bar.bar(range(len(order)), heights, color=colours)
        tops = [1.0, *heights]  # what the legend must stay above: bars, labels, the whisker
        if v is not None and v.interval is not None and "mixup" in order:
            low, high = v.interval
            h = heights[order.index("mixup")]
            if math.isfinite(low) and math.isfinite(high):
                tops.append(high)
                ax_bar.errorbar(
                    [order.index("mixup")],
                    [h],
                    yerr=[[max(0.0, h - low)], [max(0.0, high - h)]],
                    fmt="none",
                    ecolor="black",
                    capsize=5,
                    label="mixup's 95 % interval (seeds, points)",
                    zorder=4,
                )
        for bar, h in zip(bars, heights):
            ax_bar.annotate(
                f"{h:.2f}×",
                (bar.get_x() + bar.get_width() / 2, h),
                ha="center",
                va="bottom",
                xytext=(0, 2),
                textcoords="offset points",
            )
        ax_bar.axhline(
            threshold.value,
            color="black",
            ls="--",
            lw=1.5,
            label=f"mixup needs {threshold.text}× the baseline's",
        )
        paper_ratios = (v.details.get("paper_ratio_to_baseline") or {}) if v is not None else {}
        if paper_ratios:
            xs = [i for i, k in enumerate(order) if k in paper_ratios]
            ax_bar.plot(
                xs,
                [paper_ratios[order[i]] for i in xs],
                ls="none",
                marker="x",
                ms=9,
                mew=2,
                color="black",
                label="paper (mapc_reg)",
            )
        ax_bar.set_xticks(range(len(order)), order, rotation=15)
        ax_bar.set_ylabel("median plateau MAPC / baseline's")
        ax_bar.set_ylim(0, 1.4 * max(tops))  # the top 30 % holds the legend
        ax_bar.grid(True, axis="y", alpha=0.3)
        ax_bar.legend(loc="upper right", framealpha=0.9)
        if v is not None:
            below = v.details.get("below_other_recipes") or {}
            not_below = [k for k, b in below.items() if not b]
            ax_bar.set_title(
                f"{model}: mixup-flattens {OUTCOME_MARKS[v.outcome]}, mixup {fmt(v.value)}× baseline\n"
                + (f"but not below {', '.join(not_below)}" if not_below else "and below every other recipe"),
                fontsize=9.5,
            )
        else:
            ax_bar.set_title(f"{model}: plateau medians (no mixup-flattens verdict)")
        for i, recipe in enumerate(order):
            c = curves[cells[recipe].cell_id]
            colour = colours[i]
            xs, ys = list(c.relative_depth), _positive(c.values)
            ax.plot(xs, ys, marker="o", ms=4, color=colour, label=recipe)
            if len(xs) > 2:
                ax.plot(xs[:-2], ys[:-2], lw=9, alpha=0.15, color=colour, solid_capstyle="round")
        ax.set_yscale("log")
        ax.set_xlabel("relative depth")
        ax.set_ylabel("MAPC (log scale)")
        ax.set_title(f"{model}: latent profiles (plateau shaded)", fontsize=9.5)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="best", framealpha=0.9)
    fig.suptitle(
        f"{dataset}: mixup flattens the plateau? (ratio {threshold.text} and below every other recipe)"
    )
    return fig


def _plateau_median(c: Curve) -> float:
    values = [x for x in c.plateau if math.isfinite(x)]
    return float(np.median(values)) if values else math.nan


# ---------------------------------------------------------------------------------------------
# gap against accuracy


def gap_accuracy(
    dataset: str, baseline: Mapping[str, CellResult], curves: Mapping[str, Curve], verdicts: Verdicts
) -> Figure:
    """Each baseline model's NMAPC gap against its test accuracy, with ρ and its threshold; the
    paper's points beside where the paper has the dataset."""
    fig = _figure(8, 5.6)
    ax = fig.add_subplot()
    v = verdicts.get(("gap-tracks-accuracy", dataset))
    models = (v.details.get("models") or {}) if v is not None else {}
    points = []
    for model, r in sorted(baseline.items()):
        if model in models:
            gap, acc = models[model].get("gap"), models[model].get("accuracy")
        else:
            c = curves[r.cell_id]
            gap = c.gap if c.input_value is not None else None
            acc = r.test_accuracy
        if gap is not None and acc is not None and math.isfinite(gap) and math.isfinite(acc):
            points.append((model, 100 * acc, gap))
    ax.scatter([p[1] for p in points], [p[2] for p in points], s=50, color="C0", label="this run", zorder=3)
    ranged = False
    extent = [p[2] for p in points]  # every bar's end stays inside the axes
    for model, x, y in points:  # the range over the seeds of a pooled network
        seeds = []
        for seed in baseline[model].replicas:
            c = curve(seed)
            if c is not None and c.input_value is not None:
                a, g = 100 * seed.test_accuracy, c.gap
                if math.isfinite(a) and math.isfinite(g):
                    seeds.append((a, g))
        if len(seeds) >= 2:
            accs, gaps = [a for a, _ in seeds], [g for _, g in seeds]
            ax.errorbar(
                [x],
                [y],
                xerr=[[max(0.0, x - min(accs))], [max(0.0, max(accs) - x)]],
                yerr=[[max(0.0, y - min(gaps))], [max(0.0, max(gaps) - y)]],
                fmt="none",
                ecolor="C0",
                alpha=0.6,
                capsize=3,
                zorder=2,
            )
            ranged = True
            extent += [min(gaps), max(gaps)]
    if ranged:
        ax.errorbar(
            [], [], xerr=[], yerr=[], fmt="none", ecolor="C0", alpha=0.6, label="bars: range over seeds"
        )
    theirs = paper.paper_points(dataset)
    if theirs:
        ax.scatter(
            [p.accuracy_percent for p in theirs],
            [p.gap for p in theirs],
            marker="x",
            s=50,
            color="black",
            label="paper (read from figure acc_vs_mapc_ngap)",
        )
    _label_inside(
        ax,
        [(m, x, y, "C0") for m, x, y in points]
        + [(p.model, p.accuracy_percent, p.gap, _GREY) for p in theirs],
    )
    if extent:
        low, high = ax.get_ylim()
        pad = 0.05 * (max(extent) - min(extent) or 1.0)
        ax.set_ylim(min(low, min(extent) - pad), max(high, max(extent) + pad))
    threshold = gap_across_models.ACROSS_MODELS
    if v is not None:
        text = (
            f"across models {OUTCOME_MARKS[v.outcome]}\nSpearman ρ = {fmt(v.value)}, 95 % {v.interval_text()}"
            f"  (needs {threshold.text})\n{_p_value(v)}Pearson r = {fmt(v.details.get('pearson'))} "
            f"over {v.details.get('n_models', len(points))} models"
        )
        if v.paper_value is not None:
            text += f"\npaper: ρ ≈ {fmt(v.paper_value)}"
        elif not theirs:
            text += f"\nthe paper has no points for {dataset}"
    else:
        needed = fmt(gap_across_models.MIN_MODELS.value)
        text = f"no across-models verdict (needs ≥ {needed} models)"
    _text_box(ax, text)
    ax.set_xlabel("test accuracy (%)")
    ax.set_ylabel("NMAPC gap (last − penultimate)")
    ax.set_title(f"{dataset}: curvature gap against accuracy across models (gap-tracks-accuracy)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", framealpha=0.9)
    return fig


def gap_training(dataset: str, runs: Sequence[Verdict]) -> Figure:
    """Per training run, the gap against accuracy at each saved checkpoint, in epoch order, with
    the fitted slope, r, and their thresholds."""
    fig = _figure(8 * min(len(runs), 2), 5.6 * math.ceil(len(runs) / 2))
    axes = fig.subplots(math.ceil(len(runs) / 2), min(len(runs), 2), squeeze=False).ravel()
    r_needed = gap_along_training.ALONG_TRAINING
    slope_needed = gap_along_training.SLOPE
    for ax, v in zip(axes, runs):
        checkpoints = v.details.get("checkpoints") or {}
        epochs = sorted(checkpoints, key=lambda e: int(e))
        xs = [100 * checkpoints[e]["accuracy"] for e in epochs]
        ys = [checkpoints[e]["gap"] for e in epochs]
        ax.plot(xs, ys, color="C0", lw=1, alpha=0.6)
        ax.scatter(xs, ys, c=range(len(xs)), cmap="viridis", s=60, zorder=3)
        _label_inside(ax, [(f"epoch {e}", x, y, "black") for e, x, y in zip(epochs, xs, ys)])
        slope = v.details.get("slope_per_accuracy_point")
        if slope is not None and math.isfinite(slope) and len(xs) >= 2:
            mx, my = float(np.mean(xs)), float(np.mean(ys))
            grid = np.array([min(xs), max(xs)])
            ax.plot(
                grid,
                my + slope * (grid - mx),
                ls="--",
                color="C3",
                lw=1.2,
                label=f"fitted slope {fmt(slope)} per point",
            )
        low, high = paper.CHECKPOINT_PEARSON_RANGE
        slopes = [s.value for s in paper.CHECKPOINT_SLOPE.values()]
        text = (
            f"along training {OUTCOME_MARKS[v.outcome]} "
            f"({v.details.get('n_checkpoints', len(xs))} checkpoints)\n"
            f"Pearson r = {fmt(v.value)}, 95 % {v.interval_text()}  (needs {r_needed.text})\n{_p_value(v)}"
            f"slope {fmt(slope)} per accuracy point  (needs {slope_needed.text})\n"
            f"paper (CIFAR-10): r {low.value:g}–{high.value:g}, slopes {min(slopes):g}–{max(slopes):g}"
        )
        _text_box(ax, text)
        ax.set_xlabel("test accuracy (%)")
        ax.set_ylabel("NMAPC gap (last − penultimate)")
        ax.set_title(f"{v.group}: gap along training (gap-tracks-accuracy)")
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", framealpha=0.9)
    for ax in axes[len(runs) :]:
        ax.axis("off")
    return fig


# ---------------------------------------------------------------------------------------------
# helpers


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure  # no pyplot: no global state, no interactive backend

    return Figure(figsize=(width, height), layout="constrained")


def _colours(n: int) -> list[str]:
    return [f"C{i % 10}" for i in range(n)]


def _positive(values: Sequence[float]) -> list[float]:
    """``values`` for a log axis: zeros, negatives and NaN become gaps."""
    return [y if y is not None and math.isfinite(y) and y > 0 else math.nan for y in values]


def _xy(c: Curve) -> tuple[list[float], list[float]]:
    xs, ys = list(c.relative_depth), list(c.values)
    if c.input_value is not None:
        xs, ys = [0.0, *xs], [c.input_value, *ys]
    return xs, _positive(ys)


def _times(value: float | None, factor: float | None) -> float | None:
    """``value × factor`` when it can stand on a log axis, else None."""
    if value is None or factor is None:
        return None
    out = value * factor
    return out if math.isfinite(out) and out > 0 else None


def _ratio(a: float, b: float) -> float:
    return a / b if b and math.isfinite(a) and math.isfinite(b) else math.nan


def _span(values: Sequence[float], between: str = "–") -> str:
    low, high = min(values), max(values)
    return fmt(low) if math.isclose(low, high, rel_tol=0.005) else f"{fmt(low)}{between}{fmt(high)}"


def _p_value(v: Verdict) -> str:
    """The exact permutation p-value of a correlation verdict as a line, or nothing."""
    p = v.details.get("p_value")
    return f"one-sided permutation p = {fmt(p)}\n" if isinstance(p, (int, float)) and math.isfinite(p) else ""


def _text_box(ax: Axes, text: str) -> None:
    ax.text(
        0.02,
        0.98,
        text,
        transform=ax.transAxes,
        ha="left",
        va="top",
        fontsize=9.5,
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.9, "edgecolor": "0.7"},
    )


def _label_inside(ax: Axes, points: Sequence[tuple[str, float, float, Any]]) -> None:
    """Label each point inside the axes: room is made around the points, and a label in the
    right half of the axes is written to the left of its point."""
    if not points:
        return
    xs = [p[1] for p in points]
    ys = [p[2] for p in points]
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = min(ys), max(ys)
    x_pad = 0.2 * (x_high - x_low) or 0.5
    y_pad = 0.35 * (y_high - y_low) or 0.5
    ax.set_xlim(x_low - x_pad, x_high + x_pad)
    ax.set_ylim(y_low - y_pad * 0.6, y_high + y_pad)  # the top keeps room for the text box
    middle = (x_low + x_high) / 2
    width, height = 2 * x_pad + x_high - x_low, 1.6 * y_pad + y_high - y_low
    clusters: list[list] = []  # [x, y, colour, names]: points too close to label apart share a label
    for name, x, y, colour in points:
        near = next(
            (
                c
                for c in clusters
                if c[2] == colour and abs(c[0] - x) < 0.06 * width and abs(c[1] - y) < 0.06 * height
            ),
            None,
        )
        if near is None:
            clusters.append([x, y, colour, [name]])
        else:
            near[3].append(name)
    previous = None  # a label close to the one before it (left to right) goes under its point
    for x, y, colour, names in sorted(clusters, key=lambda c: c[0]):
        right = x > middle
        crowded = (
            previous is not None
            and abs(x - previous[0]) < 0.15 * width
            and abs(y - previous[1]) < 0.15 * height
        )
        ax.annotate(
            ", ".join(names),
            (x, y),
            xytext=(0, -9) if crowded else (-6 if right else 6, 6),
            textcoords="offset points",
            ha="center" if crowded else "right" if right else "left",
            va="top" if crowded else "baseline",
            fontsize=9,
            color=colour,
        )
        previous = None if crowded else (x, y)
