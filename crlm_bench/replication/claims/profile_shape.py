"""Claim 1, profile-shape: a trained network's curvature rises steeply from the input to the first
latent probe, stays on a plateau over the latent probes before the last two, and rises again at
the last probe. Judged on each trained network's final checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from crlm_bench.replication import paper
from crlm_bench.replication.claims.claim import Claim, register
from crlm_bench.replication.claims.curves import STATISTICS, CellResult, curve_or_none, final_trained
from crlm_bench.replication.claims.intervals import value_bound
from crlm_bench.replication.claims.statistics import ratio, span
from crlm_bench.replication.claims.verdict import MAIN_VARIANT, Threshold, Verdict, fmt

RISE = Threshold(
    10,
    ">=",
    "the paper's first latent probe is ≥ 90× its input (plateau ≥ 0.015 against 1.6e-4); ten "
    "times leaves an order of magnitude for small networks and budgets",
    "×",
)
PLATEAU_SPAN = Threshold(
    20,
    "<=",
    "the six networks' plateaus lie in one band of 0.015–0.25 (≈ 17×); a single network's spans "
    "less (ResNet18: 5.5×)",
    "×",
)
FINAL_RISE = Threshold(
    5,
    ">=",
    "the paper's last probe is 14× (ResNet18) to 42× (VGG16) its penultimate; 5× still "
    "separates a rise from noise",
    "×",
)
MARGIN = Threshold(
    1, ">=", "the worst of rise/10, 20/span and final-rise/5: ≥ 1 exactly when all three bounds hold"
)


def shape_statistics(input_value: float, latent: Sequence[float]) -> dict[str, float]:
    """The three shape ratios of a profile and their margin.

    ``rise`` = first latent / input, ``plateau_span`` = max/min over the latent probes before the
    last two, ``final_rise`` = last / penultimate, ``margin`` = min(rise/10, 20/span, final/5) with
    the thresholds :data:`RISE`, :data:`PLATEAU_SPAN`, :data:`FINAL_RISE` (≥ 1 exactly when all
    three hold).
    """
    rise = ratio(latent[0], input_value)
    plateau_span = span(latent[:-2])
    final_rise = ratio(latent[-1], latent[-2])
    parts = (
        rise / RISE.value,
        ratio(PLATEAU_SPAN.value, plateau_span),
        final_rise / FINAL_RISE.value,
    )
    margin = math.nan if any(math.isnan(p) for p in parts) else min(parts)
    return {"rise": rise, "plateau_span": plateau_span, "final_rise": final_rise, "margin": margin}


def _paper_margin(r: CellResult, variant: str) -> tuple[float | None, str | None, dict[str, float]]:
    """The margin of the paper's profile of the same network (figure common_mapc), where it has one."""
    prof = paper.paper_profile(r.dataset, r.model) if r.recipe == "baseline" else None
    if variant != MAIN_VARIANT or prof is None:
        return None, None, {}
    ps = {"rise": prof.rise, "plateau_span": prof.plateau_span, "final_rise": prof.final_rise}
    value = min(
        ps["rise"] / RISE.value, PLATEAU_SPAN.value / ps["plateau_span"], ps["final_rise"] / FINAL_RISE.value
    )
    source = paper.source("common_mapc", "computed from values read from")
    if not prof.read_per_probe:
        source += " (plateau from the band shared by the six networks: a lower bound)"
    return value, source, {f"paper_{k}": v for k, v in ps.items()}


def measure(results: Sequence[CellResult], statistic: str, input_row: str, variant: str) -> list[Verdict]:
    """One verdict per trained network (final checkpoint): steep rise, plateau, final rise."""
    label = STATISTICS.get(statistic).label
    verdicts = []
    for r in final_trained(results):
        curve = curve_or_none(r, statistic, input_row)
        if curve is None:
            continue
        s = shape_statistics(curve.input_value, curve.values)
        passed = {
            "rise": RISE.check(s["rise"]),
            "plateau_span": PLATEAU_SPAN.check(s["plateau_span"]),
            "final_rise": FINAL_RISE.check(s["final_rise"]),
        }
        holds = all(passed.values())
        if not curve.plateau:
            explanation = (
                f"{r.cell_id} has only {len(curve.values)} latent probes, so no plateau before the last "
                "two: not evaluable."
            )
        else:
            explanation = (
                f"{label} rises {fmt(s['rise'])}× from the input to the first latent probe "
                f"({RISE.text}), spans {fmt(s['plateau_span'])}× over the plateau "
                f"({PLATEAU_SPAN.text}) and rises {fmt(s['final_rise'])}× at the last probe "
                f"({FINAL_RISE.text}): the paper's shape {'holds' if holds else 'fails'}."
            )
        details = {
            **{k: s[k] for k in ("rise", "plateau_span", "final_rise")},
            **{f"{k}_holds": v for k, v in passed.items()},
            "input": curve.input_value,
            "first_latent": curve.first_latent,
            "plateau_min": min(curve.plateau, default=math.nan),
            "plateau_max": max(curve.plateau, default=math.nan),
            "penultimate": curve.penultimate,
            "last": curve.last,
            "latent_probes": len(curve.values),
            "test_accuracy": r.test_accuracy,
        }
        paper = _paper_margin(r, variant)
        verdicts.append(
            PROFILE_SHAPE.verdict(
                group=r.cell_id,
                value=s["margin"],
                threshold=(
                    f"{MARGIN.text} (rise {RISE.text}, span {PLATEAU_SPAN.text}, "
                    f"final rise {FINAL_RISE.text})"
                ),
                threshold_value=MARGIN.value,
                holds=holds,
                explanation=explanation,
                variant=variant,
                details=details,
                paper=paper,
            )
        )
    return verdicts


PROFILE_SHAPE = register(
    Claim(
        name="profile-shape",
        paper_claim="profile-shape",
        summary="Trained networks show a steep rise, a long plateau and a final rise of curvature.",
        statistic="shape margin min(rise/10, 20/span, final rise/5)",
        group_kind="trained_cell",
        thresholds={"rise": RISE, "plateau-span": PLATEAU_SPAN, "final-rise": FINAL_RISE, "margin": MARGIN},
        measure=measure,
        bounds=(value_bound(MARGIN, log_scale=True, name="margin"),),
    )
)
