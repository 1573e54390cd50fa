"""The paper's reference values, as data, for side-by-side columns in verdicts and reports.

Every number here was read off a figure published with the paper (its repository's
``figures/*.png``) by pixel position, or computed from such readings: about ±0.02 accuracy points,
±0.05 on gaps, ±10 % on MAPC (``docs/design.md``, "Reference values"). The paper gives no tables
for them. Each value therefore carries a ``source`` saying which figure it was read from, and reports
must show it as "read from the paper's figure …", never as an exact value.

Names follow the harness: datasets ``cifar10`` / ``cifar100``; models ``resnet18`` … ``vgg19``;
recipes ``baseline``, ``manifold_mixup``, ``mixup``, ``no_regularization``. Accuracies are in
percent, as in the paper (the harness measures fractions; multiply by 100 to compare).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from crlm_bench.vision import models

__all__ = [
    "PAPER_DATASETS",
    "PAPER_MODELS",
    "PaperValue",
    "PaperPoint",
    "PaperProfile",
    "PaperRegulariser",
    "ACCURACY_AND_GAP",
    "GAP_ACCURACY_CORRELATION",
    "CHECKPOINT_PEARSON_RANGE",
    "CHECKPOINT_SLOPE",
    "MAPC_PROFILES",
    "UNTRAINED_LAST_PROBE",
    "UNTRAINED_VGG_COLLAPSE",
    "REGULARISERS",
    "is_paper_cell",
    "paper_point",
    "paper_points",
    "paper_profile",
    "paper_regulariser",
    "source",
]

PAPER_DATASETS = ("cifar10", "cifar100")
PAPER_MODELS = models.PAPER_MODELS  # the six CIFAR models of the paper, in its order


def source(figure: str, how: str = "read from") -> str:
    """The source text of a value: ``"read from the paper's figure common_mapc"``."""
    return f"{how} the paper's figure {figure}"


_GAP_FIGURE = "acc_vs_mapc_ngap"
_PROFILE_FIGURE = "common_mapc"
_UNTRAINED_FIGURE = "mapc_rand_n_reg"
_REG_FIGURE = "mapc_reg"


@dataclass(frozen=True)
class PaperValue:
    """One number read from the paper, with where it came from. ``note`` adds a caveat."""

    value: float
    source: str
    note: str = ""

    def __float__(self) -> float:
        return float(self.value)


@dataclass(frozen=True)
class PaperPoint:
    """One network of the left panels of figure acc_vs_mapc_ngap: test accuracy (%) and gap."""

    dataset: str
    model: str
    accuracy_percent: float
    gap: float
    note: str = ""
    source: str = source(_GAP_FIGURE)


@dataclass(frozen=True)
class PaperProfile:
    """A trained network's MAPC profile on CIFAR-10 (figure common_mapc), as far as it was read.

    ``plateau`` holds the per-probe values of the latent probes before the last two where the
    figure was read probe by probe (ResNet18 only); otherwise it is empty and ``plateau_band``,
    the band all six networks' plateaus lie in, stands in for it.
    """

    dataset: str
    model: str
    input: float
    plateau: tuple[float, ...]
    plateau_band: tuple[float, float]
    penultimate: float
    last: float
    source: str = source(_PROFILE_FIGURE)

    @property
    def read_per_probe(self) -> bool:
        return bool(self.plateau)

    @property
    def first_latent(self) -> float:
        """The first latent probe's MAPC; the band's lower edge where not read per probe (a bound)."""
        return self.plateau[0] if self.plateau else self.plateau_band[0]

    @property
    def plateau_span(self) -> float:
        """max/min over the plateau; the band's ratio where not read per probe (an upper bound)."""
        low, high = (min(self.plateau), max(self.plateau)) if self.plateau else self.plateau_band
        return high / low

    @property
    def rise(self) -> float:
        return self.first_latent / self.input

    @property
    def final_rise(self) -> float:
        return self.last / self.penultimate

    @property
    def plateau_median(self) -> float:
        values = sorted(self.plateau)
        if not values:
            return math.sqrt(self.plateau_band[0] * self.plateau_band[1])
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else 0.5 * (values[mid - 1] + values[mid])


