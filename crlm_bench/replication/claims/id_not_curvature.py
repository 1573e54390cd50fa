"""Claim 4, id-not-curvature: on each dataset, a layer's intrinsic dimension does not track its
curvature: across the latent probes of each trained network, |Spearman ρ(ID, curvature)| is
small, judged by its median over the networks.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from crlm_bench.replication.claims.claim import Claim, register
from crlm_bench.replication.claims.curves import STATISTICS, CellResult, curve_or_none, final_trained
from crlm_bench.replication.claims.intervals import value_bound
from crlm_bench.replication.claims.statistics import median, spearman
from crlm_bench.replication.claims.verdict import Threshold, Verdict, fmt

MEDIAN_ABS_RHO = Threshold(
    0.5,
    "<",
    "the paper finds no relation between ID and curvature; a median |ρ| below 0.5 rules out "
    "more than a moderate monotone relation",
)


def measure(results: Sequence[CellResult], statistic: str, input_row: str, variant: str) -> list[Verdict]:
    """One verdict per dataset over its trained networks' final checkpoints (the input row is not
    used: the same verdict under both input rows)."""
    label = STATISTICS.get(statistic).label
    per_dataset: dict[str, dict[str, float]] = defaultdict(dict)
    for r in final_trained(results):
        curve = curve_or_none(r, statistic, None)
        if curve is None:
            continue
        per_dataset[r.dataset][r.cell_id] = spearman(curve.ids, curve.values)
    verdicts = []
    for dataset, rhos in sorted(per_dataset.items()):
        finite = {c: abs(v) for c, v in rhos.items() if math.isfinite(v)}
        value = median(finite.values())
        holds = MEDIAN_ABS_RHO.check(value)
        if not finite:
            explanation = (
                f"Not evaluable: no trained network on {dataset} has ≥ 3 latent probes with varying ID "
                f"and {label}."
            )
        else:
            explanation = (
                f"Over {len(finite)} trained networks on {dataset}, the median |Spearman ρ| between ID and "
                f"{label} across the latent probes is {fmt(value)} ({MEDIAN_ABS_RHO.text}): "
                f"{'holds' if holds else 'fails'}."
            )
        details = {"rho": rhos, "n_cells": len(finite), "max_abs_rho": max(finite.values(), default=math.nan)}
        verdicts.append(
            ID_NOT_CURVATURE.verdict(
                group=dataset,
                value=value,
                threshold=MEDIAN_ABS_RHO.text,
                threshold_value=MEDIAN_ABS_RHO.value,
                holds=holds,
                explanation=explanation,
                variant=variant,
                details=details,
            )
        )
    return verdicts


ID_NOT_CURVATURE = register(
    Claim(
        name="id-not-curvature",
        paper_claim="id-not-curvature",
        summary="Intrinsic dimension does not track curvature.",
        statistic="median abs Spearman ρ(ID, curvature) over networks",
        group_kind="dataset_models",
        thresholds={"median-abs-rho": MEDIAN_ABS_RHO},
        measure=measure,
        bounds=(value_bound(MEDIAN_ABS_RHO, name="median-abs-rho"),),
    )
)
