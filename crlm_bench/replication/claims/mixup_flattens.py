"""Claim 5, mixup-flattens: for each model and dataset, mixup's plateau curvature is well below the
baseline's and below every other regulariser's (no regularisation, manifold mixup).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from crlm_bench.replication import paper
from crlm_bench.replication.claims.claim import Claim, register
from crlm_bench.replication.claims.curves import STATISTICS, CellResult, curve_or_none, final_trained
from crlm_bench.replication.claims.intervals import Bound, value_bound
from crlm_bench.replication.claims.statistics import mean, median, ratio
from crlm_bench.replication.claims.verdict import MAIN_VARIANT, Threshold, Verdict, fmt

RATIO_TO_BASELINE = Threshold(
    0.5,
    "<=",
    "the paper's mixup plateau (≈ 0.003–0.015) is ≈ 0.12× the baseline's (≈ 0.03–0.1); half "
    "leaves room for smaller networks",
)

#: The recipes mixup must also lie below, where the budget trained them.
OTHER_REGULARISERS = ("no_regularization", "manifold_mixup")
BELOW_OTHERS = Threshold(
    1,
    ">",
    "mixup flattens more than the other regularisers: the lowest of their plateaus over mixup's "
    "(∞ where the budget trained none) must exceed 1",
    "×",
)


def _below_others(v: Verdict) -> float:
    """The lowest other regulariser's plateau over mixup's (∞ without another regulariser)."""
    ratios = v.details["ratio_to_baseline"]
    others = [ratios[o] for o in OTHER_REGULARISERS if o in ratios]
    return min(others) / ratios["mixup"] if others else math.inf


def _paper(dataset: str, model: str, variant: str) -> tuple[float | None, str | None, dict]:
    regs = paper.REGULARISERS.get((dataset, model))
    if variant != MAIN_VARIANT or not regs:
        return None, None, {}
    base = regs["baseline"].plateau_typical
    value = regs["mixup"].plateau_typical / base
    source = paper.source("mapc_reg", "computed from the plateau ranges (geometric middles) read from")
    return value, source, {"paper_ratio_to_baseline": {k: v.plateau_typical / base for k, v in regs.items()}}


def measure(results: Sequence[CellResult], statistic: str, input_row: str, variant: str) -> list[Verdict]:
    """One verdict per model and dataset with a baseline and a mixup cell: the ratio of their median
    plateaus (means over seeds), and whether mixup lies below the other regularisers."""
    label = STATISTICS.get(statistic).label
    plateaus: dict[tuple[str, str], dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in final_trained(results):
        curve = curve_or_none(r, statistic, None)
        if curve is None or not curve.plateau:
            continue
        plateaus[(r.dataset, r.model)][r.recipe][r.cell_id] = median(curve.plateau)
    verdicts = []
    for (dataset, model), recipes in sorted(plateaus.items()):
        if "baseline" not in recipes or "mixup" not in recipes:
            continue
        typical = {recipe: mean(cells.values()) for recipe, cells in sorted(recipes.items())}
        to_baseline = {recipe: ratio(v, typical["baseline"]) for recipe, v in typical.items()}
        value = to_baseline["mixup"]
        others = [o for o in OTHER_REGULARISERS if o in typical]
        below = {o: typical["mixup"] < typical[o] for o in others}
        holds = RATIO_TO_BASELINE.check(value) and all(below.values())
        if others:
            others_text = "; " + ", ".join(f"{o} {fmt(to_baseline[o])}×" for o in others)
        else:
            others_text = "; no other regulariser"
        not_below = [o for o, b in below.items() if not b]
        explanation = (
            f"Mixup's median plateau {label} on {dataset}/{model} is {fmt(value)}× the baseline's "
            f"({RATIO_TO_BASELINE.text}){others_text}: {'holds' if holds else 'fails'}"
            + (f" (mixup not below {', '.join(not_below)})" if not_below else "")
            + "."
        )
        details = {
            "plateau_median": typical,
            "ratio_to_baseline": to_baseline,
            "below_other_recipes": below,
            "cells": {recipe: sorted(cells) for recipe, cells in recipes.items()},
        }
        if "manifold_mixup" in to_baseline:
            details["manifold_mixup_ratio_to_baseline"] = to_baseline["manifold_mixup"]
        paper = _paper(dataset, model, variant)
        verdicts.append(
            MIXUP_FLATTENS.verdict(
                group=f"{dataset}/{model}",
                value=value,
                threshold=(
                    f"{RATIO_TO_BASELINE.text} (and below {', '.join(OTHER_REGULARISERS)} where present)"
                ),
                threshold_value=RATIO_TO_BASELINE.value,
                holds=holds,
                explanation=explanation,
                variant=variant,
                details=details,
                paper=paper,
            )
        )
    return verdicts


MIXUP_FLATTENS = register(
    Claim(
        name="mixup-flattens",
        paper_claim="mixup-flattens",
        summary="Mixup gives flatter representations than the other regularisers.",
        statistic="mixup/baseline median plateau ratio",
        group_kind="recipe_set",
        thresholds={"ratio-to-baseline": RATIO_TO_BASELINE, "below-others": BELOW_OTHERS},
        measure=measure,
        bounds=(
            value_bound(RATIO_TO_BASELINE, log_scale=True, name="ratio-to-baseline"),
            Bound("below-others", BELOW_OTHERS, _below_others, log_scale=True),
        ),
    )
)
