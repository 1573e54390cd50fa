"""Budgets: named grids of cells, from seconds (smoke) to the paper's GPU hours (paper).

A budget lists the cells it measures and the groups the claims compare:

- ``smoke``: synthetic images, two tiny networks, one epoch (the checkpoint run: five), a few
  points, 3 toggles — seconds; for testing the machinery only (its verdicts mean nothing).
- ``cpu``: real Fashion-MNIST, four small networks (two ResNets, two VGGs), the baseline and
  untrained on each, the recipe comparison (no_regularization, mixup, manifold_mixup) on one,
  checkpoints of one run at five epochs; 300 points with 127 neighbours. About 40 minutes on a
  2-core CPU.
- ``paper``: CIFAR-10 and CIFAR-100 × the six paper models × baseline and untrained, the recipe
  comparison on ResNet50, the checkpoints of ResNet18's run; 200 epochs, 5000 points, 1023
  neighbours, 10 TwoNN runs of 5000.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from crlm_bench.experiment.cell import Cell, Measurement, Training
from crlm_bench.registry import Registry
from crlm_bench.replication.budgets import MEASUREMENTS


@dataclass(frozen=True)
class Budget:
    """A named grid: the cells to measure, and which of them form a checkpoint series."""

    name: str
    description: str
    cells: tuple[Cell, ...]
    checkpoint_runs: tuple[tuple[Cell, ...], ...] = field(default=())

    def all_cells(self) -> tuple[Cell, ...]:
        seen, out = set(), []
        for cell in (*self.cells, *(c for run in self.checkpoint_runs for c in run)):
            if cell.key not in seen:
                seen.add(cell.key)
                out.append(cell)
        return tuple(out)


BUDGETS: Registry[Budget] = Registry("budget")


def _cells(datasets, models, recipes, *, epochs, measurement: Measurement, overrides=(), save_at=()) -> list[Cell]:
    out = []
    for dataset in datasets:
        for model in models:
            for recipe in recipes:
                if recipe == "untrained":
                    training = Training(dataset, model, "untrained", overrides=overrides)
                else:
                    training = Training(dataset, model, recipe, epochs=epochs, save_at=save_at, overrides=overrides)
                out.append(Cell(training, measurement=measurement))
    return out


def _checkpoints(cell: Cell, epochs: tuple[int, ...]) -> tuple[Cell, ...]:
    return tuple(Cell(cell.training, at=e, measurement=cell.measurement) for e in epochs)


def _smoke() -> Budget:
    m = MEASUREMENTS["smoke"]
    over = (("batch_size", 64),)
    base = _cells(["synthetic"], ["vgg6_narrow", "resnet8_narrow"], ["baseline", "untrained"], epochs=1,
                  measurement=m, overrides=over)
    recipes = _cells(["synthetic"], ["vgg6_narrow"], ["no_regularization", "mixup", "manifold_mixup"], epochs=1,
                     measurement=m, overrides=over)
    series = _cells(["synthetic"], ["vgg6_narrow"], ["baseline"], epochs=5, measurement=m, overrides=over,
                    save_at=(1, 2, 3, 4))[0]
    return Budget("smoke", "synthetic images, tiny networks, one epoch: the machinery only", tuple(base + recipes),
                  (_checkpoints(series, (1, 2, 3, 4, 5)),))


#: overrides of the cpu budget's training: the baseline recipe with a shorter schedule's lr and a
#: per-step cosine (reaches ≥ 90 % on Fashion-MNIST in 10 epochs with vgg6_narrow)
CPU_OVERRIDES = (("lr", 0.05), ("schedule_unit", "step"))
CPU_EPOCHS = 8


def _cpu() -> Budget:
    m = MEASUREMENTS["cpu"]
    models = ["vgg6_narrow", "vgg11_narrow", "resnet8_narrow", "resnet14_narrow"]
    save_at = (1, 2, 4, 6)
    base = _cells(["fashion-mnist"], models, ["baseline", "untrained"], epochs=CPU_EPOCHS, measurement=m,
                  overrides=CPU_OVERRIDES, save_at=save_at)
    recipes = _cells(["fashion-mnist"], ["vgg6_narrow"], ["no_regularization", "mixup", "manifold_mixup"],
                     epochs=CPU_EPOCHS, measurement=m, overrides=CPU_OVERRIDES)
    series = base[0]  # vgg6_narrow baseline: checkpoints along its run
    return Budget("cpu", "Fashion-MNIST, four small networks, all recipes on vgg6_narrow, on a 2-core CPU",
                  tuple(base + recipes), (_checkpoints(series, (1, 2, 4, 6, CPU_EPOCHS)),))


def _paper() -> Budget:
    m = MEASUREMENTS["paper"]
    models = ["resnet18", "resnet50", "resnet101", "vgg13", "vgg16", "vgg19"]
    save_at = (25, 50, 75, 100, 125, 150, 175)
    base = _cells(["cifar10", "cifar100"], models, ["baseline", "untrained"], epochs=200, measurement=m,
                  save_at=save_at)
    recipes = _cells(["cifar10"], ["resnet50"], ["no_regularization", "mixup", "manifold_mixup"], epochs=200,
                     measurement=m)
    series = base[0]  # cifar10 resnet18 baseline
    return Budget("paper", "the paper's grid and sizes (GPU hours)", tuple(base + recipes),
                  (_checkpoints(series, (25, 50, 75, 100, 125, 150, 175, 200)),))


for _name, _factory in (("smoke", _smoke), ("cpu", _cpu), ("paper", _paper)):
    BUDGETS.add(_name, _factory)


def get_budget(name: str) -> Budget:
    return BUDGETS.get(name)()


# --------------------------------------------------------------------------------------------
# groups: the cells each claim test compares


@dataclass(frozen=True)
class Group:
    """Cells that one claim test compares, with a readable id (the pytest parameter id)."""

    id: str
    cells: tuple[Cell, ...]
    kind: str = ""


#: kinds of group (the claim tests' fixtures), and which claims are judged on each
GROUP_KINDS = ("trained_cell", "model_pair", "dataset_models", "checkpoint_run", "recipe_set")
CLAIM_GROUPS = (
    ("profile-shape", "trained_cell"),
    ("untrained-flattens", "model_pair"),
    ("gap-tracks-accuracy", "dataset_models"),
    ("gap-tracks-accuracy", "checkpoint_run"),
    ("id-not-curvature", "dataset_models"),
    ("mixup-flattens", "recipe_set"),
)
#: the part of a claim a kind of group tests (a statistic's words), where a claim has two parts
PART = {("gap-tracks-accuracy", "dataset_models"): "across models",
        ("gap-tracks-accuracy", "checkpoint_run"): "along training"}


def groups_of(budget: Budget) -> dict[str, list[Group]]:
    """The budget's cells arranged as each kind of claim test needs them (from the grid alone)."""
    final = [c for c in budget.cells if c.at == c.training.epochs]
    trained = [c for c in final if c.training.recipe != "untrained"]
    out: dict[str, list[Group]] = {name: [] for name in GROUP_KINDS}
    out["trained_cell"] = [Group(c.id, (c,), "trained_cell") for c in trained]
    by_model: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for c in final:
        by_model[(c.training.dataset, c.training.model)].append(c)
    for (dataset, model), cs in by_model.items():
        recipes = {c.training.recipe: c for c in cs}
        if "untrained" in recipes and "baseline" in recipes:
            out["model_pair"].append(
                Group(f"{dataset}-{model}-untrained-vs-baseline", (recipes["untrained"], recipes["baseline"]), "model_pair"))
        if {"mixup", "baseline"} <= recipes.keys():
            out["recipe_set"].append(
                Group(f"{dataset}-{model}-mixup-vs-recipes", tuple(c for r, c in recipes.items() if r != "untrained"),
                      "recipe_set"))
    by_dataset: dict[str, list[Cell]] = defaultdict(list)
    for c in trained:
        if c.training.recipe == "baseline":
            by_dataset[c.training.dataset].append(c)
    for dataset, cs in by_dataset.items():
        out["dataset_models"].append(Group(f"{dataset}-baseline-models", tuple(cs), "dataset_models"))
    for run in budget.checkpoint_runs:
        t = run[0].training
        out["checkpoint_run"].append(
            Group(f"{t.dataset}-{t.model}-{t.recipe}-s{t.seed}-checkpoints", tuple(run), "checkpoint_run"))
    return out


def evaluate_group(claim: str, group: Group, result: Callable[[Cell], object]) -> list:
    """Every variant's verdicts of ``claim`` on ``group``; ``result(cell)`` gives a CellResult."""
    from crlm_bench.replication.claims import evaluate_all

    found = evaluate_all([result(c) for c in group.cells], claims=[claim])
    part = PART.get((claim, group.kind))
    return [v for v in found if part is None or part in v.statistic]


def evaluate_budget(budget: Budget, result: Callable[[Cell], object | None]) -> tuple[list, list[str]]:
    """The verdicts a full claims run would give, for the groups whose cells ``result`` can give
    (it returns None for a missing cell); and the ids of the groups left out."""
    verdicts, skipped = [], []
    groups = groups_of(budget)
    for claim, kind in CLAIM_GROUPS:
        for group in groups[kind]:
            if any(result(c) is None for c in group.cells):
                skipped.append(f"{claim} [{group.id}]")
                continue
            verdicts.extend(evaluate_group(claim, group, result))
    return verdicts, skipped
