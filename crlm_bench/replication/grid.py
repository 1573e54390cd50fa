"""Groups: the cells each claim test compares, formed from a budget's grid alone.

A group kind (:data:`~crlm_bench.replication.claims.GROUP_KINDS`) is a claim test's fixture:
``trained_cell`` (each trained network's final checkpoint), ``model_pair`` (a model's untrained
and baseline cells), ``dataset_models`` (a dataset's baseline models), ``checkpoint_run`` (the
checkpoints of one training run) and ``recipe_set`` (a model's recipes). Each claim says which kind
it is judged on (``Claim.group_kind``); :data:`~crlm_bench.replication.claims.CLAIM_GROUPS` lists
them. One more kind, ``attribution``, is no claim's: a cell under its default measurement and under
one measurement change (:meth:`Budget.attribution_cells`), the parameter of the attribution test
(:mod:`crlm_bench.replication.attribution`). :data:`TEST_KINDS` lists every kind.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from crlm_bench.experiment.cell import UNTRAINED, Cell
from crlm_bench.replication.budgets import Budget
from crlm_bench.replication.claims import (
    CLAIM_GROUPS,
    CLAIMS,
    GROUP_KINDS,
    CellResult,
    Claim,
    Verdict,
    evaluate_all,
)
from crlm_bench.replication.claims.intervals import pooled_id

__all__ = ["ATTRIBUTION_KIND", "TEST_KINDS", "Group", "evaluate_budget", "evaluate_group", "groups_of"]

#: The group kind of an attribution test: a cell under the default measurement and under a change.
ATTRIBUTION_KIND = "attribution"
#: Every kind of test parameter: the claims' group kinds and the attribution's.
TEST_KINDS = (*GROUP_KINDS, ATTRIBUTION_KIND)


@dataclass(frozen=True)
class Group:
    """Cells that one claim test compares, with a readable id (the pytest parameter id)."""

    id: str
    cells: tuple[Cell, ...]
    kind: str = ""


def _network(cell: Cell) -> tuple:
    """What a cell's seeds share: the network, its checkpoint and how it is measured. The epochs a
    run keeps besides its last (``save_at``) change no weight: the cpu budget's checkpoint series
    is one seed of a network whose other seeds keep only their last epoch."""
    return (dataclasses.replace(cell.training, seed=0, save_at=()), cell.at, cell.measurement)


def groups_of(budget: Budget) -> dict[str, list[Group]]:
    """The budget's cells arranged as each kind of claim test needs them (from the grid alone).

    A claim judges networks, not seeds: every group holds all seeds of its networks (the claims
    pool them, :func:`~crlm_bench.replication.claims.intervals.pool`), and a trained network's
    group is named by its seeds (``…-baseline-s0+1+2-e8``)."""
    final = [c for c in budget.cells if c.at == c.training.epochs]
    trained = [c for c in final if c.training.recipe != UNTRAINED]
    out: dict[str, list[Group]] = {name: [] for name in TEST_KINDS}
    networks: dict[tuple, list[Cell]] = defaultdict(list)
    for c in trained:
        networks[_network(c)].append(c)
    for cs in networks.values():
        name = cs[0].id if len(cs) == 1 else pooled_id(cs[0].id, [c.training.seed for c in cs])
        out["trained_cell"].append(Group(name, tuple(cs), "trained_cell"))
    by_model: dict[tuple[str, str], dict[str, list[Cell]]] = defaultdict(lambda: defaultdict(list))
    for c in final:
        by_model[(c.training.dataset, c.training.model)][c.training.recipe].append(c)
    for (dataset, model), recipes in by_model.items():
        if UNTRAINED in recipes and "baseline" in recipes:
            pair = (*recipes[UNTRAINED], *recipes["baseline"])
            out["model_pair"].append(Group(f"{dataset}-{model}-untrained-vs-baseline", pair, "model_pair"))
        if {"mixup", "baseline"} <= recipes.keys():
            compared = tuple(c for r, cs in recipes.items() if r != UNTRAINED for c in cs)
            out["recipe_set"].append(Group(f"{dataset}-{model}-mixup-vs-recipes", compared, "recipe_set"))
    by_dataset: dict[str, list[Cell]] = defaultdict(list)
    for c in trained:
        if c.training.recipe == "baseline":
            by_dataset[c.training.dataset].append(c)
    for dataset, cs in by_dataset.items():
        out["dataset_models"].append(Group(f"{dataset}-baseline-models", tuple(cs), "dataset_models"))
    for run in budget.checkpoint_runs:
        t = run[0].training
        run_id = f"{t.dataset}-{t.model}-{t.recipe}-s{t.seed}-checkpoints"
        out["checkpoint_run"].append(Group(run_id, tuple(run), "checkpoint_run"))
    out[ATTRIBUTION_KIND] = [
        Group(f"{cell.id}-{change}", (cell, changed), ATTRIBUTION_KIND)
        for change, cell, changed in budget.attribution_cells()
    ]
    return out


def evaluate_group(claim: Claim | str, group: Group, result: Callable[[Cell], CellResult]) -> list[Verdict]:
    """Every variant's verdicts of ``claim`` (a claim or its name) on ``group``; ``result(cell)``
    gives a cell's result."""
    name = claim.name if isinstance(claim, Claim) else CLAIMS.get(claim).name
    return evaluate_all([result(c) for c in group.cells], claims=[name])


def evaluate_budget(
    budget: Budget, result: Callable[[Cell], CellResult | None]
) -> tuple[list[Verdict], list[str]]:
    """The verdicts a full claims run would give, in its order, for the groups whose cells
    ``result`` can give (it returns None for a missing cell); and the groups left out."""
    verdicts, skipped = [], []
    groups = groups_of(budget)
    for claim, kind in CLAIM_GROUPS:
        for group in groups[kind]:
            if any(result(c) is None for c in group.cells):
                skipped.append(f"{claim} [{group.id}]")
                continue
            verdicts.extend(evaluate_group(claim, group, result))
    return verdicts, skipped
