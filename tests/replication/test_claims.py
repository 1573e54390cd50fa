"""Claim statistics and verdicts on constructed profiles (cases in claim_cases.py), both ways, and the
robustness variants that must change a verdict."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps

from crlm_bench.registry import UnknownNameError
from crlm_bench.replication import claims as C
from crlm_bench.replication import paper
from crlm_bench.replication.claims.curves import profile_curve
from crlm_bench.replication.claims.intervals import pooled_id
from tests.replication import claim_cases as cases

VARIANTS = {C.variant_name(s, i): (s, i) for s, i in C.VARIANTS}


def run(claim: str, results, variant: str = C.MAIN_VARIANT) -> list[C.Verdict]:
    statistic, input_row = VARIANTS[variant]
    return [v for c in C.select([claim]) for v in c(results, statistic=statistic, input_row=input_row)]


def only(verdicts: list[C.Verdict], **match) -> C.Verdict:
    chosen = [v for v in verdicts if all(getattr(v, k) == x for k, x in match.items())]
    assert len(chosen) == 1, [(v.claim, v.group, v.statistic) for v in verdicts]
    return chosen[0]


# ------------------------------------------------------------------------------------------
# statistics


def test_spearman_pearson_slope_basic():
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert C.spearman(x, [v**3 for v in x]) == pytest.approx(1.0)
    assert C.spearman(x, [-v for v in x]) == pytest.approx(-1.0)
    assert C.pearson(x, [2 * v + 1 for v in x]) == pytest.approx(1.0)
    assert C.slope(x, [2 * v + 1 for v in x]) == pytest.approx(2.0)
    assert math.isnan(C.spearman([1, 2], [3, 4]))  # fewer than 3 points
    assert math.isnan(C.spearman([1, 2, 3], [5, 5, 5]))  # constant side
    assert math.isnan(C.pearson([1, 1, 1], [1, 2, 3]))
    assert math.isnan(C.slope([1, 1], [1, 2]))
    assert C.spearman([1, 2, 3, float("nan"), 4], [1, 2, 3, 0, 4]) == pytest.approx(1.0)  # NaN pairs dropped


@given(
    st.lists(st.integers(-1000, 1000), min_size=3, max_size=12, unique=True),
    st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=3, max_size=12),
)
def test_spearman_matches_scipy_and_is_rank_invariant(x, y):
    n = min(len(x), len(y))
    x, y = x[:n], y[:n]
    rho = C.spearman(x, y)
    if len(set(y)) == 1:  # a constant side: undefined
        assert math.isnan(rho)
        return
    assert rho == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-12)
    assert -1 - 1e-12 <= rho <= 1 + 1e-12
    if not math.isnan(rho):  # a strictly increasing transform keeps the ranks
        assert C.spearman(np.asarray(x, dtype=float) ** 3 + 5, y) == pytest.approx(rho, abs=1e-12)


def test_ratio_span_median_normalise_gap():
    assert C.ratio(1.0, 4.0) == 0.25
    assert math.isnan(C.ratio(0.0, 0.0))
    assert C.ratio(1.0, 0.0) == math.inf
    assert C.span([0.5, 2.0, 1.0]) == 4.0
    assert C.span([3.0]) == 1.0
    assert C.span([0.0, 1.0]) == math.inf
    assert math.isnan(C.span([]))
    assert C.median([1.0, float("nan"), 3.0]) == 2.0
    assert math.isnan(C.median([]))
    assert np.mean(C.normalise([1.0, 2.0, 3.0])) == pytest.approx(1.0)
    assert C.curvature_gap([1.0, 1.0, 4.0]) == pytest.approx(1.5)  # mean 2: 4/2 - 1/2


def test_shape_statistics_on_the_paper_profile_and_margin_boundary():
    s = C.shape_statistics(cases.PAPER_INPUT, cases.PAPER_LIKE)
    assert s["rise"] == pytest.approx(0.062 / 1.6e-4)
    assert s["plateau_span"] == pytest.approx(0.212 / 0.0385)
    assert s["final_rise"] == pytest.approx(3.01 / 0.218)
    assert s["margin"] == pytest.approx(s["final_rise"] / 5)
    exact = C.shape_statistics(1.0, [10.0, 10.0, 10.0, 50.0])  # rise 10, span 1, final 5: on the bounds
    assert exact["margin"] == pytest.approx(1.0)


def test_threshold_check_and_text():
    t = C.Threshold(0.5, "<", "why")
    assert t.check(0.4) and not t.check(0.5) and not t.check(float("nan"))
    assert t.text == "< 0.5"
    assert C.THRESHOLDS["profile-shape/rise"].text == "≥ 10×"
    with pytest.raises(ValueError, match="one of"):
        C.Threshold(1, "=>", "why")
    for name, threshold in C.THRESHOLDS.items():
        assert threshold.justification.strip(), name


def test_profile_curve_picks_the_input_row_and_statistic():
    frame = cases.make_profile(
        cases.PAPER_LIKE, input_perturbation=0.05, sff=[2 * x for x in cases.PAPER_LIKE]
    )
    knn = C.profile_curve(frame, "mapc", "knn")
    pert = C.profile_curve(frame, "mapc", "perturbation")
    sff = C.profile_curve(frame, "sff", "knn")
    assert knn.input_value == cases.PAPER_INPUT and pert.input_value == 0.05
    assert knn.values == tuple(cases.PAPER_LIKE) and knn.probes[-2:] == ("avgpool", "linear")
    assert sff.values == tuple(2 * x for x in cases.PAPER_LIKE)
    assert C.profile_curve(frame, "mapc", None).input_value is None
    # the knn NMAPC is the profile's nmapc column
    np.testing.assert_allclose(knn.normalised, frame[frame.depth > 0]["nmapc"], rtol=1e-12)
    with pytest.raises(C.ProfileError, match="input_probe='both'"):
        C.profile_curve(frame[(frame.depth > 0) | (frame.neighbourhood == "knn")], "mapc", "perturbation")
    with pytest.raises(UnknownNameError, match="mapc"):
        C.profile_curve(frame, "mapcc")
    with pytest.raises(ValueError, match="'knn'"):
        C.profile_curve(frame, "mapc", "kNN")
    with pytest.raises(C.ProfileError, match="no column"):
        C.profile_curve(frame.drop(columns="sff_norm_median"), "sff")


def test_cell_result_from_profile():
    from crlm_bench.experiment.cell import Cell

    cell = Cell.build("fashion-mnist", "resnet8_narrow", "mixup", seed=2, epochs=10, at=4)
    frame = cases.make_profile(cases.PAPER_LIKE, accuracy=0.83)
    r = C.CellResult.from_profile(cell, frame)
    assert (r.cell_id, r.dataset, r.model, r.recipe, r.seed, r.epoch, r.epochs) == (
        cell.id,
        "fashion-mnist",
        "resnet8_narrow",
        "mixup",
        2,
        4,
        10,
    )
    assert r.test_accuracy == pytest.approx(0.83) and r.trained and not r.final
    assert C.CellResult.from_profile("cifar10-vgg16-untrained-s0-e0", frame).trained is False
    like = SimpleNamespace(
        id="x", at=3, training=SimpleNamespace(dataset="d", model="m", recipe="baseline", seed=0, epochs=3)
    )
    assert C.CellResult.from_profile(like, frame.drop(columns="test_accuracy")).final
    assert math.isnan(C.CellResult.from_profile(like, frame.drop(columns="test_accuracy")).test_accuracy)
    with pytest.raises(TypeError, match="Cell"):
        C.CellResult.from_profile(object(), frame)
    with pytest.raises(ValueError, match="lacks the columns"):
        C.CellResult.from_profile(like, frame.drop(columns="mapc"))
    json.dumps(r.to_dict(), allow_nan=False)


# ------------------------------------------------------------------------------------------
# claims, both ways, and the robustness variants


@pytest.mark.parametrize(
    "name, latent, kw, expected", cases.PROFILE_SHAPE_CASES, ids=[c[0] for c in cases.PROFILE_SHAPE_CASES]
)
def test_profile_shape(name, latent, kw, expected):
    result = cases.make_result(latent, **kw)
    for variant, holds in expected.items():
        v = only(run("profile-shape", [result], variant))
        assert v.holds is holds, (variant, v.explanation)
        assert v.variant == variant and v.group == result.cell_id
        assert (v.value >= 1) == holds
        assert {"rise", "plateau_span", "final_rise", "rise_holds"} <= set(v.details)


def test_profile_shape_skips_untrained_and_unfinished_cells():
    results = [
        cases.make_result(cases.PAPER_LIKE, recipe="untrained"),
        cases.make_result(cases.PAPER_LIKE, epoch=5, epochs=10),
    ]
    assert run("profile-shape", results) == []


@pytest.mark.parametrize(
    "name, trained, untrained, kw, expected", cases.UNTRAINED_CASES, ids=[c[0] for c in cases.UNTRAINED_CASES]
)
def test_untrained_flattens(name, trained, untrained, kw, expected):
    results = [cases.make_result(trained), cases.make_result(untrained, recipe="untrained", **kw)]
    for variant, holds in expected.items():
        v = only(run("untrained-flattens", results, variant))
        assert v.holds is holds, (variant, v.explanation)
        assert v.group == "fashion-mnist/resnet8_narrow"
        assert v.details["untrained_cell"].endswith("untrained-s0-e0")


def test_untrained_flattens_needs_both_cells():
    assert run("untrained-flattens", [cases.make_result(cases.PAPER_LIKE)]) == []
    assert run("untrained-flattens", [cases.make_result(cases.PAPER_LIKE, recipe="untrained")]) == []


def _model_results(points, dataset="fashion-mnist"):
    return [
        cases.make_result(cases.plateau_then(0.05, 0.1, last), model=m, accuracy=a, dataset=dataset, **kw)
        for m, a, last, kw in points
    ]


@pytest.mark.parametrize(
    "name, points, expected", cases.GAP_MODEL_CASES, ids=[c[0] for c in cases.GAP_MODEL_CASES]
)
def test_gap_tracks_accuracy_across_models(name, points, expected):
    results = _model_results(points)
    for variant, holds in expected.items():
        v = only(
            run("gap-tracks-accuracy", results, variant), statistic="Spearman ρ(gap, accuracy) across models"
        )
        assert v.holds is holds, (variant, v.explanation)
        assert v.group == "fashion-mnist" and v.details["n_models"] == 4
        assert abs(v.value) == pytest.approx(1.0)


def test_gap_across_models_not_evaluable_with_two_models():
    v = only(run("gap-tracks-accuracy", _model_results(cases.GAP_TOO_FEW_MODELS)))
    assert not v.holds and cases.is_nan(v.value)
    assert "not evaluable" in v.explanation.lower() and "≥ 3" in v.explanation
    assert v.to_dict()["value"] is None


def test_gap_across_models_averages_seeds_and_ignores_other_recipes():
    points = cases.GAP_MODEL_CASES[0][1]
    results = _model_results(points) + [
        cases.make_result(cases.plateau_then(0.05, 0.1, 4.0), model=points[0][0], accuracy=0.80, seed=1),
        cases.make_result(
            cases.plateau_then(0.05, 0.1, 0.2), model=points[3][0], recipe="mixup", accuracy=0.99
        ),
    ]
    v = only(run("gap-tracks-accuracy", results))
    seeds = [r for r in results if r.model == points[0][0] and r.recipe == "baseline"]
    # the two seeds are one network: pooled under one id, the gap that of their mean profile
    assert v.details["models"][points[0][0]]["cells"] == [pooled_id(seeds[0].cell_id, [0, 1])]
    assert len(v.details["models"][points[3][0]]["cells"]) == 1  # the mixup cell is not a baseline
    mean_profile = seeds[0].profile.assign(mapc=(seeds[0].profile["mapc"] + seeds[1].profile["mapc"]) / 2)
    assert v.details["models"][points[0][0]]["gap"] == pytest.approx(profile_curve(mean_profile).gap)
    # seed 1 lifts the least accurate model's pooled gap above the next model's only: one swap of
    # neighbours, ρ = 0.8, on the bound (≥ 0.8), which holds
    assert v.value == pytest.approx(0.8) and v.holds


@pytest.mark.parametrize(
    "name, checkpoints, holds", cases.GAP_TRAINING_CASES, ids=[c[0] for c in cases.GAP_TRAINING_CASES]
)
def test_gap_tracks_accuracy_along_training(name, checkpoints, holds):
    results = [
        cases.make_result(cases.plateau_then(0.05, 0.1, last), epoch=e, epochs=12, accuracy=a)
        for e, a, last in checkpoints
    ]
    v = only(run("gap-tracks-accuracy", results), statistic="Pearson r(gap, accuracy) along training")
    assert v.holds is holds, v.explanation
    assert v.group == "fashion-mnist/resnet8_narrow/baseline/s0" and v.details["n_checkpoints"] == 6
    assert (v.details["slope_per_accuracy_point"] > 0) == (name == "rising-together")


def test_gap_along_training_not_evaluable_with_three_checkpoints():
    results = [
        cases.make_result(cases.plateau_then(0.05, 0.1, last), epoch=e, epochs=12, accuracy=a)
        for e, a, last in cases.GAP_TRAINING_TOO_FEW
    ]
    v = only(run("gap-tracks-accuracy", results), statistic="Pearson r(gap, accuracy) along training")
    assert not v.holds and "not evaluable" in v.explanation.lower() and "save_at" in v.explanation


@pytest.mark.parametrize("name, networks, expected", cases.ID_CASES, ids=[c[0] for c in cases.ID_CASES])
def test_id_not_curvature(name, networks, expected):
    results = [
        cases.make_result(latent, ids=ids, model=m, **kw)
        for (latent, ids, kw), m in zip(networks, ("resnet8_narrow", "vgg6_narrow"))
    ]
    for variant, holds in expected.items():
        v = only(run("id-not-curvature", results, variant))
        assert v.holds is holds, (variant, v.explanation)
        assert v.group == "fashion-mnist" and v.details["n_cells"] == len(networks)


@pytest.mark.parametrize(
    "name, plateaus, sff, expected", cases.MIXUP_CASES, ids=[c[0] for c in cases.MIXUP_CASES]
)
def test_mixup_flattens(name, plateaus, sff, expected):
    results = cases.mixup_results(plateaus, sff)
    for variant, holds in expected.items():
        v = only(run("mixup-flattens", results, variant))
        assert v.holds is holds, (variant, v.explanation)
        assert v.value == pytest.approx(plateaus["mixup"] / plateaus["baseline"]) or variant != C.MAIN_VARIANT
        assert ("manifold_mixup_ratio_to_baseline" in v.details) == ("manifold_mixup" in plateaus)


def test_mixup_flattens_needs_baseline_and_mixup():
    assert run("mixup-flattens", cases.mixup_results({"baseline": 0.1, "manifold_mixup": 0.2}, {})) == []


# ------------------------------------------------------------------------------------------
# registry, evaluate_all, paper values, serialisation


def test_claims_registry():
    assert [c.name for c in C.ALL_CLAIMS] == [name for name, _ in C.CLAIM_GROUPS]
    assert set(C.CLAIMS.names()) == {c.name for c in C.ALL_CLAIMS}
    assert {c.paper_claim for c in C.ALL_CLAIMS} == set(C.PAPER_ORDER)
    with pytest.raises(UnknownNameError, match="profile-shape"):
        C.CLAIMS.get("profile-shap")
    for name in C.CLAIMS.names():
        assert C.CLAIMS.get(name)([]) == []
        with pytest.raises(UnknownNameError):
            C.CLAIMS.get(name)([], statistic="nope")
    # a paper claim selects all its parts, in the paper's order
    assert [c.name for c in C.select(["gap-tracks-accuracy"])] == ["gap-across-models", "gap-along-training"]


def test_each_claim_knows_where_its_statistic_is_defined():
    for claim in C.ALL_CLAIMS:
        path, line = claim.where.rsplit(":", 1)
        assert path.endswith(claim.name.replace("-", "_") + ".py") and int(line) > 0
        source = (Path(__file__).resolve().parents[2] / path).read_text().splitlines()
        assert source[int(line) - 1].startswith("def measure("), (claim.name, claim.where)
        assert claim.statistic and claim.summary and claim.thresholds


def test_thresholds_are_collected_from_the_claim_modules():
    from crlm_bench.replication.claims import mixup_flattens, profile_shape

    assert C.THRESHOLDS["profile-shape/rise"] is profile_shape.RISE
    assert C.THRESHOLDS["mixup-flattens/ratio-to-baseline"] is mixup_flattens.RATIO_TO_BASELINE
    assert len(C.THRESHOLDS) == sum(len(c.thresholds) for c in C.ALL_CLAIMS)


def _grid(dataset="fashion-mnist"):
    out = _model_results(cases.GAP_MODEL_CASES[0][1], dataset=dataset)
    out.append(cases.make_result(cases.UNTRAINED_COLLAPSE, recipe="untrained", dataset=dataset))
    out.append(cases.make_result(cases.plateau_then(0.01, 0.1, 1.0), recipe="mixup", dataset=dataset))
    return out


def test_evaluate_all_covers_every_claim_and_variant():
    verdicts = C.evaluate_all(_grid())
    assert [v.claim for v in verdicts] == sorted((v.claim for v in verdicts), key=C.PAPER_ORDER.index)
    assert set(v.claim for v in verdicts) == set(C.PAPER_ORDER)
    by_variant = {name: [v.key for v in verdicts if v.variant == name] for name in VARIANTS}
    assert by_variant[C.MAIN_VARIANT] == by_variant["sff/knn-input"] == by_variant["mapc/perturbation-input"]
    assert C.evaluate(_grid()) == [v for v in verdicts if v.variant == C.MAIN_VARIANT]
    with pytest.raises(UnknownNameError):
        C.evaluate_all(_grid(), claims=["nope"])


def test_a_missing_input_row_drops_only_that_variant():
    grid = [cases.make_result(cases.PAPER_LIKE)]
    frame = grid[0].profile
    r = C.CellResult(
        *[
            getattr(grid[0], f)
            for f in ("cell_id", "dataset", "model", "recipe", "seed", "epoch", "epochs", "test_accuracy")
        ],
        frame[frame.neighbourhood.ne("perturbation") | frame.depth.gt(0)],
    )
    variants = {v.variant for v in C.evaluate_all([r], claims=["profile-shape"])}
    assert variants == {C.MAIN_VARIANT, "sff/knn-input"}


def test_paper_values_attach_to_paper_cells_in_the_main_variant_only():
    results = [cases.make_result(cases.PAPER_LIKE, dataset="cifar10", model="resnet18")]
    main = only(run("profile-shape", results))
    assert main.paper_value == pytest.approx(3.01 / 0.218 / 5)
    assert "read from the paper's figure common_mapc" in main.paper_source
    assert only(run("profile-shape", results, "sff/knn-input")).paper_value is None
    assert only(run("profile-shape", [cases.make_result(cases.PAPER_LIKE)])).paper_value is None
    grid = _model_results(
        [
            (m, a, last, {})
            for m, a, last in zip(("resnet18", "resnet50", "vgg16"), (0.9, 0.92, 0.95), (1.0, 2.0, 3.0))
        ],
        dataset="cifar10",
    )
    v = only(run("gap-tracks-accuracy", grid))
    assert v.paper_value == 0.94 and "acc_vs_mapc_ngap" in v.paper_source
    mix = cases.mixup_results({"baseline": 0.1, "mixup": 0.02}, {})
    mix = [
        C.CellResult(
            r.cell_id, "cifar10", "resnet50", r.recipe, r.seed, r.epoch, r.epochs, r.test_accuracy, r.profile
        )
        for r in mix
    ]
    assert only(run("mixup-flattens", mix)).paper_value == pytest.approx(
        math.sqrt(0.003 * 0.015) / math.sqrt(0.03 * 0.1)
    )


def test_paper_correlations_recompute_from_the_points():
    for dataset in paper.PAPER_DATASETS:
        points = paper.paper_points(dataset)
        acc, gap = [p.accuracy_percent for p in points], [p.gap for p in points]
        stated = paper.GAP_ACCURACY_CORRELATION[dataset]
        assert C.spearman(gap, acc) == pytest.approx(stated["spearman"].value, abs=0.01)
        assert C.pearson(gap, acc) == pytest.approx(stated["pearson"].value, abs=0.01)
    values = [
        *paper.ACCURACY_AND_GAP.values(),
        *paper.MAPC_PROFILES.values(),
        *paper.UNTRAINED_LAST_PROBE.values(),
        *paper.CHECKPOINT_SLOPE.values(),
        *(r for regs in paper.REGULARISERS.values() for r in regs.values()),
    ]
    assert all("the paper's figure" in v.source for v in values)


def test_verdict_round_trips_through_json():
    verdicts = C.evaluate_all(_grid("cifar10"))
    assert verdicts
    for v in verdicts:
        d = json.loads(json.dumps(v.to_dict(), allow_nan=False))
        assert C.Verdict.from_dict(d).to_dict() == d
    with pytest.raises(ValueError, match="unknown keys"):
        C.Verdict.from_dict({**verdicts[0].to_dict(), "extra": 1})


def test_duplicate_cell_ids_use_the_first_and_warn(caplog):
    first = cases.make_result(cases.PAPER_LIKE)
    second = cases.make_result([0.05] * 10, input_knn=0.05)  # same id, a different measurement
    with caplog.at_level("WARNING", logger="crlm_bench.replication.claims"):
        verdicts = C.evaluate_all([first, second], claims=["profile-shape"])
    assert [v.holds for v in verdicts] == [True, True, True]
    assert "share the cell id" in caplog.text
