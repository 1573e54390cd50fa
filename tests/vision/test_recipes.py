"""Recipes: the registry, the paper's baseline, the other recipes, variants and validation."""

from __future__ import annotations

import pytest

from crlm_bench.registry import UnknownNameError
from crlm_bench.vision import recipes
from crlm_bench.vision.recipes import Recipe, get_recipe


def test_recipe_registry():
    assert recipes.list_recipes() == ["baseline", "manifold_mixup", "mixup", "no_regularization"]
    assert recipes.list_recipes("*mixup") == ["manifold_mixup", "mixup"]


def test_baseline_is_the_papers_recipe():
    r = get_recipe("baseline")
    assert (r.lr, r.momentum, r.weight_decay, r.batch_size, r.augment) == (0.1, 0.9, 5e-4, 128, True)
    assert (r.mixing, r.schedule_unit, r.nesterov) == ("none", "epoch", False)


def test_other_recipes():
    noreg = get_recipe("no_regularization")
    assert noreg.weight_decay == 0 and not noreg.augment
    mixup, manifold = get_recipe("mixup"), get_recipe("manifold_mixup")
    assert (mixup.mixing, mixup.mix_alpha) == ("mixup", 1.0)
    assert (manifold.mixing, manifold.mix_alpha) == ("manifold_mixup", 2.0)
    for r in (mixup, manifold):  # added on top of the baseline's regularisation
        assert r.weight_decay == 5e-4 and r.augment and r.lr == 0.1


def test_recipe_replace_and_validation():
    r = get_recipe("baseline").replace(lr=0.05, batch_size=256)
    assert (r.name, r.lr, r.batch_size) == ("baseline", 0.05, 256)
    assert get_recipe("baseline").lr == 0.1  # the registered recipe is unchanged
    assert get_recipe(r) is r  # a Recipe passes through
    with pytest.raises(ValueError, match="lr must be > 0.*batch_size must be"):
        Recipe("bad", lr=0, batch_size=1)
    with pytest.raises(ValueError, match="mix_alpha must be > 0"):
        Recipe("bad", mixing="mixup")
    with pytest.raises(ValueError, match="schedule_unit must be one of"):
        get_recipe("baseline").replace(schedule_unit="batch")


def test_unknown_recipe():
    with pytest.raises(UnknownNameError, match="Did you mean 'mixup'"):
        get_recipe("mix-up")
