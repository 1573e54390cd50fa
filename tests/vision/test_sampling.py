"""The random draws of an epoch: made from the training generator in the documented order, and
nothing drawn that the recipe does not use."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.special import betaincinv

from crlm_bench.vision import datasets
from crlm_bench.vision.recipes import get_recipe
from crlm_bench.vision.sampling import plan_epoch

CPU = torch.device("cpu")


@pytest.mark.parametrize("recipe_name", ["baseline", "no_regularization", "mixup", "manifold_mixup"])
def test_plan_draws_in_the_documented_order(recipe_name):
    recipe = get_recipe(recipe_name)
    n, batch_size = 50, 16
    steps = math.ceil(n / batch_size)
    plan = plan_epoch(torch.Generator().manual_seed(11), n, steps, batch_size, recipe, CPU)

    g = torch.Generator().manual_seed(11)  # the same draws, by hand
    assert torch.equal(plan.order, torch.randperm(n, generator=g))
    if recipe.augment:
        pad = datasets.CROP_PADDING
        assert torch.equal(plan.offsets, torch.randint(0, 2 * pad + 1, (2, n), generator=g))
        assert torch.equal(plan.flips, torch.rand(n, generator=g) < 0.5)
    else:
        assert plan.offsets is None and plan.flips is None
    if recipe.mixing != "none":
        u = torch.rand(steps, generator=g, dtype=torch.float64)
        assert plan.lam == [float(betaincinv(recipe.mix_alpha, recipe.mix_alpha, v)) for v in u.tolist()]
        keys = torch.rand(steps, batch_size, generator=g)
        assert torch.equal(plan.perm(1, batch_size), keys[1].argsort())
        assert torch.equal(plan.perm(steps - 1, 2), keys[steps - 1, :2].argsort())  # a short last batch
    else:
        assert plan.lam == [] and plan.perm_keys is None
    if recipe.mixing == "manifold_mixup":
        assert plan.point == torch.randint(0, 3, (steps,), generator=g).tolist()
    else:
        assert plan.point == []
    # The generator is left exactly where the replay is: the next epoch starts from the same state.
    assert torch.equal(g.get_state(), _state_after(11, n, steps, batch_size, recipe))


def _state_after(seed, n, steps, batch_size, recipe):
    g = torch.Generator().manual_seed(seed)
    plan_epoch(g, n, steps, batch_size, recipe, CPU)
    return g.get_state()
