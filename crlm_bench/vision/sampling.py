"""The random draws of a training epoch, made up front from the trainer's generator.

All randomness of training (shuffling, augmentation, λ, permutations, mixing points) comes from one
CPU ``torch.Generator`` seeded by the run's ``seed`` (:class:`~crlm_bench.vision.training.FitOptions`).
:func:`plan_epoch` makes the draws of an epoch at its start, in this order: the permutation of the
training set; crop offsets ``(2, n)`` and flips ``(n,)`` (if the recipe augments); one uniform per
step mapped to λ by the inverse Beta(α, α) CDF, a row of uniforms per step whose argsort is the
batch permutation, and (manifold mixup) the mixing point per step. They reach the device in a few
transfers, so no step waits on the host. The order is part of the checkpoint contract: resuming
replays it from the saved generator state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from scipy.special import betaincinv

from crlm_bench.vision import datasets as _datasets
from crlm_bench.vision.recipes import Recipe

__all__ = ["EpochPlan", "plan_epoch"]


@dataclass(frozen=True)
class EpochPlan:
    """All random draws of one epoch, made up front on the CPU generator and moved to the device
    in a few transfers (no host–device synchronisation per step)."""

    order: torch.Tensor  # (n,) the epoch's permutation of the training set
    offsets: torch.Tensor | None  # (2, n) crop offsets, per position in ``order``
    flips: torch.Tensor | None  # (n,) horizontal flips
    lam: list[float]  # per step, λ ~ Beta(α, α)
    perm_keys: torch.Tensor | None  # (steps, batch) uniforms; argsort gives the batch permutation
    point: list[int]  # per step, manifold-mixup mixing point (0 input, 1 first stage, 2 second)

    def perm(self, step: int, b: int) -> torch.Tensor:
        """The permutation of the ``b`` images of batch ``step``."""
        return self.perm_keys[step, :b].argsort()


def plan_epoch(
    generator: torch.Generator, n: int, steps: int, batch_size: int, recipe: Recipe, device: torch.device
) -> EpochPlan:
    """Draw one epoch of ``steps`` batches of ``batch_size`` from ``n`` images, for ``recipe``."""
    order = torch.randperm(n, generator=generator)
    offsets = flips = perm_keys = None
    lam: list[float] = []
    point: list[int] = []
    if recipe.augment:
        pad = _datasets.CROP_PADDING
        offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).to(device)
        flips = (torch.rand(n, generator=generator) < 0.5).to(device)
    if recipe.mixing != "none":
        u = torch.rand(steps, generator=generator, dtype=torch.float64).numpy()
        lam = [float(v) for v in betaincinv(recipe.mix_alpha, recipe.mix_alpha, u)]
        perm_keys = torch.rand(steps, batch_size, generator=generator).to(device)
        if recipe.mixing == "manifold_mixup":
            point = torch.randint(0, 3, (steps,), generator=generator).tolist()
    return EpochPlan(order.to(device), offsets, flips, lam, perm_keys, point)