@dataclass(frozen=True)
class PaperRegulariser:
    """One row of figure mapc_reg (ResNet50 on CIFAR-10): accuracy (%), plateau range, last probe."""

    recipe: str
    accuracy_percent: float
    plateau_range: tuple[float, float]
    last: float
    note: str = ""
    source: str = source(_REG_FIGURE)

    @property
    def plateau_typical(self) -> float:
        """Geometric middle of the plateau range (the figure's y axis is logarithmic)."""
        low, high = self.plateau_range
        return math.sqrt(low * high)


# ---------------------------------------------------------------------------------------------
# figure acc_vs_mapc_ngap

_POINTS = [
    PaperPoint("cifar10", "resnet18", 95.61, 7.95),
    PaperPoint("cifar10", "resnet50", 95.69, 13.81),
    PaperPoint("cifar10", "resnet101", 95.71, 18.64),
    PaperPoint("cifar10", "vgg13", 94.35, 5.68),
    PaperPoint("cifar10", "vgg16", 94.18, 5.69),
    PaperPoint("cifar10", "vgg19", 93.75, 4.99),
    PaperPoint("cifar100", "resnet101", 80.11, 4.37),
    PaperPoint("cifar100", "resnet18", 78.11, 2.81, "overlaps ResNet50's point; ≈"),
    PaperPoint("cifar100", "resnet50", 78.11, 2.81, "overlaps ResNet18's point; ≈"),
    PaperPoint("cifar100", "vgg13", 75.54, 2.43),
    PaperPoint("cifar100", "vgg16", 74.12, 1.74),
    PaperPoint("cifar100", "vgg19", 73.42, 1.12),
]

#: (dataset, model) → test accuracy (%) and NMAPC gap of the final network.
ACCURACY_AND_GAP: dict[tuple[str, str], PaperPoint] = {(p.dataset, p.model): p for p in _POINTS}

_CORRELATION_SOURCE = source(_GAP_FIGURE, "computed from the points read from")

#: dataset → {"pearson", "spearman"} of the gap against accuracy across the six models.
GAP_ACCURACY_CORRELATION: dict[str, dict[str, PaperValue]] = {
    "cifar10": {
        "pearson": PaperValue(0.80, _CORRELATION_SOURCE),
        "spearman": PaperValue(0.94, _CORRELATION_SOURCE),
    },
    "cifar100": {
        "pearson": PaperValue(0.95, _CORRELATION_SOURCE),
        "spearman": PaperValue(1.0, _CORRELATION_SOURCE),
    },
}

_CHECKPOINT_SOURCE = (
    source(_GAP_FIGURE, "computed from the checkpoints read from")
    + " (right panel, 8–9 checkpoints per model; taken to be CIFAR-10)"
)

#: Pearson r of gap against accuracy along training, per model: the range over the six models.
CHECKPOINT_PEARSON_RANGE = (
    PaperValue(0.97, _CHECKPOINT_SOURCE),
    PaperValue(0.99, _CHECKPOINT_SOURCE),
)

#: model → slope of the gap per accuracy point (percent) along training.
CHECKPOINT_SLOPE: dict[str, PaperValue] = {
    model: PaperValue(value, _CHECKPOINT_SOURCE)
    for model, value in {
        "resnet18": 0.81, "resnet50": 0.94, "resnet101": 1.41,
        "vgg13": 0.36, "vgg16": 0.43, "vgg19": 0.33,
    }.items()
}  # fmt: skip

# ---------------------------------------------------------------------------------------------
# figure common_mapc (CIFAR-10)

_INPUT_MAPC = 1.6e-4
_PLATEAU_BAND = (0.015, 0.25)

