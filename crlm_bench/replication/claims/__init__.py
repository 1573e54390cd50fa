"""The paper's claims as statistics over profiles, each with its thresholds and a verdict.

One module per claim (``docs/design.md``, "Where each statistic is computed"), each building one
:class:`~crlm_bench.replication.claims.claim.Claim` registered in :data:`CLAIMS`; :data:`ALL_CLAIMS`
lists them in the paper's order:

- :mod:`.profile_shape` — each trained network: a steep rise from the input to the first latent
  probe, a plateau over the latent probes before the last two, a final rise at the last probe;
- :mod:`.untrained_flattens` — each model and dataset: at initialisation the last probe
  collapses against the trained network's and does not rise over the penultimate;
- :mod:`.gap_across_models` and :mod:`.gap_along_training` — the two parts of
  gap-tracks-accuracy: the curvature gap follows test accuracy across a dataset's models
  (Spearman) and along one training run (Pearson, positive slope);
- :mod:`.id_not_curvature` — per dataset, intrinsic dimension does not track curvature across
  the latent probes (median |Spearman| over the trained networks);
- :mod:`.mixup_flattens` — each model and dataset: mixup's plateau is well below the baseline's
  and below every other regulariser's.

Shared: :mod:`.curves` (cell results and curves), :mod:`.statistics` (pure functions),
:mod:`.verdict` (thresholds and verdicts). Only final checkpoints enter the claims about trained
networks, except the along-training part, which uses every checkpoint of a run.

Robustness: every claim can be evaluated with the curvature statistic ``"mapc"`` (the paper's) or
``"sff"`` (the median norm of the second fundamental form, free of MAPC's dilution by the number
of normal directions), and with the input probe measured the paper's way (``"knn"``) or with
perturbation neighbourhoods (``"perturbation"``). :func:`evaluate_all` returns the main variant
(``mapc/knn-input``) and both robustness variants. Claims that use no input row give the same
verdict under both input rows by construction. Paper values are attached to verdicts of the main
variant only, where the dataset and model are the paper's and a figure gives the number.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from crlm_bench.replication.claims.claim import CLAIMS, GROUP_KINDS, Claim
from crlm_bench.replication.claims.curves import (
    STATISTICS,
    CellResult,
    CurvatureStatistic,
    Curve,
    ProfileError,
    profile_curve,
    unique,
)
from crlm_bench.replication.claims.gap_across_models import GAP_ACROSS_MODELS
from crlm_bench.replication.claims.gap_along_training import GAP_ALONG_TRAINING
from crlm_bench.replication.claims.id_not_curvature import ID_NOT_CURVATURE
from crlm_bench.replication.claims.mixup_flattens import MIXUP_FLATTENS
from crlm_bench.replication.claims.profile_shape import PROFILE_SHAPE, shape_statistics
from crlm_bench.replication.claims.statistics import (
    curvature_gap,
    mean,
    median,
    normalise,
    pearson,
    ratio,
    slope,
    span,
    spearman,
)
from crlm_bench.replication.claims.untrained_flattens import UNTRAINED_FLATTENS
from crlm_bench.replication.claims.verdict import (
    INPUT_ROWS,
    MAIN_VARIANT,
    ROBUSTNESS_VARIANTS,
    VARIANTS,
    Threshold,
    Verdict,
    fmt,
    jsonable,
    variant_name,
)

__all__ = [
    "ALL_CLAIMS",
    "CLAIMS",
    "CLAIM_GROUPS",
    "GROUP_KINDS",
    "INPUT_ROWS",
    "MAIN_VARIANT",
    "PAPER_ORDER",
    "ROBUSTNESS_VARIANTS",
    "STATISTICS",
    "THRESHOLDS",
    "VARIANTS",
    "CellResult",
    "Claim",
    "Curve",
    "CurvatureStatistic",
    "ProfileError",
    "Threshold",
    "Verdict",
    "curvature_gap",
    "evaluate",
    "evaluate_all",
    "fmt",
    "jsonable",
    "mean",
    "median",
    "normalise",
    "ordered",
    "pearson",
    "profile_curve",
    "ratio",
    "select",
    "shape_statistics",
    "slope",
    "span",
    "spearman",
    "summary",
    "variant_name",
]

#: Every claim in the paper's order (the order of reports and of every evaluation).
ALL_CLAIMS: tuple[Claim, ...] = (
    PROFILE_SHAPE,
    UNTRAINED_FLATTENS,
    GAP_ACROSS_MODELS,
    GAP_ALONG_TRAINING,
    ID_NOT_CURVATURE,
    MIXUP_FLATTENS,
)
if {c.name for c in ALL_CLAIMS} != set(CLAIMS.names()):  # a claim registered but not listed here
    raise RuntimeError("crlm_bench.replication.claims.ALL_CLAIMS must list every registered claim")

#: The paper's claims in its order: the names verdicts are filed under.
PAPER_ORDER: tuple[str, ...] = tuple(dict.fromkeys(c.paper_claim for c in ALL_CLAIMS))

#: (claim name, group kind) of every claim test, in the paper's order.
CLAIM_GROUPS: tuple[tuple[str, str], ...] = tuple((c.name, c.group_kind) for c in ALL_CLAIMS)

#: Every threshold of the claims under its report name, each with its reason.
THRESHOLDS = {key: t for c in ALL_CLAIMS for key, t in c.threshold_keys().items()}


def select(names: Iterable[str] | None = None) -> list[Claim]:
    """The claims named (a claim name, or a paper claim for all its parts), or all, in paper order."""
    if names is None:
        return list(ALL_CLAIMS)
    chosen: list[Claim] = []
    for name in names:
        parts = [c for c in ALL_CLAIMS if c.paper_claim == name] if name in PAPER_ORDER else []
        for claim in parts or [CLAIMS.get(name)]:  # CLAIMS.get raises with the known names
            if claim not in chosen:
                chosen.append(claim)
    return chosen


def summary(paper_claim: str) -> str:
    """The one-sentence statement of a paper claim, for reports ("" for an unknown one)."""
    return next((c.summary for c in ALL_CLAIMS if c.paper_claim == paper_claim), "")


def ordered(paper_claims: Iterable[str]) -> list[str]:
    """Paper claim names in the paper's order, unknown ones after them in their own order."""
    names = list(dict.fromkeys(paper_claims))
    return [n for n in PAPER_ORDER if n in names] + [n for n in names if n not in PAPER_ORDER]


def evaluate(
    results: Sequence[CellResult],
    *,
    statistic: str = "mapc",
    input_row: str = "knn",
    claims: Iterable[str] | None = None,
) -> list[Verdict]:
    """Every claim's verdicts (or those of ``claims``) for one variant."""
    results = unique(results)
    return [v for c in select(claims) for v in c(results, statistic=statistic, input_row=input_row)]


def evaluate_all(
    results: Sequence[CellResult],
    *,
    claims: Iterable[str] | None = None,
    variants: Sequence[tuple[str, str]] = VARIANTS,
) -> list[Verdict]:
    """Every claim's verdicts under the main variant and the robustness variants, claim by claim."""
    results = unique(results)
    return [
        v
        for c in select(claims)
        for statistic, input_row in variants
        for v in c(results, statistic=statistic, input_row=input_row)
    ]
