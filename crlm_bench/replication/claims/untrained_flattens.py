"""Claim 2, untrained-flattens: at initialisation a network's curvature does not end in a final
rise; its last probe collapses against the trained network's. Judged on each model and dataset
with an untrained and a trained baseline cell (per seed where there are several).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from crlm_bench.replication import paper
from crlm_bench.replication.claims.claim import Claim, register
from crlm_bench.replication.claims.curves import STATISTICS, CellResult, curve_or_none, final_trained
from crlm_bench.replication.claims.intervals import detail_bound, value_bound
from crlm_bench.replication.claims.statistics import median, ratio
from crlm_bench.replication.claims.verdict import MAIN_VARIANT, Threshold, Verdict, fmt

LAST_COLLAPSE = Threshold(
    0.01,
    "<=",
    "at initialisation the paper's last probe is ≤ 1e-10 against ≈ 2–4 trained (≤ 1e-10 "
    "relative); a hundredth is lenient by eight orders and still a collapse",
)
FINAL_RATIO = Threshold(
    1,
    "<",
    "no final rise: the untrained last probe lies below the penultimate, as in every untrained "
    "network of figure mapc_rand_n_reg",
)


def _paper_collapse(pair: tuple[str, str], variant: str) -> tuple[float | None, str | None, dict]:
    pu, pt = paper.UNTRAINED_LAST_PROBE.get(pair), paper.paper_profile(*pair)
    if variant != MAIN_VARIANT or pu is None or pt is None:
        return None, None, {}
    source = (
        "computed from values read from the paper's figures mapc_rand_n_reg (untrained last "
        "probe) and common_mapc (trained last probe)"
    )
    return ratio(pu.value, pt.last), source, {}


def measure(results: Sequence[CellResult], statistic: str, input_row: str, variant: str) -> list[Verdict]:
    """One verdict per untrained cell with a trained baseline of the same model and dataset (the
    same seed where there is one, else the lowest seed)."""
    label = STATISTICS.get(statistic).label
    baselines: dict[tuple[str, str], dict[int, CellResult]] = defaultdict(dict)
    for r in final_trained(results):
        if r.recipe == "baseline":
            baselines[(r.dataset, r.model)].setdefault(r.seed, r)
    untrained = [r for r in results if not r.trained]
    seeds_per_pair: dict[tuple[str, str], set[int]] = defaultdict(set)
    for u in untrained:
        seeds_per_pair[(u.dataset, u.model)].add(u.seed)
    verdicts = []
    for u in untrained:
        pair = (u.dataset, u.model)
        if not baselines.get(pair):
            continue
        t = baselines[pair].get(u.seed) or baselines[pair][min(baselines[pair])]
        cu, ct = curve_or_none(u, statistic, None), curve_or_none(t, statistic, None)
        if cu is None or ct is None:
            continue
        collapse = ratio(cu.last, ct.last)
        final_ratio = ratio(cu.last, cu.penultimate)
        passed = {"collapse": LAST_COLLAPSE.check(collapse), "final_ratio": FINAL_RATIO.check(final_ratio)}
        holds = all(passed.values())
        group = f"{u.dataset}/{u.model}" + (f"/s{u.seed}" if len(seeds_per_pair[pair]) > 1 else "")
        explanation = (
            f"At initialisation the last probe's {label} is {fmt(cu.last)}, {fmt(collapse)}× the trained "
            f"network's {fmt(ct.last)} ({LAST_COLLAPSE.text}), and {fmt(final_ratio)}× the untrained "
            f"penultimate ({FINAL_RATIO.text}): {'holds' if holds else 'fails'}."
        )
        details = {
            "untrained_cell": u.cell_id,
            "trained_cell": t.cell_id,
            "untrained_last": cu.last,
            "untrained_penultimate": cu.penultimate,
            "trained_last": ct.last,
            "trained_penultimate": ct.penultimate,
            "collapse": collapse,
            "final_ratio": final_ratio,
            "collapse_holds": passed["collapse"],
            "final_ratio_holds": passed["final_ratio"],
            "untrained_plateau_median": median(cu.plateau),
            "trained_plateau_median": median(ct.plateau),
        }
        paper = _paper_collapse(pair, variant)
        verdicts.append(
            UNTRAINED_FLATTENS.verdict(
                group=group,
                value=collapse,
                threshold=f"{LAST_COLLAPSE.text} (and untrained last/penultimate {FINAL_RATIO.text})",
                threshold_value=LAST_COLLAPSE.value,
                holds=holds,
                explanation=explanation,
                variant=variant,
                details=details,
                paper=paper,
            )
        )
    return verdicts


UNTRAINED_FLATTENS = register(
    Claim(
        name="untrained-flattens",
        paper_claim="untrained-flattens",
        summary="Untrained networks do not: their last probe collapses.",
        statistic="untrained/trained last-probe ratio",
        group_kind="model_pair",
        thresholds={"last-collapse": LAST_COLLAPSE, "final-ratio": FINAL_RATIO},
        measure=measure,
        bounds=(
            value_bound(LAST_COLLAPSE, log_scale=True, name="collapse"),
            detail_bound("final-ratio", FINAL_RATIO, "final_ratio", log_scale=True),
        ),
    )
)