#: (dataset, model) → MAPC profile of the trained network (CIFAR-10 only).
MAPC_PROFILES: dict[tuple[str, str], PaperProfile] = {
    ("cifar10", "resnet18"): PaperProfile(
        "cifar10", "resnet18", _INPUT_MAPC,
        (0.062, 0.081, 0.0385, 0.040, 0.075, 0.128, 0.212, 0.117), _PLATEAU_BAND, 0.218, 3.01,
    ),
    ("cifar10", "resnet50"): PaperProfile("cifar10", "resnet50", _INPUT_MAPC, (), _PLATEAU_BAND, 0.12, 3.5),
    ("cifar10", "resnet101"): PaperProfile("cifar10", "resnet101", _INPUT_MAPC, (), _PLATEAU_BAND, 0.11, 3.0),
    ("cifar10", "vgg13"): PaperProfile("cifar10", "vgg13", _INPUT_MAPC, (), _PLATEAU_BAND, 0.12, 3.9),
    ("cifar10", "vgg16"): PaperProfile("cifar10", "vgg16", _INPUT_MAPC, (), _PLATEAU_BAND, 0.09, 3.8),
    ("cifar10", "vgg19"): PaperProfile("cifar10", "vgg19", _INPUT_MAPC, (), _PLATEAU_BAND, 0.045, 1.6),
}  # fmt: skip

# ---------------------------------------------------------------------------------------------
# figure mapc_rand_n_reg (networks at initialisation)

_UNTRAINED_SOURCE = source(_UNTRAINED_FIGURE) + " (taken to be CIFAR-10)"

#: (dataset, model) → last-probe MAPC at initialisation. ResNet18 is not in the figure.
UNTRAINED_LAST_PROBE: dict[tuple[str, str], PaperValue] = {
    ("cifar10", "vgg13"): PaperValue(0.0, _UNTRAINED_SOURCE),
    ("cifar10", "vgg16"): PaperValue(0.0, _UNTRAINED_SOURCE),
    ("cifar10", "vgg19"): PaperValue(1e-13, _UNTRAINED_SOURCE, "≈"),
    ("cifar10", "resnet50"): PaperValue(1e-10, _UNTRAINED_SOURCE, "≈"),
    ("cifar10", "resnet101"): PaperValue(1e-10, _UNTRAINED_SOURCE, "≈"),
}

#: The untrained VGGs' collapse in the same figure (VGG13/16/19): MAPC between these bounds from
#: this relative depth on, the last probe 0 or about 1e-13 (drawn beside the authors' preset).
UNTRAINED_VGG_COLLAPSE = (0.67, (1e-11, 1e-8), _UNTRAINED_SOURCE)

# ---------------------------------------------------------------------------------------------
# figure mapc_reg (ResNet50 on CIFAR-10)

#: (dataset, model) → recipe → the regulariser's row.
REGULARISERS: dict[tuple[str, str], dict[str, PaperRegulariser]] = {
    ("cifar10", "resnet50"): {
        "baseline": PaperRegulariser("baseline", 95.7, (0.03, 0.1), 3.6, "weight decay + augmentation"),
        "manifold_mixup": PaperRegulariser("manifold_mixup", 95.5, (0.04, 0.25), 6.6),
        "mixup": PaperRegulariser("mixup", 95.1, (0.003, 0.015), 1.8),
        "no_regularization": PaperRegulariser(
            "no_regularization", 90.6, (0.015, 0.3), 1.6, "≈ 0.015–0.03 early, rising to ≈ 0.3"
        ),
    }
}


# ---------------------------------------------------------------------------------------------
# look-ups


def is_paper_cell(dataset: str, model: str) -> bool:
    """Whether ``dataset``/``model`` is one of the paper's (CIFAR-10/100 × its six models)."""
    return dataset in PAPER_DATASETS and model in PAPER_MODELS


def paper_point(dataset: str, model: str) -> PaperPoint | None:
    return ACCURACY_AND_GAP.get((dataset, model))


def paper_points(dataset: str) -> list[PaperPoint]:
    """The paper's (accuracy, gap) points of one dataset; [] for a dataset the paper did not use."""
    return [p for p in _POINTS if p.dataset == dataset]


def paper_profile(dataset: str, model: str) -> PaperProfile | None:
    return MAPC_PROFILES.get((dataset, model))


def paper_regulariser(dataset: str, model: str, recipe: str) -> PaperRegulariser | None:
    return REGULARISERS.get((dataset, model), {}).get(recipe)
