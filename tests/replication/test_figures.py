"""What the report's figures show (:mod:`crlm_bench.replication.report.plots`), read from the
Figure objects without saving them: every figure states its verdicts and thresholds, the input
does not squash the profiles' plateau, the untrained panels share one y-scale and leave none
empty, the recipes' bars carry the 0.5 line, labels stay inside the axes, and the along-training
figure follows the checkpoints in order."""

from __future__ import annotations

import logging
import math

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.patches import Rectangle
from matplotlib.text import Annotation, Text

from crlm_bench.replication import claims as C
from crlm_bench.replication import paper
from crlm_bench.replication.claims.intervals import pool
from crlm_bench.replication.report import figures as F
from crlm_bench.replication.report import plots as P
from tests.replication import claim_cases as cases
from tests.replication.test_report import constructed_results

MODELS = ("resnet18", "resnet50", "resnet101", "vgg13", "vgg16")


@pytest.fixture(scope="module")
def drawn():
    """Each figure of the constructed CIFAR-10 results, drawn (not saved), with its inputs."""
    results = constructed_results()
    verdicts = [v for v in C.evaluate_all(results) if v.variant == C.MAIN_VARIANT]
    final = [r for r in results if r.final]
    curves = {r.cell_id: P.curve(r) for r in final}
    return {kind: draw() for kind, draw in F._dataset_figures("cifar10", final, curves, verdicts)}, verdicts


def texts(fig) -> str:
    """Every text of a figure (titles, labels, legends, annotations), one per line."""
    return "\n".join(t.get_text() for t in fig.findobj(Text) if t.get_text())


def test_every_figure_states_its_verdicts_and_thresholds(drawn):
    figures, verdicts = drawn
    assert set(figures) == {"profiles", "untrained", "recipes", "gap_accuracy", "gap_training"}
    expected = {
        "profiles": [
            "profile-shape holds for 3 of 3",
            "margin ≥ 1",
            "rise ≥ 10×",
            "final rise ≥ 5×",
            "id-not-curvature ✗",
            "needs < 0.5",
            "needs ≥ 10×",
        ],
        "untrained": [
            "untrained-flattens holds for 1 of 1",
            "resnet18 ✓",
            "needs ≤ 0.01",
            "needs < 1",
            "paper (CIFAR-10): ≤ 3.33e-11×",
            "paper's collapse",
        ],
        "recipes": ["mixup-flattens ✓", "mixup needs ≤ 0.5× the baseline's"],
        "gap_accuracy": ["across models ✓", "Spearman ρ = 1", "needs ≥ 0.8", "paper: ρ ≈ 0.94"],
        "gap_training": ["along training ✓ (5 checkpoints)", "needs ≥ 0.9", "needs > 0"],
    }
    for kind, words in expected.items():
        text = texts(figures[kind])
        for word in words:
            assert word in text, (kind, word, text)


def test_the_input_has_its_own_scale_and_the_plateau_and_final_rise_are_marked(drawn):
    fig = drawn[0]["profiles"]
    ax_in, ax, ax_id = fig.axes[:3]
    assert ax_in.get_xticklabels()[0].get_text() == "input"
    assert ax.get_ylim()[0] > 50 * cases.PAPER_INPUT  # the input does not stretch the latent panel
    assert ax_in.get_ylim()[0] < cases.PAPER_INPUT < ax_in.get_ylim()[1]
    plateau = [line for line in ax.get_lines() if line.get_linewidth() >= 8 and len(line.get_xdata())]
    assert len(plateau) == 3 and all(len(line.get_xdata()) == 6 for line in plateau)  # before the last two
    needed = [line for line in ax.get_lines() if line.get_marker() == "_" and len(line.get_xdata())]
    assert sorted(line.get_ydata()[0] for line in needed) == pytest.approx([0.5] * 3)  # 5 × penultimate 0.1
    assert ax.get_yaxis().get_scale() == "log" and ax_in.get_yaxis().get_scale() == "log"
    assert "intrinsic dimension" in ax_id.get_ylabel()
    ids = [line for line in ax_id.get_lines() if len(line.get_xdata())]
    assert len(ids) == 3 and list(ids[0].get_ydata()) == [20.0, *(5.0 + i for i in range(8))]


def test_untrained_panels_share_one_scale_none_empty_and_the_paper_collapse_is_drawn():
    results = []
    for model in MODELS:
        results.append(cases.make_result(cases.PAPER_LIKE, dataset="cifar10", model=model))
        results.append(
            cases.make_result(cases.UNTRAINED_COLLAPSE, dataset="cifar10", model=model, recipe="untrained")
        )
    verdicts = {(v.claim, v.group): v for v in C.evaluate(results, claims=["untrained-flattens"])}
    curves = {r.cell_id: P.curve(r) for r in results}
    baseline = {r.model: r for r in results if r.trained}
    untrained = {r.model: r for r in results if not r.trained}
    fig = P.untrained("cifar10", list(MODELS), baseline, untrained, curves, verdicts)
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == 5 and len(fig.axes) == 6  # a 2 × 3 grid
    for ax in panels[1:]:
        assert ax.get_shared_y_axes().joined(panels[0], ax)
    spare = [ax for ax in fig.axes if not ax.axison]
    assert [ax.get_legend() is not None for ax in spare] == [True]  # the spare slot holds the legend
    ratios = [
        value.value / paper.paper_profile(*pair).last for pair, value in paper.UNTRAINED_LAST_PROBE.items()
    ]
    for ax, model in zip(panels, MODELS):
        reference = [line for line in ax.get_lines() if line.get_marker() == "v"]
        own = paper.UNTRAINED_LAST_PROBE.get(("cifar10", model))
        expected = (
            own.value / paper.paper_profile("cifar10", model).last if own and own.value else max(ratios)
        )
        assert reference[0].get_ydata()[0] == pytest.approx(cases.PAPER_LIKE[-1] * expected)
        needed = [line for line in ax.get_lines() if line.get_marker() == "_"]
        assert needed[0].get_ydata()[0] == pytest.approx(0.01 * cases.PAPER_LIKE[-1])


