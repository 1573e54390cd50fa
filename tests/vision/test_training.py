"""Training: recipes, mixup / manifold mixup as their papers define them, checkpoints and resume,
determinism, the reported accuracy, and bad input caught before training."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from scipy.special import betaincinv

from crlm_bench.registry import UnknownNameError
from crlm_bench.vision import datasets, training
from crlm_bench.vision.models import build
from crlm_bench.vision.training import (
    Recipe,
    get_recipe,
    latest_checkpoint,
    load_checkpoint,
    mix,
    mixed_cross_entropy,
    sample_lambda,
    train,
)

#: Small, fast settings: the synthetic set (3×32×32), a narrow ResNet, a few hundred images.
FAST = dict(train_subset=192, test_subset=64, device="cpu", progress=False)

# ---------------------------------------------------------------- recipes


def test_recipe_registry():
    assert training.list_recipes() == ["baseline", "manifold_mixup", "mixup", "no_regularization"]


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
    with pytest.raises(ValueError, match="lr must be > 0.*batch_size must be"):
        Recipe("bad", lr=0, batch_size=1)
    with pytest.raises(ValueError, match="mix_alpha must be > 0"):
        Recipe("bad", mixing="mixup")


def test_unknown_recipe():
    with pytest.raises(UnknownNameError, match="Did you mean 'mixup'"):
        train(build("resnet8_narrow"), "synthetic", "mix-up", epochs=1)


# ---------------------------------------------------------------- mixup math


def test_lambda_is_beta_distributed():
    g = torch.Generator().manual_seed(0)
    for alpha in (1.0, 2.0, 0.4):
        draws = [sample_lambda(alpha, g) for _ in range(2000)]
        assert stats.kstest(draws, stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    u = torch.rand((), generator=g2, dtype=torch.float64).item()
    assert sample_lambda(2.0, g1) == pytest.approx(betaincinv(2.0, 2.0, u))


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
    order: the epoch's permutation, one uniform per step for λ (inverse Beta CDF), a row of
    uniforms per step whose argsort is the batch permutation, the mixing point per step."""
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

    monkeypatch.setattr(training, "mixed_cross_entropy", recording)
    train(model, "synthetic", recipe, epochs=1, seed=seed, train_subset=n, test_subset=8, device="cpu", progress=False)

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


# ---------------------------------------------------------------- checkpoints, resume, determinism


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("recipe_name", ["baseline", "manifold_mixup"])
def test_resume_gives_the_same_weights(tmp_path, recipe_name):
    straight = build("resnet8_narrow", seed=0)
    r_straight = train(straight, "synthetic", recipe_name, epochs=3, save_at=[2], seed=5,
                       checkpoint_dir=tmp_path / "a", **FAST)  # fmt: skip

    interrupted = build("resnet8_narrow", seed=0)
    r1 = train(interrupted, "synthetic", recipe_name, epochs=3, save_at=[2], seed=5, stop_after=2,
               checkpoint_dir=tmp_path / "b", **FAST)  # fmt: skip
    assert [p.name for p in r1.checkpoints] == ["epoch_0002.pt"]
    resumed = build("resnet8_narrow", seed=99)  # a fresh process would start from other weights
    r2 = train(resumed, "synthetic", recipe_name, epochs=3, save_at=[2], seed=5,
               resume_from=latest_checkpoint(tmp_path / "b"), checkpoint_dir=tmp_path / "b", **FAST)  # fmt: skip

    _assert_same(_weights(straight), _weights(resumed))
    assert r2.start_epoch == 3 and r2.test_accuracy == r_straight.test_accuracy
    assert r2.final_accuracy == r_straight.final_accuracy
    a, b = load_checkpoint(tmp_path / "a" / "epoch_0003.pt"), load_checkpoint(tmp_path / "b" / "epoch_0003.pt")
    _assert_same(a["model"], b["model"])
    assert torch.equal(a["generator"], b["generator"])
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    assert a["scheduler"] == b["scheduler"]


def test_same_seed_same_weights_other_seed_differs():
    runs = []
    for seed in (1, 1, 2):
        model = build("resnet8_narrow", seed=0)
        train(model, "synthetic", "mixup", epochs=1, seed=seed, **FAST)
        runs.append(_weights(model))
    _assert_same(runs[0], runs[1])
    assert not torch.equal(runs[0]["conv1.weight"], runs[2]["conv1.weight"])


def test_checkpoint_contents_and_atomic_write(tmp_path):
    got = []
    result = train(build("vgg6_narrow", seed=0), "synthetic", "baseline", epochs=2, save_at=[1], seed=0,
                   checkpoint_dir=tmp_path, on_checkpoint=got.append, **FAST)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_0001.pt", "epoch_0002.pt"]  # no temp files
    assert result.checkpoints == (tmp_path / "epoch_0001.pt", tmp_path / "epoch_0002.pt")
    assert [c.epoch for c in got] == [1, 2] and [c.path for c in got] == list(result.checkpoints)
    state = torch.load(tmp_path / "epoch_0002.pt", weights_only=True)  # plain tensors and dicts
    assert state["epoch"] == 2 and state["run"]["dataset"] == "synthetic" and state["arch"] == "vgg6_narrow"
    assert set(state) >= {"model", "optimizer", "scheduler", "generator", "torch_rng", "test_accuracy"}
    assert state["test_accuracy"] == dict(result.test_accuracy)
    assert latest_checkpoint(tmp_path) == tmp_path / "epoch_0002.pt"
    assert latest_checkpoint(tmp_path / "nothing") is None


