"""Claim 3a, gap-tracks-accuracy across models: on each dataset, the curvature gap
N(last) − N(penultimate) (N the statistic over its mean over all probes: the NMAPC gap for MAPC)
of the trained baseline networks ranks them as their test accuracy does (Spearman ρ).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from crlm_bench.replication import paper
from crlm_bench.replication.claims.claim import Claim, register
from crlm_bench.replication.claims.curves import STATISTICS, CellResult, curve_or_none, final_trained
from crlm_bench.replication.claims.intervals import value_bound
from crlm_bench.replication.claims.statistics import mean, pearson, spearman
from crlm_bench.replication.claims.uncertainty import permutation_pvalue
from crlm_bench.replication.claims.verdict import MAIN_VARIANT, Threshold, Verdict, fmt

#: The paper's claim these verdicts are filed under (shared with the along-training part).
PAPER_CLAIM = "gap-tracks-accuracy"
SUMMARY = "The curvature gap between the last two probes follows test accuracy."

ACROSS_MODELS = Threshold(
    0.8,
    ">=",
    "the paper's points give Spearman 0.94 (CIFAR-10) and 1.0 (CIFAR-100); 0.8 still demands "
    "a strong monotone relation",
)
MIN_MODELS = Threshold(3, ">=", "a rank correlation of two points is ±1 by construction")


def not_evaluable_reason(n: int, needed: int, singular: str, plural: str) -> str:
    """``"only 2 checkpoints (needs ≥ 5)"``."""
    return f"only {n} {singular if n == 1 else plural} (needs ≥ {needed})"


def _paper(dataset: str, names: list[str], variant: str) -> tuple[float | None, str | None, dict]:
    corr = paper.GAP_ACCURACY_CORRELATION.get(dataset)
    if variant != MAIN_VARIANT or not corr or not all(paper.is_paper_cell(dataset, m) for m in names):
        return None, None, {}
    details = {
        "paper_pearson": corr["pearson"].value,
        "paper_points": {
            m: {"gap": p.gap, "accuracy_percent": p.accuracy_percent}
            for m in names
            if (p := paper.paper_point(dataset, m)) is not None
        },
    }
    return corr["spearman"].value, corr["spearman"].source, details


def measure(results: Sequence[CellResult], statistic: str, input_row: str, variant: str) -> list[Verdict]:
    """One verdict per dataset: Spearman ρ between the models' gaps and test accuracies (means over
    seeds), over the final checkpoints of the baseline recipe."""
    nlabel = STATISTICS.get(statistic).normalised_label
    per_dataset: dict[str, dict[str, list[tuple[float, float, str]]]] = defaultdict(lambda: defaultdict(list))
    for r in final_trained(results):
        if r.recipe != "baseline":
            continue
        curve = curve_or_none(r, statistic, input_row)
        if curve is None or not math.isfinite(r.test_accuracy):
            continue
        per_dataset[r.dataset][r.model].append((curve.gap, r.test_accuracy, r.cell_id))
    needed = int(MIN_MODELS.value)
    verdicts = []
    for dataset, models in sorted(per_dataset.items()):
        names = sorted(models)
        gaps = [mean(g for g, _, _ in models[m]) for m in names]
        accs = [mean(a for _, a, _ in models[m]) for m in names]
        enough = len(names) >= MIN_MODELS.value
        rho = spearman(gaps, accs) if enough else math.nan
        holds = ACROSS_MODELS.check(rho)
        if not enough:
            reason = not_evaluable_reason(
                len(names), needed, "trained baseline model", "trained baseline models"
            )
            explanation = f"Not evaluable: {reason} on {dataset}; train more models to test the claim."
        elif math.isnan(rho):
            explanation = (
                f"Not evaluable: the gaps or the accuracies of the {len(names)} models on {dataset} "
                "are all equal."
            )
        else:
            explanation = (
                f"Across {len(names)} baseline models on {dataset}, Spearman ρ between the {nlabel} gap "
                f"and test accuracy is {fmt(rho)} ({ACROSS_MODELS.text}): {'holds' if holds else 'fails'}."
            )
        details = {
            "models": {
                m: {"gap": g, "accuracy": a, "cells": [c for _, _, c in models[m]]}
                for m, g, a in zip(names, gaps, accs)
            },
            "n_models": len(names),
            "pearson": pearson(gaps, accs) if enough else math.nan,
        }
        paper = _paper(dataset, names, variant)
        verdicts.append(
            GAP_ACROSS_MODELS.verdict(
                group=dataset,
                value=rho,
                threshold=f"{ACROSS_MODELS.text} (over ≥ {needed} models)",
                threshold_value=ACROSS_MODELS.value,
                holds=holds,
                explanation=explanation,
                variant=variant,
                details=details,
                paper=paper,
            )
        )
    return verdicts


def _p_value(verdict: Verdict) -> Verdict:
    """The verdict with the exact permutation p-value of its ρ (one-sided, greater) in details."""
    models = verdict.details.get("models", {})
    gaps = [m["gap"] for m in models.values()]
    accs = [m["accuracy"] for m in models.values()]
    p = permutation_pvalue(gaps, accs, statistic="spearman", alternative="greater", seed=0)
    return replace(verdict, details={**verdict.details, "p_value": p})


GAP_ACROSS_MODELS = register(
    Claim(
        name="gap-across-models",
        paper_claim=PAPER_CLAIM,
        summary=SUMMARY,
        statistic="Spearman ρ(gap, accuracy) across models",
        group_kind="dataset_models",
        thresholds={"across-models": ACROSS_MODELS, "min-models": MIN_MODELS},
        measure=measure,
        bounds=(value_bound(ACROSS_MODELS, name="spearman"),),
        annotate=_p_value,
    )
)
