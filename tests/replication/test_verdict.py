"""Thresholds, verdicts and claim objects (crlm_bench/replication/claims/verdict.py and claim.py) at
their edges: a statistic exactly at its threshold gets the documented verdict under each comparison,
NaN and None never meet a bound, JSON round trips keep every field, and a claim files its verdicts
under its paper claim. Written to kill the mutants of `bash scripts/mutation.sh`
(mutation/README.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crlm_bench.registry import Registry, UnknownNameError
from crlm_bench.replication.claims import claim as claim_module
from crlm_bench.replication.claims.claim import Claim, register
from crlm_bench.replication.claims.verdict import (
    MAIN_VARIANT,
    ROBUSTNESS_VARIANTS,
    Threshold,
    Verdict,
    fmt,
    jsonable,
    variant_name,
)
from tests.replication import claim_cases as cases

# ------------------------------------------------------------------------------------------
# Threshold.check: below, at and above the bound, for each comparison

#: comparison -> whether (below, at, above) the bound meet it.
AT_THE_BOUND = {
    ">=": (False, True, True),
    ">": (False, False, True),
    "<=": (True, True, False),
    "<": (True, False, False),
}


@pytest.mark.parametrize("comparison", AT_THE_BOUND)
@pytest.mark.parametrize("bound", [0.8, 0, -1, 10])
def test_threshold_check_below_at_and_above_the_bound(comparison, bound):
    t = Threshold(bound, comparison, "why")
    below, at, above = AT_THE_BOUND[comparison]
    assert t.check(bound - 0.001) is below
    assert t.check(bound) is at
    assert t.check(float(bound)) is at
    assert t.check(bound + 0.001) is above


@pytest.mark.parametrize("comparison", AT_THE_BOUND)
@pytest.mark.parametrize("x", [None, math.nan, np.float64("nan"), np.float32("nan")])
def test_nan_and_none_never_meet_a_threshold(comparison, x):
    assert Threshold(0.5, comparison, "why").check(x) is False


@pytest.mark.parametrize("comparison", AT_THE_BOUND)
def test_infinities_are_compared(comparison):
    t = Threshold(1, comparison, "why")
    assert t.check(math.inf) is AT_THE_BOUND[comparison][2]
    assert t.check(-math.inf) is AT_THE_BOUND[comparison][0]


def test_numpy_values_are_compared_and_give_a_bool():
    assert Threshold(0.8, ">=", "why").check(np.float64(0.8)) is True
    assert Threshold(0.8, ">", "why").check(np.float32(0.5)) is False
    assert Threshold(0.8, "<", "why").check(np.float64(0.5)) is True
    assert Threshold(3, ">=", "why").check(np.int64(3)) is True


@pytest.mark.parametrize("comparison", ["=>", "==", "=", "", " >=", "ge"])
def test_an_unknown_comparison_is_rejected(comparison):
    with pytest.raises(ValueError, match=r"Threshold.comparison must be one of >=, >, <=, < *, got"):
        Threshold(1, comparison, "why")


def test_threshold_text():
    assert Threshold(0.8, ">=", "why").text == "≥ 0.8"
    assert Threshold(20, "<=", "why", "×").text == "≤ 20×"
    assert Threshold(0, ">", "why").text == "> 0"


# ------------------------------------------------------------------------------------------
# jsonable and fmt


class _Named:
    def __str__(self) -> str:
        return "named"


#: (object, its JSON-able form)
JSONABLE = [
    ({1: 2.5, "a": None}, {"1": 2.5, "a": None}),
    ((1, 2), [1, 2]),
    ([(1, np.int64(2)), {"x": (3,)}], [[1, 2], {"x": [3]}]),
    (True, True),
    (np.bool_(False), False),
    (np.int64(3), 3),
    (np.float32(0.5), 0.5),
    (2.5, 2.5),
    (math.nan, None),
    (math.inf, None),
    (-np.inf, None),
    (None, None),
    ("text", "text"),
    (pd.Timestamp("2026-12-01T10:00:00"), "2026-12-01T10:00:00"),
    (Path("a/b"), "a/b"),
    (_Named(), "named"),
]


@pytest.mark.parametrize("obj, expected", JSONABLE)
def test_jsonable(obj, expected):
    got = jsonable(obj)
    assert got == expected
    assert type(got) is type(expected)
    json.dumps(got, allow_nan=False)


def test_jsonable_keeps_booleans_and_integers_apart():
    assert jsonable([True, 1, np.bool_(True), np.int32(1)]) == [True, 1, True, 1]
    assert [type(v) for v in jsonable([True, 1, np.bool_(True), np.int32(1), 1.0])] == [
        bool,
        int,
        bool,
        int,
        float,
    ]


#: (object, text)
FMT = [
    (None, "n/a"),
    (True, "True"),
    (np.bool_(False), "False"),
    (7, "7"),
    (np.int64(12345), "12345"),
    (math.nan, "n/a"),
    (np.float32("nan"), "n/a"),
    (math.inf, "∞"),
    (-math.inf, "−∞"),
    (0.123456, "0.123"),
    (1234.5, "1.23e+03"),
    (np.float64(2.0), "2"),
    ("text", "text"),
    (Path("a/b"), "a/b"),
]


@pytest.mark.parametrize("obj, text", FMT)
def test_fmt(obj, text):
    assert fmt(obj) == text


# ------------------------------------------------------------------------------------------
# Verdict: serialisation


def _verdict(**kw) -> Verdict:
    fields = dict(
        claim="profile-shape",
        group="cell",
        statistic="margin",
        value=1.25,
        threshold="≥ 1",
        threshold_value=1.0,
        holds=True,
        explanation="why",
        paper_value=2.0,
        paper_source="figure",
        details={"rise": np.float64(12.0), "span": (1, 2), "nan": math.nan},
        variant="sff/knn-input",
    )
    return Verdict(**{**fields, **kw})


def test_verdict_to_dict_and_back():
    v = _verdict()
    d = v.to_dict()
    assert d == {
        "claim": "profile-shape",
        "group": "cell",
        "statistic": "margin",
        "value": 1.25,
        "threshold": "≥ 1",
        "threshold_value": 1.0,
        "holds": True,
        "explanation": "why",
        "paper_value": 2.0,
        "paper_source": "figure",
        "details": {"rise": 12.0, "span": [1, 2], "nan": None},
        "variant": "sff/knn-input",
        "outcome": "holds",
        "interval": None,
    }
    back = Verdict.from_dict(json.loads(json.dumps(d)))
    assert back.to_dict() == d
    assert back.value == 1.25 and back.variant == "sff/knn-input" and back.key == v.key


def test_verdict_from_dict_reads_none_as_nan():
    d = _verdict(value=math.nan, threshold_value=math.inf).to_dict()
    assert d["value"] is None and d["threshold_value"] is None
    back = Verdict.from_dict(d)
    assert math.isnan(back.value) and math.isnan(back.threshold_value)
    assert not back.evaluable
    assert type(Verdict.from_dict({**d, "value": 3, "threshold_value": 1}).value) is float


def test_verdict_from_dict_takes_defaults_and_rejects_unknown_keys():
    d = _verdict().to_dict()
    for key in ("paper_value", "paper_source", "details", "variant"):
        del d[key]
    v = Verdict.from_dict(d)
    assert v.variant == MAIN_VARIANT and v.details == {} and v.paper_value is None
    with pytest.raises(ValueError, match=r"Verdict.from_dict: unknown keys \['extra', 'more'\]; expected \["):
        Verdict.from_dict({**d, "extra": 1, "more": 2})
    with pytest.raises(TypeError):
        Verdict.from_dict({"claim": "x"})  # missing fields


def test_variant_names():
    assert variant_name("mapc", "knn") == "mapc/knn-input" == MAIN_VARIANT
    assert ROBUSTNESS_VARIANTS == (
        "sff/knn-input",
        "mapc/perturbation-input",
        "undiluted/knn-input",
        "dimensionless/knn-input",
    )


# ------------------------------------------------------------------------------------------
# Claim: construction, registration, calling, filing a verdict


def _measure(results, statistic, input_row, variant):
    return [("measured", tuple(r.cell_id for r in results), statistic, input_row, variant)]


def _claim(**kw) -> Claim:
    fields = dict(
        name="test-claim",
        paper_claim="test-paper-claim",
        summary="a claim for tests",
        statistic="a statistic",
        group_kind="trained_cell",
        thresholds={"bound": Threshold(1, ">=", "why")},
        measure=_measure,
    )
    return Claim(**{**fields, **kw})


def test_claim_group_kind_is_checked():
    for kind in claim_module.GROUP_KINDS:
        assert _claim(group_kind=kind).group_kind == kind
    with pytest.raises(ValueError, match=r"claim 'test-claim': group_kind must be one of \('trained_cell'"):
        _claim(group_kind="cell")


def test_claim_call_passes_unique_results_and_the_variant():
    first = cases.make_result(cases.PAPER_LIKE, seed=0)
    duplicate = cases.make_result([0.05] * 10, seed=0)  # same cell id: dropped
    other = cases.make_result(cases.PAPER_LIKE, model="vgg6_narrow", seed=1)
    c = _claim()
    assert c([first, duplicate, other]) == [
        ("measured", (first.cell_id, other.cell_id), "mapc", "knn", "mapc/knn-input")
    ]
    assert c([other], statistic="sff", input_row="perturbation") == [
        ("measured", (other.cell_id,), "sff", "perturbation", "sff/perturbation-input")
    ]
    with pytest.raises(UnknownNameError):
        c([], statistic="nope")
    with pytest.raises(ValueError, match="unknown input row"):
        c([], input_row="nope")


def test_claim_verdict_files_under_the_paper_claim():
    c = _claim()
    v = c.verdict(
        group="g",
        value=1.5,
        threshold="≥ 1",
        threshold_value=1.0,
        holds=True,
        explanation="because",
        variant="sff/knn-input",
        details={"a": 1, "shared": "measured"},
        paper=(2.5, "figure 3", {"paper_a": 2, "shared": "paper"}),
    )
    assert v == Verdict(
        claim="test-paper-claim",
        group="g",
        statistic="a statistic",
        value=1.5,
        threshold="≥ 1",
        threshold_value=1.0,
        holds=True,
        explanation="because",
        paper_value=2.5,
        paper_source="figure 3",
        details={"a": 1, "shared": "paper", "paper_a": 2},
        variant="sff/knn-input",
    )
    assert list(v.details) == ["a", "shared", "paper_a"]  # the measured details first
    plain = c.verdict(
        group="g",
        value=0.5,
        threshold="≥ 1",
        threshold_value=1.0,
        holds=False,
        explanation="e",
        variant=MAIN_VARIANT,
        details={"a": 1},
    )
    assert (plain.paper_value, plain.paper_source, plain.details, plain.holds) == (
        None,
        None,
        {"a": 1},
        False,
    )


def test_claim_threshold_keys():
    t = Threshold(1, ">=", "why")
    assert _claim(thresholds={"bound": t, "other": t}).threshold_keys() == {
        "test-paper-claim/bound": t,
        "test-paper-claim/other": t,
    }


def test_register_adds_the_claim_under_its_name(monkeypatch):
    registry: Registry[Claim] = Registry("claim")
    monkeypatch.setattr(claim_module, "CLAIMS", registry)
    c = _claim()
    assert register(c) is c
    assert registry.names() == ["test-claim"] and registry.get("test-claim") is c
    with pytest.raises(ValueError, match="registered twice"):
        register(_claim())
