"""Training recipes: the registry :data:`RECIPES` (see :func:`list_recipes`).

- ``baseline`` — the paper's: SGD lr 0.1, momentum 0.9, weight decay 5e-4 (on all parameters),
  cosine annealing with ``T_max = epochs`` stepped once per epoch, batch 128, RandomCrop(padding 4)
  + horizontal flip.
- ``no_regularization`` — the same without weight decay and without augmentation.
- ``mixup`` — baseline plus mixup (Zhang et al. 2018) with α = 1: per batch λ ~ Beta(α, α), a random
  permutation π of the batch, input λ·x + (1−λ)·x[π], loss λ·CE(out, y) + (1−λ)·CE(out, y[π]).
- ``manifold_mixup`` — baseline plus manifold mixup (Verma et al. 2019) with α = 2: per batch the
  mixing point k is drawn uniformly from {input, output of the first stage, output of the second
  stage} and the hidden state there is mixed as above, with the same loss.

Mixup recipes keep the baseline's weight decay and augmentation (mixup is added on top, as in both
papers' CIFAR experiments; the mixing itself is in :mod:`crlm_bench.vision.mixing`). A recipe is a
frozen dataclass; derive a variant with ``get_recipe("baseline").replace(lr=0.05, batch_size=256)``
— the CPU Fashion-MNIST budget does so (see ``benchmarks/test_training.py``); the registered
``baseline`` stays exactly the paper's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from crlm_bench.registry import Registry

__all__ = ["RECIPES", "Recipe", "get_recipe", "list_recipes"]

_MIXING = ("none", "mixup", "manifold_mixup")
_SCHEDULE_UNITS = ("epoch", "step")


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of a training recipe.

    ``schedule_unit``: cosine annealing stepped per ``"epoch"`` (the paper, ``T_max = epochs``) or
    per optimiser ``"step"`` (``T_max = epochs × steps per epoch``; smoother for runs of a few
    epochs). ``mixing``: ``"none"``, ``"mixup"`` or ``"manifold_mixup"``, with Beta(α, α)
    parameter ``mix_alpha``.
    """

    name: str
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    batch_size: int = 128
    augment: bool = True
    mixing: str = "none"
    mix_alpha: float = 0.0
    schedule_unit: str = "epoch"

    def __post_init__(self) -> None:
        problems = []
        if not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            problems.append(f"momentum must be in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not isinstance(self.batch_size, int) or self.batch_size < 2:
            problems.append(f"batch_size must be an integer >= 2 (BatchNorm), got {self.batch_size!r}")
        if self.mixing not in _MIXING:
            problems.append(f"mixing must be one of {_MIXING}, got {self.mixing!r}")
        if self.mixing != "none" and not self.mix_alpha > 0:
            problems.append(f"mix_alpha must be > 0 for {self.mixing}, got {self.mix_alpha}")
        if self.schedule_unit not in _SCHEDULE_UNITS:
            problems.append(f"schedule_unit must be one of {_SCHEDULE_UNITS}, got {self.schedule_unit!r}")
        if problems:
            raise ValueError(f"invalid recipe {self.name!r}: " + "; ".join(problems))

    def replace(self, **changes: Any) -> Recipe:
        """A copy with some fields changed (the name is kept unless given)."""
        return dataclasses.replace(self, **changes)


RECIPES: Registry[Recipe] = Registry("recipe")
RECIPES.add("baseline", Recipe("baseline"))
RECIPES.add("no_regularization", Recipe("no_regularization", weight_decay=0.0, augment=False))
RECIPES.add("mixup", Recipe("mixup", mixing="mixup", mix_alpha=1.0))
RECIPES.add("manifold_mixup", Recipe("manifold_mixup", mixing="manifold_mixup", mix_alpha=2.0))


def list_recipes(pattern: str = "*") -> list[str]:
    """Registered recipe names matching a shell-style pattern."""
    return RECIPES.names(pattern)


def get_recipe(recipe: str | Recipe) -> Recipe:
    """The registered recipe ``recipe`` (a :class:`Recipe` is returned unchanged)."""
    if isinstance(recipe, Recipe):
        return recipe
    return RECIPES.get(recipe)