def test_recipes_bars_are_the_verdicts_ratios_with_the_half_line(drawn):
    fig, verdicts = drawn[0]["recipes"], drawn[1]
    (v,) = [v for v in verdicts if v.claim == "mixup-flattens"]
    ax_bar = fig.axes[0]
    labels = [t.get_text() for t in ax_bar.get_xticklabels()]
    heights = [p.get_height() for p in ax_bar.patches if isinstance(p, Rectangle)]
    assert labels[0] == "baseline" and heights[0] == pytest.approx(1.0)
    assert dict(zip(labels, heights)) == pytest.approx(v.details["ratio_to_baseline"])
    half = [line for line in ax_bar.get_lines() if list(line.get_ydata()) == [0.5, 0.5]]
    assert len(half) == 1


def inside(fig) -> list[str]:
    """The annotations of a drawn figure that stick out of their axes."""
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    out = []
    for ax in fig.axes:
        box = ax.get_window_extent(renderer)
        for t in ax.texts + [c for c in ax.get_children() if isinstance(c, Annotation)]:
            extent = t.get_window_extent(renderer)
            if not (
                box.x0 - 1 <= extent.x0
                and extent.x1 <= box.x1 + 1
                and box.y0 - 1 <= extent.y0
                and extent.y1 <= box.y1 + 1
            ):
                out.append(t.get_text())
    return out


def test_gap_figures_keep_their_labels_inside_and_follow_the_checkpoints(drawn):
    figures, verdicts = drawn
    assert inside(figures["gap_accuracy"]) == []
    assert inside(figures["gap_training"]) == []
    (run,) = [v for v in verdicts if "checkpoints" in v.details]
    ax = figures["gap_training"].axes[0]
    (points,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    epochs = sorted(run.details["checkpoints"], key=int)
    xs = [100 * run.details["checkpoints"][e]["accuracy"] for e in epochs]
    assert list(points.get_offsets()[:, 0]) == pytest.approx(xs)
    assert [t.get_text() for t in ax.texts if t.get_text().startswith("epoch")] == [
        f"epoch {e}" for e in epochs
    ]


def test_degenerate_values_leave_gaps_and_a_failing_figure_costs_only_itself(tmp_path, monkeypatch, caplog):
    zero = cases.make_result(
        [0.0, 0.05, math.nan, 0.05, 0.05, 0.05, 0.1, 1.0], dataset="cifar10", model="resnet18"
    )
    flat = cases.make_result(
        cases.UNTRAINED_COLLAPSE[:-1] + [0.0], dataset="cifar10", model="resnet18", recipe="untrained"
    )
    saved = []
    monkeypatch.setattr(F, "_save", lambda fig, directory, stem: saved.append(stem) or {})
    F.write_figures(tmp_path, [zero, flat], C.evaluate_all([zero, flat]))
    assert saved == ["profiles_cifar10", "untrained_cifar10", "gap_accuracy_cifar10"]

    def broken(*args, **kwargs):
        raise RuntimeError("drawing failed")

    saved.clear()
    monkeypatch.setattr(P, "profiles", broken)
    with caplog.at_level(logging.ERROR):
        F.write_figures(tmp_path, [zero, flat], C.evaluate_all([zero, flat]))
    assert saved == ["untrained_cifar10", "gap_accuracy_cifar10"]
    assert "profiles figure of cifar10 could not be drawn" in caplog.text


def test_figure_titles_name_their_kind_and_dataset():
    assert F.figure_title("gap_training_fashion-mnist.png").endswith(
        "along training (gap-tracks-accuracy) · fashion-mnist"
    )
    assert F.figure_title("gap_accuracy_cifar10.svg").startswith(
        "Curvature gap against accuracy across models"
    )
    assert F.figure_title("other.png") == "other"


def test_seeds_are_drawn_as_their_mean_with_their_range(tmp_path):
    """Three seeds of each baseline model: one line per network (the seeds' mean) with a band from
    the lowest to the highest seed, and bars of the seeds' range on the gap-accuracy figure."""
    from matplotlib.collections import PolyCollection

    from tests.replication.test_intervals import TIGHT, with_points

    results = []
    for i, model in enumerate(("resnet8_narrow", "resnet14_narrow", "vgg6_narrow")):
        for seed, scale in enumerate((0.9, 1.0, 1.1)):
            latent = cases.plateau_then(0.05 * scale, 0.1, (1.0 + i) * scale)
            result = cases.make_result(latent, model=model, seed=seed, accuracy=0.8 + 0.05 * i + 0.01 * seed)
            results.append(with_points(result, TIGHT))
    verdicts = [v for v in C.evaluate_all(results) if v.variant == C.MAIN_VARIANT]
    final = pool(results)
    curves = {r.cell_id: P.curve(r) for r in final}
    figures = {kind: draw() for kind, draw in F._dataset_figures("fashion-mnist", final, curves, verdicts)}
    profile = figures["profiles"]
    assert texts(profile).count("(mean of 3 seeds)") == 3 and "band: lowest to highest seed" in texts(profile)
    bands = [c for c in profile.axes[1].collections if isinstance(c, PolyCollection)]
    assert len(bands) >= 3
    assert "bars: range over seeds" in texts(figures["gap_accuracy"])
    # the write path pools the seeds itself
    written = F.write_figures(tmp_path, results, verdicts)
    assert "profiles_fashion-mnist.png" in written
