"""The paper's six CIFAR classifiers, small networks of the same families, and their probe points.

Architectures (the CIFAR variants the paper trained, as in the widely used ``pytorch-cifar`` models):

- ResNets (He et al. 2016): a 3×3 stride-1 stem (Conv–BN–ReLU), **no max-pool**, four stages of
  BasicBlocks (ResNet18: 2-2-2-2) or Bottlenecks (ResNet50: 3-4-6-3, ResNet101: 3-4-23-3) with
  widths 64-128-256-512, 1×1 convolution + BN shortcuts where the shape changes, global average
  pooling and one ``Linear``.
- VGGs (Simonyan & Zisserman 2015) with BatchNorm: Conv(bias)–BN–ReLU blocks separated by five 2×2
  max-pools, a (1×1) average pool and one ``Linear(512, classes)``.

Parameter counts for 32×32 CIFAR input are exactly the paper's (``PAPER_PARAMETER_COUNTS``, from
the paper's code). Weights are initialised by PyTorch's defaults, as in the code the paper
used; the untrained-network claim depends on this.

Input size. Pooling is done by modules so that it can be probed: ``avgpool`` is an
``nn.AdaptiveAvgPool2d(1)``, so any input size gives one feature per channel. VGG max-pools use
``ceil_mode=True``: on even sizes (32 → 16 → 8 → 4 → 2 → 1, CIFAR) this is identical to the usual
pool; on 28×28 Fashion-MNIST it gives 28 → 14 → 7 → 4 → 2 → 1 instead of failing at 1 → 0. So images
are used at their native size (no padding of Fashion-MNIST), and parameter counts do not depend on
input size.

Probes (:func:`probes`) follow the paper (``docs/design.md``): ResNets — input, every residual
block's output, the average pool, the final linear layer; VGGs — input, each of the five max-pools,
the final linear layer. Relative depth = the number of convolutions up to and including the probe
(1×1 shortcut convolutions included, the stem counts 1, the average pool +1, the linear layer +1)
over the total.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import torch
from torch import nn

from crlm_bench.registry import Registry

__all__ = [
    "MODELS",
    "PAPER_MODELS",
    "PAPER_PARAMETER_COUNTS",
    "SMALL_MODELS",
    "CifarResNet",
    "CifarVGG",
    "Probe",
    "build",
    "count_parameters",
    "list_models",
    "mixing_points",
    "probes",
]


# --------------------------------------------------------------------------------------------
# ResNet


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with BN, identity or 1×1-conv shortcut (He et al. 2016, fig. 2)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3, 1×1 expand (×4), with BN; identity or 1×1-conv shortcut."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Module:
    if stride == 1 and in_planes == out_planes:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride, bias=False), nn.BatchNorm2d(out_planes))


class CifarResNet(nn.Module):
    """A CIFAR ResNet: 3×3 stem, no max-pool, stages of residual blocks, avgpool, one Linear.

    ``widths[i]`` is the number of planes of stage ``i`` (the first stage has stride 1, the others
    stride 2); ``blocks[i]`` its number of blocks. Submodules are named ``conv1``/``bn1`` (stem),
    ``layer1`` … ``layerK`` (each an ``nn.Sequential`` of blocks), ``avgpool`` and ``linear``.
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        blocks: Sequence[int],
        widths: Sequence[int],
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        arch: str = "resnet",
    ):
        super().__init__()
        if len(blocks) != len(widths) or not blocks:
            raise ValueError(
                f"blocks {list(blocks)} and widths {list(widths)} must be non-empty and of equal length"
            )
        self.arch, self.num_classes, self.in_channels = arch, num_classes, in_channels
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        in_planes = widths[0]
        self.stage_names: list[str] = []
        for i, (n, planes) in enumerate(zip(blocks, widths)):
            layers = []
            for j in range(n):
                stride = 1 if (i == 0 or j > 0) else 2
                layers.append(block(in_planes, planes, stride))
                in_planes = planes * block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*layers))
            self.stage_names.append(f"layer{i + 1}")
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.linear = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        for name in self.stage_names:
            out = getattr(self, name)(out)
        return self.linear(self.flatten(self.avgpool(out)))

    def _probe_points(self) -> list[tuple[str, nn.Module | None, int]]:
        """(name, module, cost) in forward order; cost = convolutions (or +1) the unit adds."""
        units: list[tuple[str, nn.Module | None, int]] = [("input", None, 0)]
        stem_cost = 1
        for name in self.stage_names:
            for j, blk in enumerate(getattr(self, name)):
                units.append((f"{name}.{j}", blk, stem_cost + _n_convs(blk)))
                stem_cost = 0
        units += [("avgpool", self.avgpool, 1), ("linear", self.linear, 1)]
        return units

    def _stage_ends(self) -> list[nn.Module]:
        return [getattr(self, name) for name in self.stage_names]


