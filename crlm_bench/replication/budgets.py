"""Budgets: named grids of cells with their measurement sizes, from seconds (smoke) to the paper's
GPU hours (paper).

- ``smoke``: synthetic images, two tiny networks, one epoch (the checkpoint run: five), a few
  points, 3 toggles — seconds; for testing the machinery only (its verdicts mean nothing). No
  attribution: measuring its 12 cells again under a change cost the test suite 6 minutes.
- ``cpu``: real Fashion-MNIST, four small networks (two ResNets, two VGGs), the baseline and
  untrained on each, the recipe comparison (no_regularization, mixup, manifold_mixup) on one,
  checkpoints of one run at five epochs; three seeds of every baseline and untrained network;
  networks trained for 6 epochs on the first 20 000 of the 60 000 training images; 200 points with 127
  neighbours and 7 toggles, TwoNN over 3 runs of 2000; the 15 seed-0 claim cells measured again
  under each of :data:`ATTRIBUTION_CHANGES` (float32 fits, the five deviations of the authors' code
  one at a time, their points from the augmented training images, the ``authors`` preset), and an
  untrained VGG16 (100 points) under the default, float32 alone, ``unscaled_fit`` alone and
  ``authors`` (the attribution). About 40 minutes on a 2-core CPU at the speed of the
  README's reference timing, half as long again when the host is slow (README, "Costs").
- ``paper``: CIFAR-10 and CIFAR-100 × the six paper models × baseline and untrained, the recipe
  comparison on ResNet50, the checkpoints of ResNet18's run; 200 epochs, 5000 points, 1023
  neighbours, 10 TwoNN runs of 5000; every seed-0 claim cell measured again under each of
  :data:`ATTRIBUTION_CHANGES` and CIFAR-10's untrained VGG16 under float32 alone and
  ``unscaled_fit`` alone (the attribution: no training; the changes share the default's TwoNN
  and, but for the neighbourhoods, its activations, except the augmented points and the preset,
  which share theirs; its GPU cost is not yet measured).

Which cells each claim test compares is :mod:`crlm_bench.replication.grid`'s business.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from crlm_bench.experiment.cell import UNTRAINED, Cell, Measurement, Training
from crlm_bench.registry import Registry

__all__ = [
    "ATTRIBUTION_CHANGES",
    "ATTRIBUTION_SEED",
    "BUDGETS",
    "CPU_EPOCHS",
    "CPU_OVERRIDES",
    "CPU_BUDGET",
    "DEFAULT_BUDGET",
    "MEASUREMENTS",
    "SMOKE_BUDGET",
    "Budget",
    "budget_names",
    "get_budget",
]

#: The paper's grid: the budget of a claims session or report that names none.
DEFAULT_BUDGET = "paper"
#: The grid a 2-core CPU computes in the main job's time (what to suggest where there is no GPU).
CPU_BUDGET = "cpu"
#: The machinery in minutes: every claim reaches a verdict on tiny cells.
SMOKE_BUDGET = "smoke"

#: Measurement sizes of each budget.
MEASUREMENTS: dict[str, Measurement] = {
    SMOKE_BUDGET: Measurement(points=8, toggles=3, id_runs=2, id_samples=128),
    CPU_BUDGET: Measurement(points=200, toggles=7, id_runs=3, id_samples=2000),
    DEFAULT_BUDGET: Measurement(),
}


@dataclass(frozen=True)
class Budget:
    """A named grid: the cells to measure, and which of them form a checkpoint series.

    ``caveat`` is what a reader must know before reading the budget's verdicts (the top of its
    report): how far its conditions are from the paper's."""

    name: str
    description: str
    cells: tuple[Cell, ...]
    checkpoint_runs: tuple[tuple[Cell, ...], ...] = field(default=())
    caveat: str = ""
    #: measurement changes (:data:`~crlm_bench.experiment.cell.MEASUREMENT_CHANGES`) under which
    #: every claim is evaluated again on the seed-0 cells of its groups: the report's attribution
    changes: tuple[str, ...] = ()
    #: cells measured beside the claims to show a mechanism (the report's attribution section),
    #: under the default measurement and under each of ``demonstration_changes``
    demonstrations: tuple[Cell, ...] = ()
    demonstration_changes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for change in (*self.changes, *self.demonstration_changes):
            Measurement().changed(change)  # an unknown change: ValueError naming the known ones

    def claim_cells(self) -> tuple[Cell, ...]:
        """The cells the claims compare (each once), in grid order."""
        return _unique((*self.cells, *(c for run in self.checkpoint_runs for c in run)))

    def attribution_cells(self) -> tuple[tuple[str, Cell, Cell], ...]:
        """(change, default cell, changed cell) for every measurement change the budget compares:
        each seed-0 claim cell under each of :attr:`changes`, each demonstration under each of
        :attr:`demonstration_changes`."""
        out = [
            (change, cell, cell.changed(change))
            for change in self.changes
            for cell in self.claim_cells()
            if cell.training.seed == ATTRIBUTION_SEED
        ]
        out += [
            (change, cell, cell.changed(change))
            for cell in self.demonstrations
            for change in self.demonstration_changes
        ]
        # a demonstration may be a claim cell (paper: the untrained VGG16): each pair once
        return tuple(
            {(change, changed.key): (change, cell, changed) for change, cell, changed in out}.values()
        )

    def all_cells(self) -> tuple[Cell, ...]:
        """Every cell the budget measures: the claims', the demonstrations' and the changed ones."""
        changed = (c for _, _, c in self.attribution_cells())
        return _unique((*self.claim_cells(), *self.demonstrations, *changed))


