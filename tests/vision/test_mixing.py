"""Mixup and manifold mixup as their papers define them: λ ~ Beta(α, α), the mixed input or hidden
state, the mixed loss, and one real training step that mixes exactly so."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from scipy.special import betaincinv

from crlm_bench.vision import datasets, training
from crlm_bench.vision.mixing import HiddenMixer, mix, mixed_cross_entropy, sample_lambda
from crlm_bench.vision.models import build
from crlm_bench.vision.recipes import get_recipe
from crlm_bench.vision.training import FitOptions, train


def test_lambda_is_beta_distributed():
    g = torch.Generator().manual_seed(0)
    for alpha in (1.0, 2.0, 0.4):
        draws = [sample_lambda(alpha, g) for _ in range(2000)]
        assert stats.kstest(draws, stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    u = torch.rand((), generator=g2, dtype=torch.float64).item()
    assert sample_lambda(2.0, g1) == pytest.approx(betaincinv(2.0, 2.0, u))
    with pytest.raises(ValueError, match="alpha must be > 0"):
        sample_lambda(0.0, g1)


def test_mix_and_mixed_loss_on_fixed_batch():
    x = torch.arange(4 * 3, dtype=torch.float32).view(4, 3)
    perm = torch.tensor([2, 0, 3, 1])
    torch.testing.assert_close(mix(x, 0.3, perm), 0.3 * x + 0.7 * x[perm])
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3], [-2.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    ya, yb = torch.tensor([0, 1, 2, 0]), torch.tensor([2, 2, 1, 0])
    lam = 0.3
    # By hand: λ·CE(out, y_a) + (1−λ)·CE(out, y_b), CE averaged over the batch.
    logp = logits.log_softmax(1)
    ce_a = -sum(logp[i, ya[i]] for i in range(4)) / 4
    ce_b = -sum(logp[i, yb[i]] for i in range(4)) / 4
    torch.testing.assert_close(mixed_cross_entropy(logits, ya, yb, lam), lam * ce_a + (1 - lam) * ce_b)


def test_hidden_mixer_mixes_only_the_armed_module_once_armed():
    first, second = torch.nn.Identity(), torch.nn.Identity()
    net = torch.nn.Sequential(first, torch.nn.Linear(3, 3), second)
    x, perm = torch.randn(4, 3), torch.tensor([1, 0, 3, 2])
    plain = net(x)
    mixer = HiddenMixer([first, second])
    torch.testing.assert_close(net(x), plain)  # not armed: changes nothing
    mixer.arm(second, 0.25, perm)
    torch.testing.assert_close(net(x), mix(plain, 0.25, perm))
    mixer.arm(None, 1.0, None)
    torch.testing.assert_close(net(x), plain)
    mixer.arm(second, 0.25, perm)
    mixer.close()  # hooks removed
    torch.testing.assert_close(net(x), plain)


def _record(seen: dict, key: str, module: torch.nn.Module, pre: bool = False) -> None:
    """Keep the first input (``pre``) or output of ``module`` under ``key``; change nothing."""

    def pre_hook(m, args):
        seen.setdefault(key, args[0].detach().clone())

    def hook(m, args, output):
        seen.setdefault(key, output.detach().clone())

    if pre:
        module.register_forward_pre_hook(pre_hook)
    else:
        module.register_forward_hook(hook)


def _replay_first_batch(seed, n, batch_size, alpha, manifold):
    """The first batch's draws of the training generator (without augmentation), in the documented
    order (:mod:`crlm_bench.vision.sampling`): the epoch's permutation, one uniform per step for λ
    (inverse Beta CDF), a row of uniforms per step whose argsort is the batch permutation, the
    mixing point per step."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g)
    steps = math.ceil(n / batch_size)
    u = torch.rand(steps, generator=g, dtype=torch.float64)
    lam = float(betaincinv(alpha, alpha, u[0].item()))
    perm = torch.rand(steps, batch_size, generator=g)[0].argsort()
    k = int(torch.randint(0, 3, (steps,), generator=g)[0]) if manifold else 0
    return order[:batch_size], lam, perm, k


#: Seeds whose first manifold-mixup batch mixes at the first stage, the input and the second stage.
MIX_SEEDS = [3, 1, 0]


@pytest.mark.parametrize("seed", MIX_SEEDS)
@pytest.mark.parametrize("recipe_name", ["mixup", "manifold_mixup"])
def test_training_step_mixes_as_the_papers_define(monkeypatch, recipe_name, seed):
    """One real training step: the mixed input (or hidden state) is λ·h + (1−λ)·h[perm] and the loss
    is λ·CE(out, y) + (1−λ)·CE(out, y[perm]), with λ ~ Beta(α, α) drawn from the seeded generator."""
    n = 32
    recipe = get_recipe(recipe_name).replace(augment=False, batch_size=n)
    model = build("resnet8_narrow", seed=0)
    seen = {}
    _record(seen, "input", model, pre=True)
    _record(seen, "layer1", model.layer1)
    _record(seen, "into_layer2", model.layer2, pre=True)
    _record(seen, "layer2", model.layer2)
    _record(seen, "into_layer3", model.layer3, pre=True)
    original = training.mixed_cross_entropy

    def recording(logits, y_a, y_b, lam):
        loss = original(logits, y_a, y_b, lam)
        seen.setdefault("loss", (logits.detach().clone(), y_a, y_b, lam, loss.detach()))
        return loss

    monkeypatch.setattr(training, "mixed_cross_entropy", recording)  # the name the trainer calls
    options = FitOptions(epochs=1, seed=seed, train_subset=n, test_subset=8, device="cpu", progress=False)
    train(model, "synthetic", recipe, options)

    idx, lam, perm, k = _replay_first_batch(seed, n, n, recipe.mix_alpha, recipe_name == "manifold_mixup")
    ds = datasets.load("synthetic", "train")
    x = datasets.normalize(ds.images[:n][idx], "synthetic")
    y = ds.targets[:n][idx]
    logits, y_a, y_b, got_lam, loss = seen["loss"]
    assert got_lam == lam and torch.equal(y_a, y) and torch.equal(y_b, y[perm])
    expected_loss = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])
    torch.testing.assert_close(loss, expected_loss)
    if k == 0:  # input mixing (always for mixup)
        torch.testing.assert_close(seen["input"], lam * x + (1 - lam) * x[perm])
        torch.testing.assert_close(seen["into_layer2"], seen["layer1"])
    else:
        torch.testing.assert_close(seen["input"], x)
        h = seen[f"layer{k}"]
        mixed = seen[f"into_layer{k + 1}"]
        torch.testing.assert_close(mixed, lam * h + (1 - lam) * h[perm])
        assert not torch.allclose(mixed, h)


def test_manifold_mixup_draws_all_three_points():
    ks = [_replay_first_batch(seed, 32, 32, 2.0, True)[3] for seed in MIX_SEEDS]
    assert ks == [1, 0, 2]  # the parametrised seeds above cover every mixing point
