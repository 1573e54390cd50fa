"""The attribution figure: a demonstration cell (a network no claim tests, measured to show a
mechanism) under the default measurement and each measurement change, side by side on log
scales: MAPC along relative depth, and the dimensionless MAPC · r beside it. A probe the numerical
audit flags ``unresolved`` is drawn as an open marker; the paper's collapse of untrained VGGs
(figure mapc_rand_n_reg) is the shaded band."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from crlm_bench.replication import paper
from crlm_bench.replication.attribution import COLLAPSE, collapsed_probes, unflagged_collapses
from crlm_bench.replication.claims import CellResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["LABELS", "change_label", "demonstration_figure", "latent_rows"]

#: How each measurement is named on the figure and in the report.
LABELS = {
    "": "default (float64, rescaled fit)",
    "float32": "float32 fit alone",
    "unscaled_fit": "unscaled fit alone (float64)",
    "authors": "authors preset",
}


def change_label(change: str) -> str:
    return LABELS.get(change, change)


def latent_rows(r: CellResult):
    """The profile's rows that the figure draws, by depth: the latent probes and the input's
    perturbation row (the neighbourhood every measurement perturbs)."""
    frame = r.profile.sort_values("depth", kind="stable")
    if "neighbourhood" in frame.columns:
        frame = frame[(frame["depth"] > 0) | (frame["neighbourhood"] != "knn")]
    return frame


def _audit_text(measured: Sequence[tuple[str, CellResult]]) -> str:
    """Per change, the latent probes it collapses (MAPC ≤ COLLAPSE × the default's) and whether the
    audit flags them all: the attribution test's assertion, on the figure."""
    default = next((r for change, r in measured if not change), None)
    if default is None:
        return "no default measurement to compare with"
    lines = [f"collapse: MAPC ≤ {COLLAPSE:g} × default at a latent probe"]
    for change, r in measured:
        if not change or "unresolved" not in r.profile.columns:
            continue
        n = collapsed_probes(default.profile, r.profile)
        missed = unflagged_collapses(default.profile, r.profile)
        verdict = "all flagged ✓" if not missed else f"{len(missed)} not flagged ✗"
        lines.append(f"{change_label(change)}: {n} collapsed" + (f", {verdict}" if n else ""))
    return "\n".join(lines)


def demonstration_figure(cell_id: str, measured: Sequence[tuple[str, CellResult]]) -> Figure:
    """MAPC and MAPC · r of one cell under each measurement (change "" is the default)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    collapsed_from, (low, high), _ = paper.UNTRAINED_VGG_COLLAPSE
    left.fill_between(
        [collapsed_from, 1.0],
        [low, low],
        [high, high],
        color="0.8",
        label=f"paper: untrained VGG13/16/19 from depth {collapsed_from} (figure mapc_rand_n_reg)",
    )
    unresolved_any = False
    for i, (change, r) in enumerate(measured):
        frame = latent_rows(r)
        colour = f"C{i}"
        xs = frame["relative_depth"].astype(float).tolist()
        flags = (
            frame["unresolved"].astype(bool).tolist() if "unresolved" in frame.columns else [False] * len(xs)
        )
        unresolved_any |= any(flags)
        for ax, column in ((left, "mapc"), (right, "mapc_dimensionless")):
            if column not in frame.columns:
                continue
            ys = [y if y > 0 else float("nan") for y in frame[column].astype(float)]
            ax.plot(xs, ys, color=colour, lw=1.4, label=change_label(change) if ax is left else None)
            for x, y, flagged in zip(xs, ys, flags):
                ax.plot([x], [y], marker="o", ms=6, color=colour, mfc="white" if flagged else colour)
    for ax, what in ((left, "MAPC (1/length)"), (right, "MAPC × radius (dimensionless)")):
        ax.set_yscale("log")
        ax.set_xlabel("relative depth")
        ax.set_ylabel(f"{what}, log scale")
        ax.grid(True, which="major", alpha=0.3)
    if unresolved_any:
        left.plot([], [], ls="none", marker="o", mfc="white", color="black", label="unresolved probe (audit)")
    left.text(
        0.02,
        0.02,
        _audit_text(measured),
        transform=left.transAxes,
        ha="left",
        va="bottom",
        fontsize=9,
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.9, "edgecolor": "0.7"},
    )
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=9)
    left.set_title("MAPC", fontsize=10)
    right.set_title("MAPC × r, r the median neighbour distance at the probe", fontsize=10)
    fig.suptitle(
        f"{cell_id}: one network's curvature under each measurement\n"
        "open marker: the audit flags the fit unresolved (its quadratic terms are below its precision)"
    )
    return fig