def _unique(cells) -> tuple[Cell, ...]:
    seen, out = set(), []
    for cell in cells:
        if cell.key not in seen:
            seen.add(cell.key)
            out.append(cell)
    return tuple(out)


#: The changes every claim is evaluated again under (the attribution): the fits' precision alone,
#: each deviation of the ``authors`` preset alone, its points from the augmented training images
#: alone (``train_augmented``: a second set of points, forward passes and fits per cell, measured
#: together with the preset, which has the same points and TwoNN), and the preset.
ATTRIBUTION_CHANGES = (
    "float32",
    "svd_fit",
    "unscaled_fit",
    "full_dim_zero",
    "point_among_neighbours",
    "authors_neighbourhoods",
    "train_augmented",
    "authors",
)

#: The seed whose cells an attribution measures again under each change (one seed: the changes
#: cost a profile per cell; the default's seed-0 verdict is formed beside them to compare like
#: with like).
ATTRIBUTION_SEED = 0


BUDGETS: Registry[Budget] = Registry("budget")


def _cells(
    datasets, models, recipes, *, epochs, measurement: Measurement, overrides=(), save_at=(), seeds=(0,)
) -> list[Cell]:
    """One cell per dataset, model, recipe and seed (in that order, the seeds innermost)."""
    out = []
    for dataset in datasets:
        for model in models:
            for recipe in recipes:
                for seed in seeds:
                    if recipe == UNTRAINED:
                        training = Training(dataset, model, UNTRAINED, seed=seed, overrides=overrides)
                    else:
                        training = Training(
                            dataset,
                            model,
                            recipe,
                            seed=seed,
                            epochs=epochs,
                            save_at=save_at,
                            overrides=overrides,
                        )
                    out.append(Cell(training, measurement=measurement))
    return out


def _checkpoints(cell: Cell, epochs: tuple[int, ...]) -> tuple[Cell, ...]:
    return tuple(Cell(cell.training, at=e, measurement=cell.measurement) for e in epochs)


def _smoke() -> Budget:
    m = MEASUREMENTS[SMOKE_BUDGET]
    over = (("batch_size", 64),)
    base = _cells(
        ["synthetic"],
        ["vgg6_narrow", "resnet8_narrow"],
        ["baseline", "untrained"],
        epochs=1,
        measurement=m,
        overrides=over,
    )
    recipes = _cells(
        ["synthetic"],
        ["vgg6_narrow"],
        ["no_regularization", "mixup", "manifold_mixup"],
        epochs=1,
        measurement=m,
        overrides=over,
    )
    series = _cells(
        ["synthetic"],
        ["vgg6_narrow"],
        ["baseline"],
        epochs=5,
        measurement=m,
        overrides=over,
        save_at=(1, 2, 3, 4),
    )[0]
    return Budget(
        "smoke",
        "synthetic images, tiny networks, one epoch: the machinery only",
        tuple(base + recipes),
        (_checkpoints(series, (1, 2, 3, 4, 5)),),
        caveat="Machinery only: synthetic images, tiny networks, one epoch. These verdicts mean nothing.",
    )


