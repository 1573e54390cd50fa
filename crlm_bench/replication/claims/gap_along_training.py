"""Claim 3b, gap-tracks-accuracy along training: along the saved checkpoints of one training run,
the curvature gap follows test accuracy (Pearson r) and grows with it (positive slope).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from crlm_bench.replication import paper
from crlm_bench.replication.claims.claim import Claim, register
from crlm_bench.replication.claims.curves import STATISTICS, CellResult, curve_or_none
from crlm_bench.replication.claims.gap_across_models import PAPER_CLAIM, SUMMARY, not_evaluable_reason
from crlm_bench.replication.claims.intervals import detail_bound, value_bound
from crlm_bench.replication.claims.statistics import mean, pearson, slope
from crlm_bench.replication.claims.uncertainty import permutation_pvalue
from crlm_bench.replication.claims.verdict import MAIN_VARIANT, Threshold, Verdict, fmt

ALONG_TRAINING = Threshold(
    0.9,
    ">=",
    "the paper's checkpoints give Pearson 0.97–0.99 per model; 0.9 allows noisier small-budget profiles",
)
MIN_CHECKPOINTS = Threshold(
    5, ">=", "a Pearson r of fewer points is too easily high (the paper has 8–9 per model)"
)
SLOPE = Threshold(
    0, ">", "the gap must grow with accuracy (the paper's slopes are 0.33–1.41 gap per accuracy point)"
)


def _paper(dataset: str, model: str, recipe: str, variant: str) -> tuple[float | None, str | None, dict]:
    wanted = (dataset, recipe) == ("cifar10", "baseline") and model in paper.CHECKPOINT_SLOPE
    if variant != MAIN_VARIANT or not wanted:
        return None, None, {}
    low, high = paper.CHECKPOINT_PEARSON_RANGE
    source = f"{low.source}; range {low.value:g}–{high.value:g} over the models, middle shown"
    details = {"paper_slope_per_accuracy_point": paper.CHECKPOINT_SLOPE[model].value}
    return 0.5 * (low.value + high.value), source, details


def measure(results: Sequence[CellResult], statistic: str, input_row: str, variant: str) -> list[Verdict]:
    """One verdict per training run with two or more checkpoints: Pearson r between the gap and
    test accuracy along the checkpoints, and the slope in gap per accuracy point."""
    nlabel = STATISTICS.get(statistic).normalised_label
    runs: dict[tuple, dict[int, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        if not r.trained:
            continue
        curve = curve_or_none(r, statistic, input_row)
        if curve is None or not math.isfinite(r.test_accuracy):
            continue
        runs[r.run][r.epoch].append((curve.gap, r.test_accuracy))
    needed = int(MIN_CHECKPOINTS.value)
    verdicts = []
    for run, by_epoch in sorted(runs.items()):
        if len(by_epoch) < 2:  # a single checkpoint: no group along training
            continue
        dataset, model, recipe, seed, epochs = run
        epochs_sorted = sorted(by_epoch)
        gaps = [mean(g for g, _ in by_epoch[e]) for e in epochs_sorted]
        accs = [mean(a for _, a in by_epoch[e]) for e in epochs_sorted]
        enough = len(epochs_sorted) >= MIN_CHECKPOINTS.value
        r_value = pearson(accs, gaps) if enough else math.nan
        gap_slope = slope([100 * a for a in accs], gaps) if enough else math.nan
        holds = ALONG_TRAINING.check(r_value) and SLOPE.check(gap_slope)
        group = f"{dataset}/{model}/{recipe}/s{seed}"
        if not enough:
            reason = not_evaluable_reason(len(epochs_sorted), needed, "checkpoint", "checkpoints")
            explanation = f"Not evaluable: {reason} of {group}; save more epochs (Training.save_at)."
        elif math.isnan(r_value):
            explanation = (
                f"Not evaluable: the gaps or the accuracies of the checkpoints of {group} are all equal."
            )
        else:
            explanation = (
                f"Along {len(epochs_sorted)} checkpoints of {group}, Pearson r between the {nlabel} gap and "
                f"test accuracy is {fmt(r_value)} ({ALONG_TRAINING.text}) with slope {fmt(gap_slope)} per "
                f"accuracy point ({SLOPE.text}): {'holds' if holds else 'fails'}."
            )
        details = {
            "checkpoints": {str(e): {"gap": g, "accuracy": a} for e, g, a in zip(epochs_sorted, gaps, accs)},
            "n_checkpoints": len(epochs_sorted),
            "slope_per_accuracy_point": gap_slope,
            "slope_holds": SLOPE.check(gap_slope),
            "epochs": epochs,
        }
        paper = _paper(dataset, model, recipe, variant)
        verdicts.append(
            GAP_ALONG_TRAINING.verdict(
                group=group,
                value=r_value,
                threshold=f"{ALONG_TRAINING.text} with slope {SLOPE.text} (over ≥ {needed} checkpoints)",
                threshold_value=ALONG_TRAINING.value,
                holds=holds,
                explanation=explanation,
                variant=variant,
                details=details,
                paper=paper,
            )
        )
    return verdicts


def _p_value(verdict: Verdict) -> Verdict:
    """The verdict with the permutation p-value of its r (one-sided, greater) in details."""
    points = verdict.details.get("checkpoints", {}).values()
    gaps = [c["gap"] for c in points]
    accs = [c["accuracy"] for c in points]
    p = permutation_pvalue(gaps, accs, statistic="pearson", alternative="greater", seed=0)
    return replace(verdict, details={**verdict.details, "p_value": p})


GAP_ALONG_TRAINING = register(
    Claim(
        name="gap-along-training",
        paper_claim=PAPER_CLAIM,
        summary=SUMMARY,
        statistic="Pearson r(gap, accuracy) along training",
        group_kind="checkpoint_run",
        thresholds={"along-training": ALONG_TRAINING, "min-checkpoints": MIN_CHECKPOINTS, "slope": SLOPE},
        measure=measure,
        annotate=_p_value,
        bounds=(
            value_bound(ALONG_TRAINING, name="pearson"),
            detail_bound("slope", SLOPE, "slope_per_accuracy_point"),
        ),
    )
)