def test_on_checkpoint_without_directory_gets_a_detached_state(tmp_path):
    got = []
    model = build("resnet8_narrow", seed=0)
    result = train(model, "synthetic", "baseline", epochs=2, save_at=[1], on_checkpoint=got.append, **FAST)
    assert result.checkpoints == () and [c.path for c in got] == [None, None]
    first = got[0].state["model"]["conv1.weight"]
    assert not torch.equal(first, model.conv1.weight.detach())  # a copy, not the live tensor
    torch.save(got[0].state, tmp_path / "s.pt")
    assert torch.load(tmp_path / "s.pt", weights_only=True)["epoch"] == 1


def test_resume_from_the_last_epoch_returns_the_recorded_run(tmp_path):
    model = build("resnet8_narrow", seed=0)
    done = train(model, "synthetic", "baseline", epochs=2, save_at=[1], checkpoint_dir=tmp_path, **FAST)
    again_model = build("resnet8_narrow", seed=1)
    again = train(again_model, "synthetic", "baseline", epochs=2, save_at=[1],
                  resume_from=latest_checkpoint(tmp_path), checkpoint_dir=tmp_path, **FAST)  # fmt: skip
    assert again.test_accuracy == done.test_accuracy and again.final_accuracy == done.final_accuracy
    assert again.train_loss == () and again.start_epoch == 3
    _assert_same(_weights(model), _weights(again_model))
    with pytest.raises(ValueError, match="past stop_after=1"):
        train(build("resnet8_narrow"), "synthetic", "baseline", epochs=2, stop_after=1,
              resume_from=tmp_path / "epoch_0002.pt", **FAST)  # fmt: skip


def test_resume_refuses_a_different_run(tmp_path):
    train(build("resnet8_narrow", seed=0), "synthetic", "baseline", epochs=2, save_at=[1], stop_after=1,
          checkpoint_dir=tmp_path, **FAST)  # fmt: skip
    with pytest.raises(ValueError, match="different run .*seed"):
        train(build("resnet8_narrow", seed=0), "synthetic", "baseline", epochs=2, seed=1,
              resume_from=tmp_path / "epoch_0001.pt", **FAST)  # fmt: skip


# ---------------------------------------------------------------- reported accuracy, results


def test_reports_the_last_epochs_accuracy_not_the_best(monkeypatch):
    values = iter([0.9, 0.4, 0.6])
    monkeypatch.setattr(training, "evaluate_tensors", lambda *a, **k: next(values))
    result = train(build("resnet8_narrow", seed=0), "synthetic", "baseline", epochs=3, save_at=[1, 2], **FAST)
    assert result.test_accuracy == ((1, 0.9), (2, 0.4), (3, 0.6))
    assert result.final_accuracy == 0.6 and result.accuracy_by_epoch[1] == 0.9


def test_learns_the_synthetic_set_and_evaluate_agrees():
    model = build("resnet8_narrow", seed=0)
    result = train(model, "synthetic", "baseline", epochs=3, seed=0, train_subset=512, device="cpu", progress=False)
    assert result.final_accuracy > 0.5  # chance is 0.1
    assert training.evaluate(model, "synthetic") == pytest.approx(result.final_accuracy)
    assert result.train_images_per_s > 0 and math.isfinite(result.wall_time_s)
    assert [e for e, _ in result.epoch_seconds] == [1, 2, 3]
    with pytest.raises(dataclasses_frozen_error()):
        result.final_accuracy = 1.0


def dataclasses_frozen_error():
    import dataclasses

    return dataclasses.FrozenInstanceError


def test_no_progress_output_when_not_a_terminal(capsys):
    train(build("resnet8_narrow", seed=0), "synthetic", "baseline", epochs=1, progress=None,
          train_subset=64, test_subset=16, device="cpu")  # fmt: skip
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# ---------------------------------------------------------------- bad input before training


@pytest.fixture
def data_must_not_load(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("data was loaded before the input was checked")

    monkeypatch.setattr(datasets, "load", fail)


def test_channel_mismatch_caught_before_loading(data_must_not_load):
    with pytest.raises(ValueError, match=r"3-channel input but fashion-mnist images have 1.*in_channels=1"):
        train(build("resnet8_narrow"), "fashion-mnist", "baseline", epochs=1)


def test_class_mismatch_caught_before_loading(data_must_not_load):
    with pytest.raises(ValueError, match=r"100 outputs but cifar10 has 10 classes.*num_classes=10"):
        train(build("vgg6_narrow", num_classes=100), "cifar10", "baseline", epochs=1)


def test_mismatch_for_a_plain_module(data_must_not_load):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(7))
    with pytest.raises(ValueError, match="7 outputs but synthetic has 10 classes"):
        train(net, "synthetic", "baseline", epochs=1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(epochs=0), "epochs must be a positive integer"),
        (dict(epochs=3, save_at=[0, 4]), r"save_at must hold epochs in 1..3"),
        (dict(epochs=2.0), "epochs must be a positive integer"),
    ],
)
def test_bad_schedule_arguments(data_must_not_load, kwargs, match):
    with pytest.raises(ValueError, match=match):
        train(build("resnet8_narrow"), "synthetic", "baseline", **kwargs)


def test_unknown_dataset_in_train(data_must_not_load):
    with pytest.raises(UnknownNameError, match="Did you mean 'fashion-mnist'"):
        train(build("resnet8_narrow", in_channels=1), "fashion_mnist", "baseline", epochs=1)


@pytest.mark.slow
def test_compiled_training_runs_and_probes_see_through_the_wrapper():
    """torch.compile on CPU (about 30 s of compilation on 2 cores)."""
    from crlm_bench.vision.models import probes

    model = build("resnet8_narrow", seed=0)
    result = train(model, "synthetic", "mixup", epochs=1, compile=True, **FAST)
    assert 0 <= result.final_accuracy <= 1
    assert [p.name for p in probes(torch.compile(model))] == [p.name for p in probes(model)]
