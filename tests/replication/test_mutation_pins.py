"""Pins for the claims' verdict logic, each written to catch a mutant that the claim tests let
through (`bash scripts/mutation.sh`, mutation/README.md): a statistic exactly at each threshold,
shape statistics whose neighbouring probes differ (a window or a probe taken one off is caught),
the profile-shape verdict in full, its paper margin, and how a profile becomes a curve. Cases as
data beside each test; the shared tables (AT_THRESHOLD, ON_THE_BOUNDS) are in claim_cases.py."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest

from crlm_bench.replication import claims as C
from crlm_bench.replication import paper
from crlm_bench.replication.claims import curves, profile_shape
from tests.replication import claim_cases as cases


def _run(claim: str, results, statistic: str = "mapc", input_row: str = "knn") -> list[C.Verdict]:
    return [v for c in C.select([claim]) for v in c(results, statistic=statistic, input_row=input_row)]


def _one(verdicts: list[C.Verdict], statistic: str | None = None) -> C.Verdict:
    chosen = [v for v in verdicts if statistic is None or v.statistic == statistic]
    assert len(chosen) == 1, [(v.claim, v.group, v.statistic) for v in verdicts]
    return chosen[0]


# ------------------------------------------------------------------------------------------
# a statistic exactly at its threshold gets the documented verdict


def test_every_threshold_is_pinned_at_its_bound():
    assert set(cases.AT_THRESHOLD) == set(C.THRESHOLDS)
    for key, expected in cases.AT_THRESHOLD.items():
        t = C.THRESHOLDS[key]
        assert t.check(t.value) is expected, key
        assert t.check(float(t.value)) is expected, key


@pytest.mark.parametrize("key", sorted(k for k, t in C.THRESHOLDS.items() if t.value != 0))
def test_a_statistic_an_ulp_off_its_bound_is_on_it(key):
    t = C.THRESHOLDS[key]
    for x in (math.nextafter(t.value, -math.inf), math.nextafter(t.value, math.inf)):
        assert t.check(x) is cases.AT_THRESHOLD[key], (key, x)
    step = t.value * 1e-10  # outside the tolerance (1e-12), though inside math.isclose's default
    assert t.check(t.value - step) is (t.comparison in ("<", "<="))
    assert t.check(t.value + step) is (t.comparison in (">", ">="))


def test_profile_shape_holds_with_every_statistic_on_its_bound():
    v = _one(_run("profile-shape", [cases.make_result(cases.ON_THE_BOUNDS, input_knn=1.0)]))
    assert (v.details["rise"], v.details["plateau_span"], v.details["final_rise"]) == (10.0, 20.0, 5.0)
    assert v.value == 1.0 and v.holds


@pytest.mark.parametrize(
    "latent, input_knn, failing",
    [
        ([10.0, 200.0, 200.0, 1000.0], 1.001, "rise"),
        ([10.0, 200.01, 200.0, 1000.0], 1.0, "plateau_span"),
        ([10.0, 200.0, 200.0, 999.9], 1.0, "final_rise"),
    ],
)
def test_profile_shape_fails_just_past_one_bound(latent, input_knn, failing):
    v = _one(_run("profile-shape", [cases.make_result(latent, input_knn=input_knn)]))
    holds = {k: v.details[f"{k}_holds"] for k in ("rise", "plateau_span", "final_rise")}
    assert holds == {k: k != failing for k in holds}
    assert not v.holds and v.value < 1


def test_untrained_collapse_at_its_bound_holds_and_a_level_last_probe_fails():
    trained = cases.make_result(cases.PAPER_LIKE[:-1] + [1.0])
    at_bound = cases.make_result([0.3] * 8 + [0.5, 0.01], recipe="untrained")
    v = _one(_run("untrained-flattens", [trained, at_bound]))
    assert v.value == 0.01 and v.holds
    level = cases.make_result([0.3] * 8 + [0.001, 0.001], recipe="untrained")
    v = _one(_run("untrained-flattens", [trained, level]))
    assert v.details["final_ratio"] == 1.0 and v.details["collapse_holds"] and not v.holds


ACROSS = "Spearman ρ(gap, accuracy) across models"
ALONG = "Pearson r(gap, accuracy) along training"


def test_a_spearman_rho_of_exactly_0_8_holds():
    # four models ranked by gap as by accuracy but for one neighbouring pair: ρ = 1 − 6·2/60 = 0.8
    points = zip(cases._MODELS, (0.80, 0.85, 0.88, 0.92), (1.0, 2.0, 4.0, 3.0))
    results = [
        cases.make_result(cases.plateau_then(0.05, 0.1, last), model=m, accuracy=a) for m, a, last in points
    ]
    v = _one(_run("gap-tracks-accuracy", results), ACROSS)
    assert v.value == pytest.approx(0.8, abs=1e-15) and v.holds


def test_three_models_are_enough_for_a_rank_correlation():
    points = zip(cases._MODELS[:3], (0.80, 0.85, 0.88), (1.0, 2.0, 3.0))
    results = [
        cases.make_result(cases.plateau_then(0.05, 0.1, last), model=m, accuracy=a) for m, a, last in points
    ]
    v = _one(_run("gap-tracks-accuracy", results), ACROSS)
    assert v.value == pytest.approx(1.0) and v.holds and v.details["n_models"] == 3


def _checkpoints(lasts: list[float]) -> list[C.CellResult]:
    """Checkpoints whose penultimate + last probe is constant, so that the mean over the probes is
    too and the gap is linear in the last probe; accuracy rises by 0.1 per checkpoint."""
    return [
        cases.make_result(
            [0.05] * 6 + [4.0 - last, last], epoch=2 * (i + 1), epochs=12, accuracy=0.4 + 0.1 * i
        )
        for i, last in enumerate(lasts)
    ]


def test_a_pearson_r_of_exactly_0_9_along_five_checkpoints_holds():
    v = _one(_run("gap-tracks-accuracy", _checkpoints([2.1, 2.2, 2.3, 2.5, 2.4])), ALONG)
    assert v.value == pytest.approx(0.9, abs=1e-12) and v.holds  # r of (1..5) against (1, 2, 3, 5, 4)
    assert v.details["n_checkpoints"] == 5 and v.details["slope_per_accuracy_point"] > 0


def test_four_checkpoints_are_not_enough():
    v = _one(_run("gap-tracks-accuracy", _checkpoints([2.1, 2.2, 2.3, 2.4])), ALONG)
    assert math.isnan(v.value) and not v.holds and "only 4 checkpoints (needs ≥ 5)" in v.explanation


def test_a_median_abs_rho_of_exactly_0_5_fails():
    # three latent probes with ID (1, 3, 2): Spearman ρ(ID, MAPC) = 0.5
    result = cases.make_result([0.1, 0.2, 0.3], ids=[1.0, 3.0, 2.0])
    v = _one(_run("id-not-curvature", [result]))
    assert v.value == 0.5 and not v.holds


def test_mixup_at_half_the_baseline_holds_unless_another_recipe_is_as_flat():
    v = _one(_run("mixup-flattens", cases.mixup_results({"baseline": 0.5, "mixup": 0.25}, {})))
    assert v.value == 0.5 and v.holds
    tied = cases.mixup_results({"baseline": 0.5, "mixup": 0.25, "no_regularization": 0.25}, {})
    v = _one(_run("mixup-flattens", tied))
    assert v.value == 0.5 and not v.holds  # mixup must lie below every other regulariser


# ------------------------------------------------------------------------------------------
# shape statistics: which probes enter each ratio

#: (name, input, latent, rise, plateau span, final rise, margin). Every neighbouring pair of probes
#: differs, and the plateau's extreme sits at its last probe, so a ratio or a window taken one probe
#: off changes a number.
SHAPES = [
    # rise-limited: 20/10 = 2 against 20/4 = 5 and (500/30)/5
    ("rise-limited", 1.0, [20.0, 10.0, 40.0, 30.0, 500.0], 20.0, 4.0, 500 / 30, 2.0),
    # span-limited: 20/15 against rise 10 and final 20/5
    ("span-limited", 1.0, [100.0, 10.0, 150.0, 160.0, 3200.0], 100.0, 15.0, 20.0, 20 / 15),
    # final-limited: (140/70)/5 = 0.4
    ("final-limited", 1.0, [100.0, 50.0, 60.0, 70.0, 140.0], 100.0, 2.0, 2.0, 0.4),
    # the plateau's maximum is its fourth probe: a window of two or three probes misses it
    ("long-plateau", 0.5, [2.0, 3.0, 1.0, 8.0, 4.0, 64.0], 4.0, 8.0, 16.0, 0.4),
    # two latent probes: no plateau, so no span and no margin
    ("no-plateau", 1.0, [20.0, 200.0], 20.0, None, 10.0, None),
    # input and first latent probe both 0: 0/0
    ("zero-input", 0.0, [0.0, 1.0, 2.0, 30.0], None, math.inf, 15.0, None),
    # a zero input under a positive first probe: an infinite rise leaves the other two to decide
    ("infinite-rise", 0.0, [1.0, 2.0, 4.0, 60.0], math.inf, 2.0, 15.0, 3.0),
]


def _same(got: float, expected: float | None) -> bool:
    return math.isnan(got) if expected is None else got == pytest.approx(expected)


@pytest.mark.parametrize(
    "name, input_value, latent, rise, span, final, margin", SHAPES, ids=[s[0] for s in SHAPES]
)
def test_shape_statistics(name, input_value, latent, rise, span, final, margin):
    s = C.shape_statistics(input_value, latent)
    assert set(s) == {"rise", "plateau_span", "final_rise", "margin"}
    for key, expected in (("rise", rise), ("plateau_span", span), ("final_rise", final), ("margin", margin)):
        assert _same(s[key], expected), (key, s[key], expected)


# ------------------------------------------------------------------------------------------
# the profile-shape verdict in full


def test_profile_shape_verdict_in_full():
    r = cases.make_result([20.0, 10.0, 40.0, 30.0, 500.0], input_knn=1.0, accuracy=0.75)
    v = _one(_run("profile-shape", [r]))
    assert v.to_dict() == {
        "claim": "profile-shape",
        "group": r.cell_id,
        "statistic": "shape margin min(rise/10, 20/span, final rise/5)",
        "value": 2.0,
        "threshold": "≥ 1 (rise ≥ 10×, span ≤ 20×, final rise ≥ 5×)",
        "threshold_value": 1.0,
        "holds": True,
        "explanation": (
            "MAPC rises 20× from the input to the first latent probe (≥ 10×), spans 4× over the plateau "
            "(≤ 20×) and rises 16.7× at the last probe (≥ 5×): the paper's shape holds."
        ),
        "paper_value": None,
        "paper_source": None,
        "details": {
            "rise": 20.0,
            "plateau_span": 4.0,
            "final_rise": pytest.approx(500 / 30),
            "rise_holds": True,
            "plateau_span_holds": True,
            "final_rise_holds": True,
            "input": 1.0,
            "first_latent": 20.0,
            "plateau_min": 10.0,
            "plateau_max": 40.0,
            "penultimate": 30.0,
            "last": 500.0,
            "latent_probes": 5,
            "test_accuracy": 0.75,
        },
        "variant": "mapc/knn-input",
        "outcome": "holds",
        "interval": None,
    }


def test_a_failing_shape_says_so_in_the_label_of_its_statistic():
    r = cases.make_result(
        [20.0, 10.0, 40.0, 30.0, 50.0], input_knn=1.0, sff=[2.0, 1.0, 4.0, 3.0, 5.0], sff_input=0.1
    )
    v = _one(_run("profile-shape", [r], statistic="sff"))
    assert v.explanation == (
        "SFF rises 20× from the input to the first latent probe (≥ 10×), spans 4× over the plateau "
        "(≤ 20×) and rises 1.67× at the last probe (≥ 5×): the paper's shape fails."
    )
    assert not v.holds and v.value == pytest.approx(5 / 3 / 5)


def test_two_latent_probes_are_not_evaluable():
    r = cases.make_result([20.0, 200.0], input_knn=1.0)
    v = _one(_run("profile-shape", [r]))
    assert (
        v.explanation
        == f"{r.cell_id} has only 2 latent probes, so no plateau before the last two: not evaluable."
    )
    assert not v.holds and math.isnan(v.value)
    assert math.isnan(v.details["plateau_min"]) and math.isnan(v.details["plateau_max"])
    assert not v.details["plateau_span_holds"] and v.details["rise_holds"] and v.details["final_rise_holds"]


def test_a_cell_without_the_variant_s_input_row_is_skipped_and_the_next_one_judged():
    first = cases.make_result(cases.PAPER_LIKE, seed=0)
    first = C.CellResult(
        *(getattr(first, f) for f in ("cell_id", "dataset", "model", "recipe", "seed", "epoch", "epochs")),
        first.test_accuracy,
        first.profile[first.profile["neighbourhood"].ne("perturbation") | first.profile["depth"].gt(0)],
    )
    second = cases.make_result(cases.PAPER_LIKE, seed=1)
    verdicts = _run("profile-shape", [first, second], input_row="perturbation")
    assert [v.group for v in verdicts] == [second.cell_id]


# ------------------------------------------------------------------------------------------
# the paper's margin beside a verdict


def _paper_cell(recipe: str = "baseline", model: str = "resnet18") -> C.CellResult:
    return cases.make_result(cases.PAPER_LIKE, dataset="cifar10", model=model, recipe=recipe)


#: (rise, plateau span, final rise) of a constructed paper profile with the part that sets its margin.
PAPER_SHAPES = [((40.0, 4.0, 30.0), 4.0), ((200.0, 10.0, 30.0), 2.0), ((200.0, 4.0, 15.0), 3.0)]


@pytest.mark.parametrize("shape, margin", PAPER_SHAPES)
def test_paper_margin_is_the_worst_of_the_three_parts(monkeypatch, shape, margin):
    rise, span, final = shape
    profile = paper.PaperProfile(
        "cifar10", "resnet18", 1e-3, (rise * 1e-3, span * rise * 1e-3), (0.01, 0.2), 1.0, final
    )
    monkeypatch.setattr(paper, "paper_profile", lambda dataset, model: profile)
    v = _one(_run("profile-shape", [_paper_cell()]))
    assert v.paper_value == pytest.approx(margin)
    assert v.paper_source == "computed from values read from the paper's figure common_mapc"
    for key, expected in zip(("rise", "plateau_span", "final_rise"), shape):
        assert v.details[f"paper_{key}"] == pytest.approx(expected)


def test_paper_margin_from_the_band_is_marked_a_lower_bound():
    v = _one(_run("profile-shape", [_paper_cell(model="resnet50")]))
    prof = paper.paper_profile("cifar10", "resnet50")
    assert v.paper_source == (
        "computed from values read from the paper's figure common_mapc "
        "(plateau from the band shared by the six networks: a lower bound)"
    )
    assert v.paper_value == pytest.approx(min(prof.rise / 10, 20 / prof.plateau_span, prof.final_rise / 5))


def test_paper_margin_only_for_the_baseline_recipe():
    v = _one(_run("profile-shape", [_paper_cell(recipe="mixup")]))
    assert v.paper_value is None and v.paper_source is None and "paper_rise" not in v.details


# ------------------------------------------------------------------------------------------
# from a profile to a curve


def _frame(rows: list[tuple[str, str, int, float]], **columns) -> pd.DataFrame:
    """A bare profile: (probe, neighbourhood, depth, mapc) per row, relative depth depth/4."""
    frame = pd.DataFrame(rows, columns=["probe", "neighbourhood", "depth", "mapc"])
    frame["relative_depth"] = frame["depth"] / 4
    for name, values in columns.items():
        frame[name] = values
    return frame


SHUFFLED = [
    ("linear", "perturbation", 4, 9.0),
    ("input", "perturbation", 0, 0.5),
    ("block2", "perturbation", 2, 2.0),
    ("input", "knn", 0, 0.25),
    ("block1", "perturbation", 1, 1.0),
    ("avgpool", "perturbation", 3, 3.0),
]


def test_profile_curve_in_full_from_shuffled_rows():
    frame = _frame(SHUFFLED, id_mean=[9.5, 20.0, 7.0, 20.0, 5.0, 8.0])
    assert C.profile_curve(frame) == C.Curve(
        statistic="mapc",
        input_row="knn",
        input_value=0.25,
        probes=("block1", "block2", "avgpool", "linear"),
        relative_depth=(0.25, 0.5, 0.75, 1.0),
        values=(1.0, 2.0, 3.0, 9.0),
        ids=(5.0, 7.0, 8.0, 9.5),
    )
    pert = C.profile_curve(frame, "mapc", "perturbation")
    assert (pert.statistic, pert.input_row, pert.input_value) == ("mapc", "perturbation", 0.5)
    assert C.profile_curve(frame, input_row=None).input_row is None


def test_profile_curve_without_id_or_neighbourhood_columns():
    frame = _frame(SHUFFLED[2:4] + SHUFFLED[4:]).drop(columns="neighbourhood")
    curve = C.profile_curve(frame)
    assert curve.input_value == 0.25 and curve.values == (1.0, 2.0, 3.0)
    assert len(curve.ids) == 3 and all(math.isnan(i) for i in curve.ids)


def test_the_curvature_gap_of_a_curve_is_its_last_two_probes_over_the_mean():
    curve = C.profile_curve(_frame(SHUFFLED))  # knn input 0.25, latent 1, 2, 3, 9: mean 3.05
    assert curve.gap == pytest.approx((9.0 - 3.0) / 3.05)
    assert curve.normalised == pytest.approx(tuple(v / 3.05 for v in (1.0, 2.0, 3.0, 9.0)))


def test_two_latent_probes_make_a_curve_and_one_does_not():
    two = C.profile_curve(
        _frame([("input", "knn", 0, 1.0), ("a", "perturbation", 1, 2.0), ("b", "perturbation", 2, 4.0)])
    )
    assert two.values == (2.0, 4.0) and two.plateau == ()
    with pytest.raises(
        C.ProfileError, match=r"^the profile has 1 latent probes; the claims need at least two$"
    ):
        C.profile_curve(_frame([("input", "knn", 0, 1.0), ("a", "perturbation", 1, 2.0)]))


def test_profile_curve_errors_say_what_to_do():
    frame = _frame(SHUFFLED)
    with pytest.raises(ValueError, match=r"^unknown input row 'kNN'; use one of 'knn', 'perturbation'$"):
        C.profile_curve(frame, "mapc", "kNN")
    with pytest.raises(ValueError, match=r"^unknown input row 'kNN'; use one of 'knn', 'perturbation'$"):
        curves.check_variant("mapc", "kNN")
    with pytest.raises(
        C.ProfileError,
        match=r"no input row measured with 'knn' neighbourhoods; profile with "
        r"Measurement\(input_probe='both'\) to evaluate this variant$",
    ):
        C.profile_curve(frame[frame["neighbourhood"] != "knn"])
    no_input = C.profile_curve(frame, input_row=None)
    with pytest.raises(
        C.ProfileError,
        match=r"^this curve was built without an input row; pass input_row='knn' or 'perturbation'$",
    ):
        no_input.with_input()
    assert curves.check_variant("sff", "perturbation") == "sff/perturbation-input"


def test_cell_result_checks_its_profile():
    with pytest.raises(
        TypeError,
        match=r"^CellResult.profile must be a pandas DataFrame \(a profile from "
        r"crlm_bench.experiment.probing.measure\), got dict$",
    ):
        C.CellResult("c", "d", "m", "baseline", 0, 1, 1, 0.5, {})
    with pytest.raises(
        ValueError,
        match=r"^the profile of c lacks the columns \['mapc'\]; pass the frame written by the pipeline "
        r"\(probing.PROFILE_COLUMNS plus 'cell' and 'test_accuracy'\)$",
    ):
        C.CellResult("c", "d", "m", "baseline", 0, 1, 1, 0.5, _frame(SHUFFLED).drop(columns="mapc"))
    with pytest.raises(TypeError, match=r"^CellResult.from_profile expects a Cell \(or an object with \.id"):
        C.CellResult.from_profile(object(), _frame(SHUFFLED))


def test_cell_result_reads_the_accuracy_from_the_one_row_that_has_it():
    frame = _frame(SHUFFLED, test_accuracy=[np.nan, np.nan, 0.7, np.nan, np.nan, np.nan])
    r = C.CellResult.from_profile("fashion-mnist-vgg6_narrow-baseline-s0-e8", frame)
    assert r.test_accuracy == 0.7
    assert (
        C.CellResult.from_profile(
            "fashion-mnist-vgg6_narrow-baseline-s0-e8", frame, test_accuracy=0.5
        ).test_accuracy
        == 0.5
    )


def test_cell_result_curve_defaults_and_dict():
    r = C.CellResult("c", "d", "m", "baseline", 3, 4, 8, 0.5, _frame(SHUFFLED, id_mean=range(6)))
    assert r.curve() == C.profile_curve(r.profile, "mapc", "knn")
    d = r.to_dict()
    assert {k: v for k, v in d.items() if k != "profile"} == {
        "cell_id": "c",
        "dataset": "d",
        "model": "m",
        "recipe": "baseline",
        "seed": 3,
        "epoch": 4,
        "epochs": 8,
        "test_accuracy": 0.5,
        "preset": "",
    }
    assert d["profile"][0] == {
        "probe": "linear",
        "neighbourhood": "perturbation",
        "depth": 4,
        "mapc": 9.0,
        "relative_depth": 1.0,
        "id_mean": 0,
    }
    assert len(d["profile"]) == len(SHUFFLED)


def test_curve_or_none_logs_why_it_skipped(caplog):
    frame = _frame(SHUFFLED)
    r = C.CellResult("c", "d", "m", "baseline", 0, 1, 1, 0.5, frame[frame["neighbourhood"] != "perturbation"])
    with caplog.at_level(logging.DEBUG, logger="crlm_bench.replication.claims.curves"):
        assert curves.curve_or_none(r, "mapc", "knn") is None
    (record,) = caplog.records
    assert record.getMessage() == (
        "c skipped for mapc/knn-input: the profile has 0 latent probes; the claims need at least two"
    )


def test_unique_keeps_the_first_of_each_cell_and_warns(caplog):
    a, b = cases.make_result(cases.PAPER_LIKE, seed=0), cases.make_result(cases.PAPER_LIKE, seed=1)
    duplicate = cases.make_result([0.05] * 10, seed=0)
    with caplog.at_level(logging.WARNING, logger="crlm_bench.replication.claims.curves"):
        assert curves.unique([a, duplicate, b]) == [a, b]
    (record,) = caplog.records
    assert record.getMessage() == (
        f"two results share the cell id {a.cell_id} (cells differing only in measurement or overrides); "
        "the claims use the first: evaluate one budget at a time"
    )
    assert curves.unique([a, duplicate, b])[0].profile is a.profile
    assert profile_shape.PROFILE_SHAPE.name == "profile-shape"


# ------------------------------------------------------------------------------------------
# a claim's call forms the intervals of the variant asked for; a verdict's own normalisation;
# a result's names and profile columns (pins added when the bootstrap stopped building frames)


def test_a_claim_forms_the_intervals_of_the_variant_it_was_asked_for():
    from crlm_bench.replication.claims.intervals import pool, with_intervals
    from tests.replication.test_intervals import TIGHT, with_points

    results = [with_points(cases.make_result(cases.plateau_then(0.05, 0.1, 1.0)), TIGHT)]
    claim = profile_shape.PROFILE_SHAPE
    point = claim(results, statistic="sff", input_row="perturbation", intervals=False)
    assert [v.interval for v in point] == [None] * len(point)
    got = claim(results, statistic="sff", input_row="perturbation")  # intervals by default
    variant = C.variant_name("sff", "perturbation")
    expected = with_intervals(
        claim.bounds, claim.measure, pool(results), point, "sff", "perturbation", variant
    )
    assert got == expected and all(v.interval is not None for v in got)
    assert [(v.interval, v.outcome, v.details) for v in got] == [
        (v.interval, v.outcome, v.details) for v in expected
    ]


def _verdict(**changes) -> C.Verdict:
    v = _one(_run("profile-shape", [cases.make_result(cases.plateau_then(0.05, 0.1, 1.0))]))
    fields = {f: getattr(v, f) for f in v.__dataclass_fields__}
    return C.Verdict(**{**fields, **changes})


@pytest.mark.parametrize("holds, outcome", [(True, "holds"), (False, "fails")])
def test_a_verdict_without_an_outcome_takes_its_point_verdict(holds, outcome):
    assert _verdict(holds=holds, outcome="").outcome == outcome


def test_a_verdict_refuses_an_unknown_outcome():
    message = f"Verdict.outcome must be one of {C.verdict.OUTCOMES}, got 'maybe'"
    with pytest.raises(ValueError, match="^" + __import__("re").escape(message) + "$"):
        _verdict(outcome="maybe")


def test_a_verdicts_interval_is_two_floats_with_nan_for_a_missing_end():
    v = _verdict(interval=(None, np.float32(2.5)))
    assert isinstance(v.interval, tuple) and math.isnan(v.interval[0]) and v.interval[1] == 2.5
    assert type(v.interval[1]) is float
    assert _verdict(interval=(1, 2)).interval == (1.0, 2.0) and _verdict(interval=None).interval is None
    assert _verdict(interval=(0.25, 2.5)).interval_text() == "[0.25, 2.5]"
    assert _verdict(interval=(None, None)).interval_text() == "—"
    assert _verdict(interval=None).interval_text() == "—"
    assert _verdict(interval=(None, 3.0)).interval_text() == "[n/a, 3]"


def test_a_result_from_a_profile_keeps_its_points_and_preset():
    frame = cases.make_profile(cases.plateau_then(0.05, 0.1, 1.0))
    points = pd.DataFrame({"point": [0]})
    cell = "fashion-mnist-resnet8_narrow-baseline-s0-e10"
    r = C.CellResult.from_profile(cell, frame, points=points, preset="authors")
    assert r.points is points and r.preset == "authors"
    plain = C.CellResult.from_profile(cell, frame)
    assert plain.points is None and plain.preset == ""


def test_profile_columns_are_float_arrays_and_give_the_default_curve():
    frame = cases.make_profile(cases.plateau_then(0.05, 0.1, 1.0))
    frame["relative_depth"] = frame["depth"]  # integers in the frame
    frame["mapc"] = frame["depth"] + 1
    columns = curves.ProfileColumns.of(frame)
    assert columns.relative_depth.dtype == np.float64 and columns.values["mapc"].dtype == np.float64
    assert columns.curve() == C.profile_curve(frame, "mapc", "knn") == columns.curve("mapc", "knn")


def test_profile_columns_take_new_values_and_keep_the_others():
    frame = cases.make_profile(cases.plateau_then(0.05, 0.1, 1.0))
    columns = curves.ProfileColumns.of(frame)
    doubled = columns.with_values({"mapc": 2 * columns.values["mapc"]})
    assert doubled.curve().values == tuple(2 * v for v in columns.curve().values)
    assert doubled.curve("sff").values == columns.curve("sff").values
    assert columns.curve().values == C.profile_curve(frame).values  # the original is unchanged