# --------------------------------------------------------------------------------------------
# VGG

VGG_CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [
        64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
        512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
    ],
}  # fmt: skip


class CifarVGG(nn.Module):
    """VGG with BatchNorm for small images: ``features`` (Conv–BN–ReLU blocks and five ``ceil_mode``
    max-pools named ``pool1`` … ``pool5``), ``avgpool`` (adaptive, 1×1), one ``linear``.

    ``config`` lists conv widths and ``"M"`` for a max-pool, as in the VGG paper's table 1.
    """

    def __init__(
        self,
        config: Sequence[int | str],
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        arch: str = "vgg",
    ):
        super().__init__()
        self.arch, self.num_classes, self.in_channels = arch, num_classes, in_channels
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels, stage, conv = in_channels, 1, 1
        for item in config:
            if item == "M":
                layers[f"pool{stage}"] = nn.MaxPool2d(2, 2, ceil_mode=True)
                stage, conv = stage + 1, 1
            else:
                width = int(item)
                layers[f"conv{stage}_{conv}"] = nn.Conv2d(channels, width, 3, padding=1)
                layers[f"bn{stage}_{conv}"] = nn.BatchNorm2d(width)
                layers[f"relu{stage}_{conv}"] = nn.ReLU(inplace=True)
                channels, conv = width, conv + 1
        self.features = nn.Sequential(layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.flatten(self.avgpool(self.features(x))))

    def _probe_points(self) -> list[tuple[str, nn.Module | None, int]]:
        units: list[tuple[str, nn.Module | None, int]] = [("input", None, 0)]
        convs = 0
        for name, module in self.features.named_children():
            convs += _n_convs(module)
            if isinstance(module, nn.MaxPool2d):
                units.append((f"features.{name}", module, convs))
                convs = 0
        # The average pool is counted (+1) but not probed (docs/design.md, "Probes and depth").
        units.append(("linear", self.linear, convs + 1 + 1))
        return units

    def _stage_ends(self) -> list[nn.Module]:
        return [m for m in self.features.children() if isinstance(m, nn.MaxPool2d)]


def _n_convs(module: nn.Module) -> int:
    return sum(isinstance(m, nn.Conv2d) for m in module.modules())


# --------------------------------------------------------------------------------------------
# Registry

ModelBuilder = Callable[[int, int], nn.Module]
MODELS: Registry[ModelBuilder] = Registry("model")

#: The six networks of the paper.
PAPER_MODELS = ("resnet18", "resnet50", "resnet101", "vgg13", "vgg16", "vgg19")
#: Small networks of the same families, for Fashion-MNIST on a CPU.
SMALL_MODELS = ("resnet8_narrow", "resnet14_narrow", "vgg6_narrow", "vgg11_narrow")

#: Parameter counts of the paper's models on 32×32 input: {name: (10 classes, 100 classes)}.
PAPER_PARAMETER_COUNTS: dict[str, tuple[int, int]] = {
    "resnet18": (11_173_962, 11_220_132),
    "resnet50": (23_520_842, 23_705_252),
    "resnet101": (42_512_970, 42_697_380),
    "vgg13": (9_416_010, 9_462_180),
    "vgg16": (14_728_266, 14_774_436),
    "vgg19": (20_040_522, 20_086_692),
}


def _resnet(name: str, block, blocks, widths) -> None:
    def builder(num_classes: int, in_channels: int) -> nn.Module:
        return CifarResNet(block, blocks, widths, num_classes=num_classes, in_channels=in_channels, arch=name)

    builder.__doc__ = f"{name}: {block.__name__} × {list(blocks)}, widths {list(widths)}."
    MODELS.add(name, builder)


def _vgg(name: str, config) -> None:
    def builder(num_classes: int, in_channels: int) -> nn.Module:
        return CifarVGG(config, num_classes=num_classes, in_channels=in_channels, arch=name)

    builder.__doc__ = f"{name}: {config}."
    MODELS.add(name, builder)


