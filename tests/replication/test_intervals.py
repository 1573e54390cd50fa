"""Every claim's verdict with its interval and outcome (``claims.intervals``): each claim once where
its outcome must be ``holds``, once ``fails`` and once ``inconclusive``; seeds pooled into one
network; determinism; no interval without per-point values.

The constructed results of ``claim_cases`` get per-point values here: each probe's points scatter
around the probe's MAPC (and ‖II‖ median) with a log-normal spread, rescaled so that their mean
(median) is the profile's value exactly. A tight spread leaves the point verdict's outcome; a wide
spread around a statistic that sits on its bound makes the data unable to decide.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from crlm_bench.replication import claims as C
from crlm_bench.replication.claims.intervals import RESAMPLES, pool, pooled_id
from tests.replication import claim_cases as cases

TIGHT, WIDE = 0.01, 0.4  # log-normal spread of the per-point values around each probe's
N_POINTS = 30


def with_points(result: C.CellResult, spread: float, *, n: int = N_POINTS, seed: int = 0) -> C.CellResult:
    """``result`` with ``n`` per-point values behind each profile row (mean MAPC and median ‖II‖
    equal to the row's)."""
    rng = np.random.default_rng([seed, result.seed, abs(hash(result.cell_id)) % 2**32])
    frames = []
    for row in result.profile.itertuples():
        w = rng.lognormal(0.0, spread, n)
        s = rng.lognormal(0.0, spread, n)
        frames.append(
            pd.DataFrame(
                {
                    "probe": row.probe,
                    "neighbourhood": row.neighbourhood,
                    "point": np.arange(n),
                    "index": np.arange(n),
                    "point_mapc": row.mapc * w / w.mean(),
                    "sff_norm": row.sff_norm_median * s / np.median(s),
                    "mean_curvature": math.nan,
                    "scalar_curvature": math.nan,
                    "radius": 1.0,
                    "resolution": math.nan,
                }
            )
        )
    return replace(result, points=pd.concat(frames, ignore_index=True))


def _models(lasts, accuracies):
    return [
        cases.make_result(cases.plateau_then(0.05, 0.1, last), model=m, accuracy=a)
        for m, a, last in zip(cases._MODELS, accuracies, lasts)
    ]


def _checkpoints(lasts, accuracies):
    return [
        cases.make_result(cases.plateau_then(0.05, 0.1, last), epoch=e, epochs=12, accuracy=a)
        for e, a, last in zip((2, 4, 6, 8, 10, 12), accuracies, lasts)
    ]


def _id_networks(networks):
    return [
        cases.make_result(latent, ids=ids, model=m)
        for (latent, ids, _), m in zip(networks, ("resnet8_narrow", "vgg6_narrow"))
    ]


_RISING_ACCURACY = [0.5 + 0.07 * i for i in range(6)]
_NEARLY_FLAT = [0.1 * (1 + 0.001 * i) for i in range(8)]

#: claim, statistic, and the results where the outcome must hold / fail / be inconclusive (the
#: inconclusive ones: a statistic on or near its bound, measured with the WIDE spread)
CASES: dict[str, tuple[str, str | None, dict[str, Callable[[], list[C.CellResult]]]]] = {
    "profile-shape": (
        "profile-shape",
        None,
        {
            "holds": lambda: [cases.make_result(cases.PAPER_LIKE)],
            "fails": lambda: [cases.make_result([0.05] * 10, input_knn=0.05)],
            # every shape statistic on its bound: margin exactly 1
            "inconclusive": lambda: [cases.make_result(cases.ON_THE_BOUNDS, input_knn=1.0)],
        },
    ),
    "untrained-flattens": (
        "untrained-flattens",
        None,
        {
            "holds": lambda: [
                cases.make_result(cases.PAPER_LIKE),
                cases.make_result(cases.UNTRAINED_COLLAPSE, recipe="untrained"),
            ],
            "fails": lambda: [
                cases.make_result(cases.PAPER_LIKE),
                cases.make_result(cases.PAPER_LIKE, recipe="untrained"),
            ],
            # the untrained last probe a hundredth of the trained one's: on the collapse bound
            "inconclusive": lambda: [
                cases.make_result(cases.PAPER_LIKE),
                cases.make_result(
                    cases.UNTRAINED_COLLAPSE[:-1] + [cases.PAPER_LIKE[-1] / 100], recipe="untrained"
                ),
            ],
        },
    ),
    "gap-across-models": (
        "gap-tracks-accuracy",
        "Spearman ρ(gap, accuracy) across models",
        {
            "holds": lambda: _models((1.0, 2.0, 3.0, 4.0), (0.80, 0.85, 0.88, 0.92)),
            "fails": lambda: _models((1.0, 2.0, 3.0, 4.0), (0.92, 0.88, 0.85, 0.80)),
            # the gaps in the accuracies' order, but within a few per cent of each other
            "inconclusive": lambda: _models((1.0, 1.02, 1.04, 1.06), (0.80, 0.85, 0.88, 0.92)),
        },
    ),
    "gap-along-training": (
        "gap-tracks-accuracy",
        "Pearson r(gap, accuracy) along training",
        {
            "holds": lambda: _checkpoints([1.0 + 0.2 * i for i in range(6)], _RISING_ACCURACY),
            "fails": lambda: _checkpoints([4.0 - 0.5 * i for i in range(6)], _RISING_ACCURACY),
            "inconclusive": lambda: _checkpoints([1.0 + 0.05 * i for i in range(6)], _RISING_ACCURACY),
        },
    ),
    "id-not-curvature": (
        "id-not-curvature",
        None,
        {
            "holds": lambda: _id_networks(cases.ID_CASES[1][1]),
            "fails": lambda: _id_networks(cases.ID_CASES[0][1]),
            # ID rises with depth and so does MAPC, by a per mille a probe: the order of the MAPC
            # profile is the points' to decide
            "inconclusive": lambda: _id_networks([(_NEARLY_FLAT, [5.0 + i for i in range(8)], {})] * 2),
        },
    ),
    "mixup-flattens": (
        "mixup-flattens",
        None,
        {
            "holds": lambda: cases.mixup_results(cases.MIXUP_CASES[0][1], {}),
            "fails": lambda: cases.mixup_results(cases.MIXUP_CASES[1][1], {}),
            # mixup's plateau half the baseline's: on the bound
            "inconclusive": lambda: cases.mixup_results({"baseline": 0.1, "mixup": 0.05}, {}),
        },
    ),
}

OUTCOME_CASES = [(name, expected) for name in CASES for expected in ("holds", "fails", "inconclusive")]


def verdict_of(name: str, results: list[C.CellResult], **kw) -> C.Verdict:
    claim, statistic, _ = CASES[name]
    verdicts = [v for c in C.select([claim]) for v in c(results, **kw)]
    if statistic is not None:
        verdicts = [v for v in verdicts if v.statistic == statistic]
    assert len(verdicts) == 1, [(v.group, v.statistic) for v in verdicts]
    return verdicts[0]


@pytest.mark.parametrize("name, expected", OUTCOME_CASES, ids=[f"{n}-{e}" for n, e in OUTCOME_CASES])
def test_outcome(name, expected):
    spread = WIDE if expected == "inconclusive" else TIGHT
    results = [with_points(r, spread) for r in CASES[name][2][expected]()]
    v = verdict_of(name, results)
    assert v.outcome == expected, (v.value, v.interval, v.details.get("bounds"), v.explanation)
    low, high = v.interval
    assert low <= high
    if expected != "inconclusive":
        # the point verdict agrees with its outcome, and its value lies in the interval
        assert v.holds is (expected == "holds")
        assert low - 1e-9 <= v.value <= high + 1e-9
        assert v.details["interval_method"].startswith(f"95 % percentile bootstrap, {RESAMPLES} resamples")


@pytest.mark.parametrize("name", list(CASES))
def test_without_points_the_outcome_is_the_point_verdict(name):
    for expected in ("holds", "fails"):
        v = verdict_of(name, CASES[name][2][expected]())
        assert v.interval is None and v.outcome == expected
        assert "interval_method" not in v.details


def test_equal_results_give_equal_intervals():
    results = [with_points(r, WIDE) for r in CASES["gap-across-models"][2]["inconclusive"]()]
    first = verdict_of("gap-across-models", results)
    again = verdict_of("gap-across-models", results)
    assert first.interval == again.interval and first.outcome == again.outcome


def test_the_interval_narrows_with_the_spread():
    widths = []
    for spread in (0.05, 0.2, 0.8):
        results = [with_points(r, spread) for r in CASES["profile-shape"][2]["holds"]()]
        low, high = verdict_of("profile-shape", results).interval
        widths.append(math.log(high / low))
    assert widths[0] < widths[1] < widths[2]


def test_several_bounds_each_carry_an_interval_and_all_must_hold():
    results = [with_points(r, TIGHT) for r in CASES["untrained-flattens"][2]["holds"]()]
    v = verdict_of("untrained-flattens", results)
    assert set(v.details["bounds"]) == {"collapse", "final-ratio"}
    assert all(b["outcome"] == "holds" for b in v.details["bounds"].values())
    # collapsed but rising: the collapse holds, the final ratio fails, so the outcome fails
    rising = [
        cases.make_result(cases.PAPER_LIKE),
        cases.make_result(cases.UNTRAINED_COLLAPSE[:-2] + [1e-5, 1e-3], recipe="untrained"),
    ]
    v = verdict_of("untrained-flattens", [with_points(r, TIGHT) for r in rising])
    bounds = v.details["bounds"]
    assert (bounds["collapse"]["outcome"], bounds["final-ratio"]["outcome"]) == ("holds", "fails")
    assert v.outcome == "fails"


# ------------------------------------------------------------------------------------------
# seeds


def _seeds(latents: list[list[float]]) -> list[C.CellResult]:
    return [with_points(cases.make_result(latent, seed=s), TIGHT) for s, latent in enumerate(latents)]


def test_seeds_of_one_network_are_pooled_into_one_verdict():
    results = _seeds([cases.PAPER_LIKE] * 3)
    v = verdict_of("profile-shape", results)
    assert (
        v.group
        == pooled_id(results[0].cell_id, [0, 1, 2])
        == "fashion-mnist-resnet8_narrow-baseline-s0+1+2-e10"
    )
    assert v.outcome == "holds" and "(3 per group)" in v.details["interval_method"]
    (pooled,) = pool(results)
    assert [r.seed for r in pooled.replicas] == [0, 1, 2]
    assert pooled.test_accuracy == pytest.approx(np.mean([r.test_accuracy for r in results]))


def test_seeds_that_disagree_are_inconclusive_however_tight_their_points():
    # one seed has the paper's shape, two are flat: the mean profile fails, but a resample of the
    # seeds can draw the shaped one three times (1 in 27, over the 2.5 % tail)
    results = _seeds([cases.PAPER_LIKE, [c * 1.01 for c in cases.PAPER_LIKE], cases.PAPER_LIKE[:-1] + [0.3]])
    v = verdict_of("profile-shape", results)
    assert v.outcome == "inconclusive", (v.value, v.interval)


def test_seeds_with_different_probes_are_judged_apart():
    a = cases.make_result(cases.PAPER_LIKE, seed=0)
    b = cases.make_result(cases.PAPER_LIKE[:-2] + [3.0], seed=1)  # one probe fewer
    assert [r.cell_id for r in pool([a, b])] == [a.cell_id, b.cell_id]


def test_a_verdict_that_is_not_evaluable_is_inconclusive_with_points():
    results = [with_points(r, TIGHT) for r in _models((1.0, 2.0), (0.80, 0.85))]
    v = verdict_of("gap-across-models", results)
    assert not v.holds and v.outcome == "inconclusive"


def test_correlations_carry_their_permutation_p_value():
    across = verdict_of("gap-across-models", CASES["gap-across-models"][2]["holds"]())
    assert across.details["p_value"] == pytest.approx(1 / 24)  # four models, exact: 1/4!
    reversed_ = verdict_of("gap-across-models", CASES["gap-across-models"][2]["fails"]())
    assert reversed_.details["p_value"] == pytest.approx(1.0)
    along = verdict_of("gap-along-training", CASES["gap-along-training"][2]["holds"]())
    assert along.details["p_value"] == pytest.approx(1 / 720)  # six checkpoints in order: 1/6!
    too_few = verdict_of("gap-across-models", _models((1.0, 2.0), (0.80, 0.85)))
    assert math.isnan(too_few.details["p_value"])
