"""Training: the options, checkpoints and resume, determinism, the reported accuracy, and bad input
caught before training. (Recipes, mixing, the epoch's draws, checkpoint files and evaluation have
their own test modules.)"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from crlm_bench.registry import UnknownNameError
from crlm_bench.vision import datasets, training
from crlm_bench.vision.checkpoints import latest_checkpoint, load_checkpoint
from crlm_bench.vision.evaluation import evaluate
from crlm_bench.vision.models import build
from crlm_bench.vision.training import FitOptions, fit, train

#: Small, fast settings: the synthetic set (3×32×32), a narrow ResNet, a few hundred images.
FAST = dict(train_subset=192, test_subset=64, device="cpu", progress=False)

# ---------------------------------------------------------------- options


def test_options_defaults_and_derived_epochs():
    options = FitOptions(epochs=5)
    assert (options.save_at, options.seed, options.stop_after, options.eval_batch_size) == ((), 0, None, 1024)
    assert options.save_epochs == [5] and options.last_epoch == 5
    options = FitOptions(epochs=5, save_at=(e for e in [3, 1, 3]), stop_after=4)  # any iterable, once
    assert options.save_at == (3, 1, 3) and options.save_epochs == [1, 3, 5] and options.last_epoch == 4
    assert FitOptions(epochs=3, save_at=range(1, 4)).save_at == (1, 2, 3)
    assert FitOptions(epochs=3, save_at=None).save_at == ()
    assert options.replace(seed=2).seed == 2 and options.seed == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.seed = 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(epochs=0), "epochs must be a positive integer"),
        (dict(epochs=2.0), "epochs must be a positive integer"),
        (dict(epochs=True), "epochs must be a positive integer"),
        (dict(epochs=3, save_at=[0, 4]), r"save_at must hold epochs in 1..3"),
        (dict(epochs=3, stop_after=4), r"stop_after must be in 1..3, got 4"),
        (dict(epochs=3, train_subset=1), "train_subset must be None or an integer >= 2"),
        (dict(epochs=3, test_subset=8.0), "test_subset must be None or an integer >= 2"),
        (
            dict(epochs=3, save_at=[1], evaluate_at=[2]),
            r"evaluate_at must hold saved epochs \[1, 3\], got \[2\]",
        ),
        (dict(epochs=3, evaluate_at=[True]), r"evaluate_at must hold saved epochs"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FitOptions(**kwargs)
    if kwargs.get("epochs") == 3:
        with pytest.raises(ValueError, match=match):
            FitOptions(epochs=3).replace(**kwargs)  # checked again


def test_train_and_fit_want_options(data_must_not_load):
    with pytest.raises(TypeError, match="options must be a FitOptions, got dict"):
        train(build("resnet8_narrow"), "synthetic", "baseline", dict(epochs=1))
    with pytest.raises(TypeError):
        train(build("resnet8_narrow"), "synthetic", "baseline", epochs=1)  # the old keywords are gone


# ---------------------------------------------------------------- checkpoints, resume, determinism


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("recipe_name", ["baseline", "manifold_mixup"])
def test_resume_gives_the_same_weights(tmp_path, recipe_name):
    run = FitOptions(epochs=3, save_at=[2], seed=5, **FAST)
    straight = build("resnet8_narrow", seed=0)
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    r_straight = train(straight, "synthetic", recipe_name, run.replace(checkpoint_dir=a_dir))

    interrupted = build("resnet8_narrow", seed=0)
    r1 = train(interrupted, "synthetic", recipe_name, run.replace(stop_after=2, checkpoint_dir=b_dir))
    assert [p.name for p in r1.checkpoints] == ["epoch_0002.pt"]
    resumed = build("resnet8_narrow", seed=99)  # a fresh process would start from other weights
    resume = run.replace(resume_from=latest_checkpoint(b_dir), checkpoint_dir=b_dir)
    r2 = train(resumed, "synthetic", recipe_name, resume)

    _assert_same(_weights(straight), _weights(resumed))
    assert r2.start_epoch == 3 and r2.test_accuracy == r_straight.test_accuracy
    assert r2.final_accuracy == r_straight.final_accuracy
    a, b = load_checkpoint(a_dir / "epoch_0003.pt"), load_checkpoint(b_dir / "epoch_0003.pt")
    _assert_same(a["model"], b["model"])
    assert torch.equal(a["generator"], b["generator"])
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    assert a["scheduler"] == b["scheduler"]


def test_same_seed_same_weights_other_seed_differs():
    runs = []
    for seed in (1, 1, 2):
        model = build("resnet8_narrow", seed=0)
        train(model, "synthetic", "mixup", FitOptions(epochs=1, seed=seed, **FAST))
        runs.append(_weights(model))
    _assert_same(runs[0], runs[1])
    assert not torch.equal(runs[0]["conv1.weight"], runs[2]["conv1.weight"])


def test_fit_on_loaded_splits_is_train():
    options = FitOptions(epochs=1, seed=3, **FAST)
    a, b = build("resnet8_narrow", seed=0), build("resnet8_narrow", seed=0)
    r_train = train(a, "synthetic", "mixup", options)
    splits = datasets.load("synthetic", "train"), datasets.load("synthetic", "test")
    r_fit = fit(b, *splits, "mixup", options)
    _assert_same(_weights(a), _weights(b))
    assert r_fit.test_accuracy == r_train.test_accuracy and r_fit.train_loss == r_train.train_loss
    test = splits[1]
    other = datasets.ImageDataset(datasets.dataset_info("cifar10"), "test", test.images, test.targets, False)
    with pytest.raises(ValueError, match="train_set is 'synthetic' but test_set is 'cifar10'"):
        fit(b, splits[0], other, "mixup", options)


def test_resume_from_the_last_epoch_returns_the_recorded_run(tmp_path):
    model = build("resnet8_narrow", seed=0)
    options = FitOptions(epochs=2, save_at=[1], checkpoint_dir=tmp_path, **FAST)
    done = train(model, "synthetic", "baseline", options)
    again_model = build("resnet8_narrow", seed=1)
    resume = options.replace(resume_from=latest_checkpoint(tmp_path))
    again = train(again_model, "synthetic", "baseline", resume)
    assert again.test_accuracy == done.test_accuracy and again.final_accuracy == done.final_accuracy
    assert again.train_loss == () and again.start_epoch == 3
    _assert_same(_weights(model), _weights(again_model))
    late = FitOptions(epochs=2, stop_after=1, resume_from=tmp_path / "epoch_0002.pt", **FAST)
    with pytest.raises(ValueError, match="past stop_after=1"):
        train(build("resnet8_narrow"), "synthetic", "baseline", late)


def test_resume_refuses_a_different_run(tmp_path):
    first = FitOptions(epochs=2, save_at=[1], stop_after=1, checkpoint_dir=tmp_path, **FAST)
    train(build("resnet8_narrow", seed=0), "synthetic", "baseline", first)
    other = FitOptions(epochs=2, seed=1, resume_from=tmp_path / "epoch_0001.pt", **FAST)
    with pytest.raises(ValueError, match="different run .*seed"):
        train(build("resnet8_narrow", seed=0), "synthetic", "baseline", other)


# ---------------------------------------------------------------- reported accuracy, results


def test_reports_the_last_epochs_accuracy_not_the_best(monkeypatch):
    values = iter([0.9, 0.4, 0.6])
    monkeypatch.setattr(training, "evaluate_tensors", lambda *a, **k: next(values))
    options = FitOptions(epochs=3, save_at=[1, 2], **FAST)
    result = train(build("resnet8_narrow", seed=0), "synthetic", "baseline", options)
    assert result.test_accuracy == ((1, 0.9), (2, 0.4), (3, 0.6))
    assert result.final_accuracy == 0.6 and result.accuracy_by_epoch[1] == 0.9


def test_evaluates_only_where_asked_and_trains_the_same(monkeypatch):
    calls = []
    real = training.evaluate_tensors
    monkeypatch.setattr(training, "evaluate_tensors", lambda *a, **k: calls.append(1) or real(*a, **k))
    handed = {}
    every = FitOptions(epochs=3, save_at=[1, 2], seed=4, **FAST)
    assert FitOptions(epochs=3, save_at=[1, 2], evaluate_at=[1], stop_after=2).evaluate_epochs == [1, 2]
    a, b = build("resnet8_narrow", seed=0), build("resnet8_narrow", seed=0)
    r_every = train(a, "synthetic", "baseline", every)
    assert len(calls) == 3
    calls.clear()
    some = every.replace(evaluate_at=[2], on_checkpoint=lambda c: handed.update({c.epoch: c.test_accuracy}))
    r_some = train(b, "synthetic", "baseline", some)
    assert len(calls) == 2  # epoch 2 as asked, epoch 3 the last
    assert (
        r_some.test_accuracy == r_every.test_accuracy[1:] and r_some.final_accuracy == r_every.final_accuracy
    )
    assert math.isnan(handed[1]) and handed[2] == r_every.test_accuracy[1][1]
    _assert_same(_weights(a), _weights(b))  # an evaluation changes nothing in the training


def test_learns_the_synthetic_set_and_evaluate_agrees():
    model = build("resnet8_narrow", seed=0)
    options = FitOptions(epochs=3, seed=0, train_subset=512, device="cpu", progress=False)
    result = train(model, "synthetic", "baseline", options)
    assert result.final_accuracy > 0.5  # chance is 0.1
    assert evaluate(model, "synthetic") == pytest.approx(result.final_accuracy)
    assert result.train_images_per_s > 0 and math.isfinite(result.wall_time_s)
    assert [e for e, _ in result.epoch_seconds] == [1, 2, 3]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.final_accuracy = 1.0


def test_no_progress_output_when_not_a_terminal(capsys):
    options = FitOptions(epochs=1, progress=None, train_subset=64, test_subset=16, device="cpu")
    train(build("resnet8_narrow", seed=0), "synthetic", "baseline", options)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# ---------------------------------------------------------------- bad input before training


@pytest.fixture
def data_must_not_load(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("data was loaded before the input was checked")

    monkeypatch.setattr(datasets, "load", fail)


ONE_EPOCH = FitOptions(epochs=1)


def test_channel_mismatch_caught_before_loading(data_must_not_load):
    with pytest.raises(ValueError, match=r"3-channel input but fashion-mnist images have 1.*in_channels=1"):
        train(build("resnet8_narrow"), "fashion-mnist", "baseline", ONE_EPOCH)


def test_class_mismatch_caught_before_loading(data_must_not_load):
    with pytest.raises(ValueError, match=r"100 outputs but cifar10 has 10 classes.*num_classes=10"):
        train(build("vgg6_narrow", num_classes=100), "cifar10", "baseline", ONE_EPOCH)


def test_mismatch_for_a_plain_module(data_must_not_load):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(7))
    with pytest.raises(ValueError, match="7 outputs but synthetic has 10 classes"):
        train(net, "synthetic", "baseline", ONE_EPOCH)


def test_unknown_recipe_in_train(data_must_not_load):
    with pytest.raises(UnknownNameError, match="Did you mean 'mixup'"):
        train(build("resnet8_narrow"), "synthetic", "mix-up", ONE_EPOCH)


def test_unknown_dataset_in_train(data_must_not_load):
    with pytest.raises(UnknownNameError, match="Did you mean 'fashion-mnist'"):
        train(build("resnet8_narrow", in_channels=1), "fashion_mnist", "baseline", ONE_EPOCH)


@pytest.mark.slow
def test_compiled_training_runs_and_probes_see_through_the_wrapper():
    """torch.compile on CPU (about 30 s of compilation on 2 cores)."""
    from crlm_bench.vision.models import probes

    model = build("resnet8_narrow", seed=0)
    result = train(model, "synthetic", "mixup", FitOptions(epochs=1, compile=True, **FAST))
    assert 0 <= result.final_accuracy <= 1
    assert [p.name for p in probes(torch.compile(model))] == [p.name for p in probes(model)]
