"""Evaluation: a model is checked against the data set before anything runs, and test accuracy is
measured in float32 on the evaluation view, leaving the model's mode as it was."""

from __future__ import annotations

import pytest
import torch

from crlm_bench.vision import datasets
from crlm_bench.vision.evaluation import check_compatible, evaluate, evaluate_tensors, resolve_device
from crlm_bench.vision.models import build


@pytest.mark.parametrize(
    "model, dataset, match",
    [
        (lambda: build("resnet8_narrow"), "fashion-mnist", r"3-channel input but fashion-mnist images have"),
        (lambda: build("vgg6_narrow", num_classes=100), "cifar10", r"100 outputs but cifar10 has 10 classes"),
        (
            lambda: torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(7)),
            "synthetic",
            "7 outputs but synthetic has 10 classes",
        ),
    ],
)
def test_check_compatible_names_the_mismatch(model, dataset, match):
    with pytest.raises(ValueError, match=match):
        check_compatible(model(), dataset)


def test_check_compatible_accepts_a_fitting_model_and_says_how_to_build_one():
    check_compatible(build("resnet8_narrow", in_channels=1), "fashion-mnist")
    with pytest.raises(ValueError, match=r"build\('resnet8_narrow', num_classes=10, in_channels=1\)"):
        check_compatible(build("resnet8_narrow"), "fashion-mnist")


def test_evaluate_matches_evaluate_tensors_and_keeps_the_mode():
    model = build("resnet8_narrow", seed=0).train()
    ds = datasets.load("synthetic", "test")
    expected = evaluate_tensors(model.eval(), ds.images, ds.targets, ds.info, batch_size=64)
    model.train()
    assert evaluate(model, "synthetic", batch_size=64) == expected
    assert model.training  # restored
    assert 0 <= expected <= 1


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
