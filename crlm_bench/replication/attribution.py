"""Attribution: which measurement choice decides a verdict.

A budget names measurement changes (``Budget.changes``, each one of
:data:`~crlm_bench.experiment.cell.MEASUREMENT_CHANGES`: float32 fits, one deviation of the
authors' code, or the whole ``authors`` preset). Every claim is evaluated again on the seed-0
cells of its groups, once under the faithful default and once under each change, so that a change
is compared with the same seed measured the default way, not with the pooled seeds of the main
verdict. Those verdicts carry the claim group's id and the variant :func:`attribution_variant`
(``s0 default``, ``s0 authors``); :func:`flips` says which changes turn the seed-0 outcome.

Demonstrations (``Budget.demonstrations``) are cells outside every claim, measured under the
default and each of ``Budget.demonstration_changes`` to show a mechanism on real data (the
authors' collapse of an untrained deep VGG).

:func:`unflagged_collapses` is what the attribution tests assert on every changed cell: a probe
whose MAPC a change makes collapse (a millionth of the default's or less) must carry the numerical
audit's ``unresolved`` flag; the collapse is then the fit's arithmetic, and the report can say so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import pandas as pd

from crlm_bench.experiment.cell import Cell
from crlm_bench.replication.budgets import ATTRIBUTION_SEED, Budget
from crlm_bench.replication.claims import CLAIM_GROUPS, VARIANTS, CellResult, Verdict, evaluate_all
from crlm_bench.replication.claims.verdict import OUTCOME_MARKS
from crlm_bench.replication.grid import groups_of

__all__ = [
    "COLLAPSE",
    "collapsed_probes",
    "attribution_variant",
    "evaluate_attribution",
    "flips",
    "unflagged_collapses",
]

#: A probe's MAPC has collapsed under a change when it is at most this fraction of the default's:
#: six orders of magnitude, far beyond what sampling moves (the seeds' intervals span < 10×) and
#: far above the ~1e-13 relative floor a float32 fit leaves once pinv cuts the quadratic terms.
COLLAPSE = 1e-6


def attribution_variant(change: str) -> str:
    """The variant name of a seed-0 attribution verdict: ``s0 default`` or ``s0 authors``."""
    return f"s{ATTRIBUTION_SEED} {change or 'default'}"


def evaluate_attribution(budget: Budget, result: Callable[[Cell], CellResult | None]) -> list[Verdict]:
    """Every claim's main-variant verdicts on the seed-0 cells of its groups, under the default
    measurement and under each of ``budget.changes``; ``result(cell)`` gives a stored cell's
    result or None. A group whose cells are not all stored under a change is left out for that
    change. Each verdict is named by its claim group's main verdict (``group``) and by
    :func:`attribution_variant` (``variant``)."""
    if not budget.changes:
        return []
    out: list[Verdict] = []
    groups = groups_of(budget)
    main_variant = [VARIANTS[0]]
    for claim, kind in CLAIM_GROUPS:
        for group in groups[kind]:
            seed0 = [c for c in group.cells if c.training.seed == ATTRIBUTION_SEED]
            if not seed0:
                continue
            # a trained network's verdict is named by its pooled group (…-s0+1+2-e8); the other
            # claims name a group by what its seeds share, the same for one seed as for all
            name = group.id if kind == "trained_cell" else None
            for change in ("", *budget.changes):
                found = [result(c.changed(change)) for c in seed0]
                if any(r is None for r in found):
                    continue
                for v in evaluate_all(found, claims=[claim], variants=main_variant):
                    out.append(
                        dataclasses.replace(v, group=name or v.group, variant=attribution_variant(change))
                    )
    return out


def flips(verdict: Verdict, verdicts: Sequence[Verdict]) -> list[str]:
    """The changes whose seed-0 outcome differs from the seed-0 default's for ``verdict``'s test
    (claim, group, statistic): e.g. ``["authors ✓"]``; [] when none does or none was measured."""
    same = {v.variant: v for v in verdicts if v.key == verdict.key}
    default = same.get(attribution_variant(""))
    if default is None:
        return []
    prefix = attribution_variant("")[: -len("default")]
    return [
        f"{name[len(prefix) :]} {OUTCOME_MARKS[v.outcome]}"
        for name, v in same.items()
        if name.startswith(prefix) and name != default.variant and v.outcome != default.outcome
    ]


def _latent_pairs(default: pd.DataFrame, changed: pd.DataFrame) -> pd.DataFrame:
    if "unresolved" not in changed.columns:
        raise ValueError("the changed profile has no 'unresolved' column: measure it again with this version")
    latent = [frame[frame["depth"] > 0] for frame in (default, changed)]
    both = latent[0].merge(latent[1], on="probe", suffixes=("_default", "_changed"))
    base, now = both["mapc_default"].astype(float), both["mapc_changed"].astype(float)
    return both[(base > 0) & (now <= COLLAPSE * base)]


def collapsed_probes(default: pd.DataFrame, changed: pd.DataFrame) -> int:
    """How many latent probes' MAPC a change collapses (at most :data:`COLLAPSE` of the default's)."""
    return len(_latent_pairs(default, changed))


def unflagged_collapses(default: pd.DataFrame, changed: pd.DataFrame) -> list[str]:
    """The probes whose MAPC has collapsed under a change (at most :data:`COLLAPSE` of the default
    measurement's, on a probe where the default's is positive) without the changed profile's
    ``unresolved`` flag: what the numerical audit failed to catch ([] when it caught them all).
    Latent probes only, matched by name: at the input a change of neighbourhoods changes the
    manifold itself (the authors' toggled singular values give neighbours affine in the toggles,
    a flat patch whose MAPC is rounding), so a drop there is geometry, not a collapse."""
    return [
        f"{row['probe']}: MAPC {row['mapc_changed']:.3g} under the change, "
        f"{row['mapc_default']:.3g} by default, not flagged"
        for _, row in _latent_pairs(default, changed).iterrows()
        if not bool(row["unresolved_changed"])
    ]
