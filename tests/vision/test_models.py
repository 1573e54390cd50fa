"""Models: registry, the paper's parameter counts, probe lists and relative depths, input sizes."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from crlm_bench.registry import UnknownNameError
from crlm_bench.vision import models
from crlm_bench.vision.models import PAPER_MODELS, SMALL_MODELS, build, count_parameters, probes

# ------------------------------------------------- test data (docs/design.md; the paper's figures)

#: Parameter counts of the paper's models on 32×32 input: (10 classes, 100 classes).
PARAMETER_COUNTS = {
    "resnet18": (11_173_962, 11_220_132),
    "resnet50": (23_520_842, 23_705_252),
    "resnet101": (42_512_970, 42_697_380),
    "vgg13": (9_416_010, 9_462_180),
    "vgg16": (14_728_266, 14_774_436),
    "vgg19": (20_040_522, 20_086_692),
}

#: (number of probes, total depth, depths of the probes where the paper gives them).
PROBE_DEPTHS = {
    "resnet18": (11, 22, [0, 3, 5, 8, 10, 13, 15, 18, 20, 21, 22]),
    "resnet50": (19, 55, None),
    "resnet101": (36, 106, None),
    "vgg13": (7, 12, [0, 2, 4, 6, 8, 10, 12]),
    "vgg16": (7, 15, [0, 2, 4, 7, 10, 13, 15]),
    "vgg19": (7, 18, [0, 2, 4, 8, 12, 16, 18]),
}


def build_meta(name: str, num_classes: int = 10, in_channels: int = 3):
    """Build on the meta device: shapes and parameter counts without allocating weights."""
    with torch.device("meta"):
        return build(name, num_classes, in_channels)


# ---------------------------------------------------------------- registry


def test_registry():
    assert set(models.list_models()) == set(PAPER_MODELS) | set(SMALL_MODELS)
    assert models.list_models("resnet*") == [
        "resnet101",
        "resnet14_narrow",
        "resnet18",
        "resnet50",
        "resnet8_narrow",
    ]
    assert len(SMALL_MODELS) >= 2
    assert any(n.startswith("resnet") for n in SMALL_MODELS) and any(
        n.startswith("vgg") for n in SMALL_MODELS
    )


def test_unknown_model_lists_names_and_closest():
    with pytest.raises(UnknownNameError) as err:
        build("resnet-18")
    msg = str(err.value)
    assert "Did you mean 'resnet18'?" in msg
    for name in models.list_models():
        assert name in msg


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_build_arguments(bad):
    with pytest.raises(ValueError, match="positive integer"):
        build("vgg6_narrow", num_classes=bad)


def test_build_seed_is_reproducible_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a, b = build("resnet8_narrow", seed=3), build("resnet8_narrow", seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    c = build("resnet8_narrow", seed=4)
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


# ---------------------------------------------------------------- parameter counts


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_parameter_counts(name):
    assert (
        count_parameters(build_meta(name, 10)),
        count_parameters(build_meta(name, 100)),
    ) == PARAMETER_COUNTS[name]
    assert models.PAPER_PARAMETER_COUNTS[name] == PARAMETER_COUNTS[name]
    # Input channels change only the stem.
    assert count_parameters(build_meta(name, 10, 1)) < PARAMETER_COUNTS[name][0]


def test_architecture_details():
    r18 = build_meta("resnet18")
    assert r18.conv1.kernel_size == (3, 3) and r18.conv1.stride == (1, 1)  # CIFAR stem
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in r18.modules())  # no max-pool
    assert isinstance(r18.avgpool, torch.nn.AdaptiveAvgPool2d)  # pooling is a module
    r50 = build_meta("resnet50")
    assert type(r50.layer3[0]).__name__ == "Bottleneck" and len(r50.layer3) == 6  # not a ResNet18
    assert len(build_meta("resnet101").layer3) == 23
    vgg = build_meta("vgg16")
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in vgg.modules()) == 13
    linears = [m for m in vgg.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 1 and (linears[0].in_features, linears[0].out_features) == (512, 10)


# ---------------------------------------------------------------- probes


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_paper_probes(name):
    count, total, depths = PROBE_DEPTHS[name]
    ps = probes(build_meta(name))
    assert len(ps) == count
    assert all(p.total_depth == total for p in ps)
    if depths is not None:
        assert [p.depth for p in ps] == depths
    assert ps[0].name == "input" and ps[0].module is None and ps[0].relative_depth == 0
    assert ps[-1].name == "linear" and ps[-1].relative_depth == 1
    assert all(a.depth < b.depth for a, b in zip(ps, ps[1:]))
    assert ps[3].relative_depth_fraction == Fraction(ps[3].depth, total)
    assert ps[3].relative_depth == pytest.approx(ps[3].depth / total)


def test_probe_names_and_modules():
    model = build_meta("resnet50")
    ps = probes(model)
    named = dict(model.named_modules())
    assert [p.name for p in ps[1:4]] == ["layer1.0", "layer1.1", "layer1.2"]
    assert ps[-2].name == "avgpool" and ps[-2].depth == 54
    for p in ps[1:]:
        assert named[p.name] is p.module  # the name is the module's qualified name
    vgg = build_meta("vgg13")
    assert [p.name for p in probes(vgg)] == ["input"] + [f"features.pool{i}" for i in range(1, 6)] + [
        "linear"
    ]
    assert all(isinstance(p.module, torch.nn.MaxPool2d) for p in probes(vgg)[1:6])


def test_resnet_depth_counting():
    # ResNet50: stem 1, 16 bottlenecks × 3, 4 shortcut convs (layer1.0 too: 64 → 256), avgpool, linear.
    ps = probes(build_meta("resnet50"))
    assert ps[1].depth == 1 + 3 + 1  # stem + first bottleneck + its shortcut
    assert ps[4].depth == ps[3].depth + 3 + 1  # layer2.0 has a shortcut
    ps101 = probes(build_meta("resnet101"))
    assert [p.depth for p in ps101[-3:]] == [104, 105, 106]


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_small_model_probes(name):
    ps = probes(build(name, 10, 1))
    assert ps[0].name == "input" and ps[-1].name == "linear" and ps[-1].relative_depth == 1
    inner = [p.name for p in ps[1:-1]]
    if name.startswith("resnet"):
        assert inner[-1] == "avgpool" and all(n.startswith("layer") for n in inner[:-1])
    else:
        assert inner == [f"features.pool{i}" for i in range(1, 6)]


def test_probes_of_other_modules_is_an_error():
    with pytest.raises(TypeError, match="CifarResNet and CifarVGG"):
        probes(torch.nn.Linear(3, 4))


# ---------------------------------------------------------------- forward passes and hooks


def _hook_all(model):
    outputs = {}

    def record(name):
        def hook(module, inputs, output):
            outputs[name] = output.shape  # returns None: the output is not replaced

        return hook

    for p in probes(model)[1:]:
        p.module.register_forward_hook(record(p.name))
    return outputs


@pytest.mark.parametrize("name", SMALL_MODELS)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_small_models_run_on_both_sizes(name, shape):
    model = build(name, num_classes=10, in_channels=shape[0]).eval()
    outputs = _hook_all(model)
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, 10)
    assert list(outputs) == [p.name for p in probes(model)[1:]]  # every probe fires, in order


def test_vgg_on_28x28_pools_with_ceil_mode():
    model = build("vgg13", num_classes=10, in_channels=1).eval()
    outputs = _hook_all(model)
    model(torch.randn(2, 1, 28, 28))
    sizes = [outputs[f"features.pool{i}"][-1] for i in range(1, 6)]
    assert sizes == [14, 7, 4, 2, 1]


def test_vgg_on_32x32_pools_as_usual():
    model = build("vgg11_narrow").eval()
    outputs = _hook_all(model)
    model(torch.randn(2, 3, 32, 32))
    assert [outputs[f"features.pool{i}"][-1] for i in range(1, 6)] == [16, 8, 4, 2, 1]


def test_resnet18_forward_and_avgpool_probe():
    model = build("resnet18", num_classes=100).eval()
    outputs = _hook_all(model)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    assert outputs["avgpool"] == (2, 512, 1, 1) and outputs["layer4.1"] == (2, 512, 4, 4)
    assert outputs["layer1.0"] == (2, 64, 32, 32)  # no max-pool after the stem


def test_mixing_points():
    r = build("resnet8_narrow")
    assert models.mixing_points(r) == [None, r.layer1, r.layer2]
    v = build("vgg6_narrow")
    assert models.mixing_points(v) == [None, v.features.pool1, v.features.pool2]