#: overrides of the cpu budget's training: the baseline recipe with a shorter schedule's lr and a
#: per-step cosine (reaches ≥ 90 % on Fashion-MNIST in 10 epochs on all images with vgg6_narrow),
#: here 6 epochs on a third of the training images: what pays for three seeds and the attribution
#: within 45 minutes on a 2-core CPU (40.5 min measured; 8 epochs on half of them: over an hour)
CPU_OVERRIDES = (("lr", 0.05), ("schedule_unit", "step"), ("train_subset", 20000))
CPU_EPOCHS = 6
#: seeds of every baseline and untrained cell of the cpu budget (the recipes' cells: seed 0 only)
CPU_SEEDS = (0, 1, 2)


def _cpu() -> Budget:
    m = MEASUREMENTS[CPU_BUDGET]
    models = ["vgg6_narrow", "vgg11_narrow", "resnet8_narrow", "resnet14_narrow"]
    base = _cells(
        ["fashion-mnist"],
        models,
        ["baseline", "untrained"],
        epochs=CPU_EPOCHS,
        measurement=m,
        overrides=CPU_OVERRIDES,
        seeds=CPU_SEEDS,
    )
    # the checkpoint series: vgg6_narrow's seed-0 baseline run, the only one keeping (and
    # evaluating) its earlier epochs
    series = dataclasses.replace(
        base[0], training=dataclasses.replace(base[0].training, save_at=(1, 2, 3, 4))
    )
    base[0] = series
    recipes = _cells(
        ["fashion-mnist"],
        ["vgg6_narrow"],
        ["no_regularization", "mixup", "manifold_mixup"],
        epochs=CPU_EPOCHS,
        measurement=m,
        overrides=CPU_OVERRIDES,
    )
    # the untrained paper architecture whose late probes the authors' numerics collapse (no
    # training; 100 points: the collapse is a property of each probe, not of the sample)
    demonstration = _cells(
        ["fashion-mnist"], ["vgg16"], [UNTRAINED], epochs=None, measurement=dataclasses.replace(m, points=100)
    )
    return Budget(
        "cpu",
        "Fashion-MNIST, four small networks, all recipes on vgg6_narrow, on a 2-core CPU",
        tuple(base + recipes),
        (_checkpoints(series, (1, 2, 3, 4, CPU_EPOCHS)),),
        caveat=(
            f"Small networks trained for {CPU_EPOCHS} epochs on a third of Fashion-MNIST's training images "
            f"({len(CPU_SEEDS)} seeds of "
            f"each baseline and untrained network, one of each other recipe), {m.points} points with "
            f"{m.neighbours} neighbours: not the paper's conditions (CIFAR, its six models, 200 epochs, "
            "5000 points with 1023 neighbours). Read the verdicts as indicative only; each carries the "
            "95 % interval over its seeds and points."
        ),
        changes=ATTRIBUTION_CHANGES,
        demonstrations=tuple(demonstration),
        demonstration_changes=("float32", "unscaled_fit", "authors"),
    )


def _paper() -> Budget:
    m = MEASUREMENTS[DEFAULT_BUDGET]
    models = ["resnet18", "resnet50", "resnet101", "vgg13", "vgg16", "vgg19"]
    save_at = (25, 50, 75, 100, 125, 150, 175)
    base = _cells(
        ["cifar10", "cifar100"], models, ["baseline", "untrained"], epochs=200, measurement=m, save_at=save_at
    )
    recipes = _cells(
        ["cifar10"], ["resnet50"], ["no_regularization", "mixup", "manifold_mixup"], epochs=200, measurement=m
    )
    series = base[0]  # cifar10 resnet18 baseline
    untrained_vgg16 = next(c for c in base if c.training.model == "vgg16" and c.training.recipe == UNTRAINED)
    return Budget(
        "paper",
        "the paper's grid and sizes (GPU hours)",
        tuple(base + recipes),
        (_checkpoints(series, (25, 50, 75, 100, 125, 150, 175, 200)),),
        caveat=(
            "The paper's grid: CIFAR-10/100, its six models, 200 epochs, 5000 points with 1023 "
            "neighbours. Paper values are read from its figures and are approximate."
        ),
        changes=ATTRIBUTION_CHANGES,
        demonstrations=(untrained_vgg16,),
        demonstration_changes=("float32", "unscaled_fit", "authors"),
    )


for _name, _factory in ((SMOKE_BUDGET, _smoke), (CPU_BUDGET, _cpu), (DEFAULT_BUDGET, _paper)):
    BUDGETS.add(_name, _factory)


def get_budget(name: str) -> Budget:
    return BUDGETS.get(name)()


def budget_names() -> list[str]:
    """The budgets' names, for command-line choices."""
    return BUDGETS.names()