_resnet("resnet18", BasicBlock, (2, 2, 2, 2), (64, 128, 256, 512))
_resnet("resnet50", Bottleneck, (3, 4, 6, 3), (64, 128, 256, 512))
_resnet("resnet101", Bottleneck, (3, 4, 23, 3), (64, 128, 256, 512))
_vgg("vgg13", VGG_CONFIGS["vgg13"])
_vgg("vgg16", VGG_CONFIGS["vgg16"])
_vgg("vgg19", VGG_CONFIGS["vgg19"])

# Small networks (harness's own; not in the paper). Three stages with widths 16-32-64 as He et al.'s
# CIFAR ResNets (2016, sec. 4.2), but with 1×1-conv shortcuts like the big models: "resnet8_narrow"
# has one BasicBlock per stage, "resnet14_narrow" two. VGGs at a quarter of the width with five
# max-pools, so their probes match the big VGGs': "vgg11_narrow" is VGG11 (config A) / 4,
# "vgg6_narrow" one convolution per stage.
_resnet("resnet8_narrow", BasicBlock, (1, 1, 1), (16, 32, 64))
_resnet("resnet14_narrow", BasicBlock, (2, 2, 2), (16, 32, 64))
_vgg("vgg6_narrow", [16, "M", 32, "M", 64, "M", 128, "M", 128, "M"])
_vgg("vgg11_narrow", [w if w == "M" else int(w) // 4 for w in VGG_CONFIGS["vgg11"]])


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style pattern, e.g. ``list_models('resnet*')``."""
    return MODELS.names(pattern)


def build(name: str, num_classes: int = 10, in_channels: int = 3, *, seed: int | None = None) -> nn.Module:
    """Build the registered model ``name`` with freshly initialised weights.

    ``seed``, if given, makes the initialisation reproducible without touching the caller's global
    RNG (the global state is forked and restored). Raises :class:`~crlm_bench.registry.UnknownNameError`
    for an unknown name, listing the known names and the closest match.
    """
    builder = MODELS.get(name)
    for label, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}")
    if seed is None:
        return builder(num_classes, in_channels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder(num_classes, in_channels)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------------------------
# Probes


@dataclass(frozen=True, eq=False)
class Probe:
    """A point in the network whose output is a representation to be measured.

    ``name`` is the module's qualified name in ``model.named_modules()`` (``"input"`` for the
    input, whose ``module`` is ``None``); hook ``module`` with ``register_forward_hook`` to read
    the representation. ``depth`` / ``total_depth`` is the relative depth as a fraction of
    convolution counts (see module docstring); ``relative_depth`` is that fraction as a float.
    """

    name: str
    module: nn.Module | None
    depth: int
    total_depth: int

    @property
    def relative_depth(self) -> float:
        return self.depth / self.total_depth

    @property
    def relative_depth_fraction(self) -> Fraction:
        return Fraction(self.depth, self.total_depth)

    def __repr__(self) -> str:
        return f"Probe({self.name!r}, depth={self.depth}/{self.total_depth})"


def _unwrap(model: nn.Module) -> nn.Module:
    # torch.compile wraps the module in an OptimizedModule holding the original as _orig_mod.
    return getattr(model, "_orig_mod", model)


def probes(model: nn.Module) -> list[Probe]:
    """The probe points of ``model``, in forward order, with their relative depths.

    ResNet18 gives 11 probes at depths 0, 3, 5, 8, 10, 13, 15, 18, 20, 21, 22 of 22; ResNet50 19
    of 55; ResNet101 36 of 106; VGGs 7 (input, five max-pools, linear).
    """
    inner = _unwrap(model)
    if not isinstance(inner, (CifarResNet, CifarVGG)):
        raise TypeError(
            f"probes() knows the probe points of CifarResNet and CifarVGG models, not "
            f"{type(inner).__name__}; build the model with crlm_bench.vision.models.build("
            f"name) using one of: {', '.join(list_models())}"
        )
    units = inner._probe_points()
    total = sum(cost for _, _, cost in units)
    out, depth = [], 0
    for name, module, cost in units:
        depth += cost
        out.append(Probe(name, module, depth, total))
    return out


def mixing_points(model: nn.Module) -> list[nn.Module | None]:
    """Where manifold mixup may mix (Verma et al. 2019): the input (``None``), the output of the
    first stage and the output of the second stage (``layer1``/``layer2`` for ResNets,
    ``pool1``/``pool2`` for VGGs)."""
    inner = _unwrap(model)
    if not isinstance(inner, (CifarResNet, CifarVGG)):
        raise TypeError(f"manifold mixup needs a CifarResNet or CifarVGG model, got {type(inner).__name__}")
    return [None, *inner._stage_ends()[:2]]
