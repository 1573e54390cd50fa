"""A cell: one trained network (a :class:`Training` run and a checkpoint epoch) and the settings of
its profiling (:class:`Measurement`).

Settings are frozen dataclasses that validate and normalise themselves on construction, so two
settings that mean the same thing compare equal and hash to the same key:

- ``Training.save_at`` is sorted, de-duplicated and always contains ``epochs``;
- ``Training.overrides`` (free-form ``(name, value)`` pairs such as ``lr`` or ``batch_size`` for the
  CPU budget) are sorted by name; a mapping is accepted and converted;
- ``Measurement.deviations`` (named deviations from the paper's procedure) are sorted.

Keys
----
A key is the SHA-256 (hex) of the canonical JSON (sorted keys, no whitespace, ASCII, no NaN) of
``{"format_version": FORMAT_VERSION, "kind": ..., "settings": to_dict()}``, with
``"profile_format": PROFILE_FORMAT`` added for a cell. ``Training.key`` names one training run,
shared by every checkpoint epoch in ``save_at``; ``Cell.key`` names one profile. Bump
:data:`FORMAT_VERSION` when the meaning of a setting changes, so old artifacts stop matching, and
:data:`PROFILE_FORMAT` when what a profile holds changes (old profiles are then recomputed and
their training runs reused).

Ids
---
``Cell.id`` is a readable name, ``{dataset}-{model}-{recipe}-s{seed}-e{at}``, with ``of{epochs}``
appended to the epoch when the checkpoint is not the last one::

    cifar10-resnet18-baseline-s0-e200
    cifar10-resnet18-baseline-s0-e50of200
    fashion-mnist-vgg16-mixup-s3-e30
    cifar10-resnet18-untrained-s0-e0

so ``pytest -k cifar10`` or ``-k resnet18`` selects naturally. The id names the network only: cells
that differ in ``overrides``, ``save_at`` or the measurement share an id, and only the key tells
them apart.

Parsing rule (:meth:`Cell.parse`): names are lowercase; a dataset name may contain hyphens
(``fashion-mnist``) but model and recipe names may not (use ``_``: ``wide_resnet``,
``manifold_mixup``). An id is read from the right: ``-e<at>[of<epochs>]``, ``-s<seed>``, the recipe,
then the model is the last hyphen-free token and everything before it is the dataset. Construction
refuses a model or recipe name with a hyphen, so every id parses back to its cell.

One module (about 575 lines, above the project's ~500) because the settings, their keys and ids
are one contract: splitting them would let a key and the id it names drift apart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from crlm_bench.files import canonical_json

__all__ = [
    "FORMAT_VERSION",
    "PROFILE_FORMAT",
    "RECIPE_NAMES",
    "UNTRAINED",
    "POINT_SPLITS",
    "PRECISIONS",
    "INPUT_PROBES",
    "MAX_TOGGLES",
    "MEASUREMENT_CHANGES",
    "AUGMENTED_POINTS",
    "Training",
    "Measurement",
    "Cell",
    "content_key",
]

#: Version of the key scheme and of the meaning of the settings; part of every key.
FORMAT_VERSION = 1
#: Version of what a profile holds; part of :attr:`Cell.key` only, so a new profile format
#: recomputes the profiles and keeps the training runs. 2: per-point values (``points.parquet``),
#: radius, undiluted and dimensionless MAPC, the resolution audit, one point per fit.
PROFILE_FORMAT = 2

#: The recipe names a cell may give: the vision layer's training recipes, and ``"untrained"``,
#: which means zero epochs (the network at its initialisation).
RECIPE_NAMES = ("baseline", "no_regularization", "mixup", "manifold_mixup", "untrained")
UNTRAINED = "untrained"

#: Which images are profiled. ``"test"``: the test set, unshuffled and unaugmented (default).
#: ``"train-augmented"``: the shuffled, augmented training loader, as the authors' released code
#: does (a defect of that code, kept only to reproduce its numbers).
POINT_SPLITS = ("test", "train-augmented")

PRECISIONS = ("float32", "float64")

#: How the input probe's neighbourhoods are built. ``"knn"``: K = 2d nearest neighbours on raw
#: 0-255 pixels, as in the paper (an under-determined fit); ``"perturbation"``: the same 2^toggles - 1
#: singular-value perturbations as every other probe; ``"both"``: measure both (default).
INPUT_PROBES = ("knn", "perturbation", "both")
#: Known deviations from the paper's procedure (Measurement.deviations): each one thing the
#: authors' released code does differently, usable alone or together (:data:`PRESETS`).
DEVIATIONS = {
    "svd_fit": "fit with the original per-point SVD of the displacements instead of the Gram route",
    "unscaled_fit": "fit at the neighbourhood's own scale, as the released code: pinv's relative cutoff "
    "then drops the quadratic terms of small neighbourhoods (about r < 1e-4 in float32)",
    "authors_neighbourhoods": "perturb the normalised image in float32, toggling min(rank, toggles) "
    "singular values, the rank being the smallest over a batch of 8 points (all truncated to it)",
    "point_among_neighbours": "count the point itself (a zero displacement) among its neighbours",
    "full_dim_zero": "a probe whose rounded TwoNN d is at least D gets zero curvatures, instead of d "
    "clipped to min(K, D) - 1",
}
#: Measurement presets (``--preset``): a name for settings and named deviations (:data:`DEVIATIONS`).
#: ``authors`` is the released code's procedure as far as it is a choice of measurement: float32
#: fits by SVD at the neighbourhood's own scale, its neighbourhoods, the point among its
#: neighbours, zero curvature where d >= D, and points from the augmented training images
#: (docs/design.md §6).
PRESETS: dict[str, dict[str, Any]] = {
    "authors": {
        "precision": "float32",
        "split": "train-augmented",
        "deviations": (
            "authors_neighbourhoods",
            "full_dim_zero",
            "point_among_neighbours",
            "svd_fit",
            "unscaled_fit",
        ),
    },
}

#: The change that measures at the points of the augmented training images (``split``
#: ``"train-augmented"``) and changes nothing else.
AUGMENTED_POINTS = "train_augmented"

#: Single changes of a measurement that an attribution compares with the faithful default
#: (:meth:`Measurement.changed`): float32 fits alone, each deviation alone, the augmented training
#: points alone, each preset whole.
MEASUREMENT_CHANGES = ("float32", *DEVIATIONS, AUGMENTED_POINTS, *PRESETS)

#: The paper toggles subsets of the 10 smallest nonzero singular values of each channel.
MAX_TOGGLES = 10

OverrideValue = str | int | float | bool | None

_DATASET_RE = re.compile(r"[a-z0-9][a-z0-9_.]*(?:-[a-z0-9_.]+)*")
_TOKEN_RE = re.compile(r"[a-z0-9][a-z0-9_.]*")  # model and recipe: no hyphen
_OPTION_RE = re.compile(r"[a-z_][a-z0-9_]*")  # override and deviation names
_ID_RE = re.compile(
    r"(?P<prefix>.+)-(?P<recipe>[^-]+)-s(?P<seed>0|[1-9][0-9]*)"
    r"-e(?P<at>0|[1-9][0-9]*)(?:of(?P<epochs>0|[1-9][0-9]*))?"
)


# ---------------------------------------------------------------------------------------------
# keys


def content_key(kind: str, settings: Mapping[str, Any], *, profile_format: int | None = None) -> str:
    """SHA-256 hex of the canonical JSON of ``settings`` with ``kind`` and :data:`FORMAT_VERSION`
    (and ``profile_format`` when given: a profile's key)."""
    payload: dict[str, Any] = {"format_version": FORMAT_VERSION, "kind": kind, "settings": settings}
    if profile_format is not None:
        payload["profile_format"] = profile_format
    return hashlib.sha256(canonical_json(payload).encode("ascii")).hexdigest()


# ---------------------------------------------------------------------------------------------
# field checks (shared by the dataclasses)


def _int(owner: str, name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{owner}.{name} must be an integer, got the bool {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{owner}.{name} must be an integer, got {type(value).__name__} {value!r}") from None
    if minimum is not None and value < minimum or maximum is not None and value > maximum:
        bounds = (
            f"between {minimum} and {maximum}"
            if minimum is not None and maximum is not None
            else f">= {minimum}"
            if minimum is not None
            else f"<= {maximum}"
        )
        raise ValueError(f"{owner}.{name} must be {bounds}, got {value}")
    return int(value)


def _choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{owner}.{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _name(owner: str, name: str, value: Any, pattern: re.Pattern[str], rule: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{owner}.{name} must be a string, got {type(value).__name__} {value!r}")
    if not pattern.fullmatch(value):
        raise ValueError(f"{owner}.{name} {value!r} is not a valid name: {rule}")
    return value


_DATASET_RULE = (
    "use lowercase letters, digits, '_' and '.', with single hyphens between parts "
    "(e.g. 'cifar10', 'fashion-mnist')"
)
_TOKEN_RULE = (
    "use lowercase letters, digits, '_' and '.' and no hyphen (e.g. 'resnet18', 'wide_resnet'); "
    "hyphens separate the parts of a cell id"
)
_OPTION_RULE = "use a lowercase identifier (letters, digits, '_'; not starting with a digit)"


def _override_value(name: str, value: Any) -> OverrideValue:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"Training.overrides[{name!r}] must be finite, got {value!r}")
        return float(value)
    raise TypeError(
        f"Training.overrides[{name!r}] must be a str, int, float, bool or None (a JSON scalar), "
        f"got {type(value).__name__} {value!r}"
    )


def _check_keys(owner: str, data: Mapping[str, Any], names: set[str]) -> None:
    if not isinstance(data, Mapping):
        raise TypeError(f"{owner}.from_dict expects a mapping, got {type(data).__name__}")
    unknown, missing = set(data) - names, names - set(data)
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"unknown keys {sorted(unknown)}")
        if missing:
            parts.append(f"missing keys {sorted(missing)}")
        raise ValueError(
            f"{owner}.from_dict: {' and '.join(parts)}; expected exactly {sorted(names)} "
            f"(as written by {owner}.to_dict)"
        )


# ---------------------------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class Training:
    """Settings of one training run; every checkpoint epoch in ``save_at`` shares it (one key).

    ``epochs`` may be omitted only for ``recipe="untrained"`` (which means zero epochs).
    ``save_at`` lists the epochs at which a checkpoint and its test accuracy are saved; it is
    normalised to a sorted tuple that always contains ``epochs``. ``overrides`` are free-form
    ``(name, value)`` pairs (a mapping is accepted), e.g. ``{"lr": 0.05, "batch_size": 64}``.
    """

    dataset: str
    model: str
    recipe: str = "baseline"
    seed: int = 0
    epochs: int | None = None
    save_at: tuple[int, ...] = ()
    overrides: tuple[tuple[str, OverrideValue], ...] = ()

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        _name("Training", "dataset", self.dataset, _DATASET_RE, _DATASET_RULE)
        _name("Training", "model", self.model, _TOKEN_RE, _TOKEN_RULE)
        _choice("Training", "recipe", self.recipe, RECIPE_NAMES)
        set_("seed", _int("Training", "seed", self.seed, minimum=0))

        if self.epochs is None:
            if self.recipe != UNTRAINED:
                raise ValueError(
                    f"Training.epochs is required for recipe {self.recipe!r}: pass epochs=N "
                    f"(only recipe={UNTRAINED!r} implies zero epochs)"
                )
            set_("epochs", 0)
        epochs = _int("Training", "epochs", self.epochs, minimum=0)
        set_("epochs", epochs)
        if self.recipe == UNTRAINED and epochs != 0:
            raise ValueError(
                f"recipe {UNTRAINED!r} means zero epochs, got epochs={epochs}; pass epochs=0 "
                "(or omit it), or choose a training recipe"
            )
        if self.recipe != UNTRAINED and epochs == 0:
            raise ValueError(
                f"recipe {self.recipe!r} with epochs=0 is an untrained network; use "
                f"recipe={UNTRAINED!r} for that (one name per network), or give epochs >= 1. "
                "To keep the initialisation of a training run, add 0 to save_at instead."
            )

        if isinstance(self.save_at, (str, bytes)) or not isinstance(self.save_at, Iterable):
            raise TypeError(
                f"Training.save_at must be a sequence of epochs, got {type(self.save_at).__name__}"
            )
        save_at = {_int("Training", "save_at[]", e, minimum=0, maximum=epochs) for e in self.save_at}
        set_("save_at", tuple(sorted(save_at | {epochs})))

        pairs = self.overrides.items() if isinstance(self.overrides, Mapping) else self.overrides
        overrides: dict[str, OverrideValue] = {}
        for pair in pairs:
            if isinstance(pair, (str, bytes)) or len(pair) != 2:
                raise TypeError(
                    f"Training.overrides must be (name, value) pairs or a mapping, got item {pair!r}"
                )
            name, value = pair
            _name("Training", "overrides name", name, _OPTION_RE, _OPTION_RULE)
            if name in overrides:
                raise ValueError(f"Training.overrides names {name!r} twice; give each option once")
            overrides[name] = _override_value(name, value)
        set_("overrides", tuple(sorted(overrides.items())))

    @property
    def options(self) -> dict[str, OverrideValue]:
        """The overrides as a dict."""
        return dict(self.overrides)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` reads it back."""
        return {
            "dataset": self.dataset,
            "model": self.model,
            "recipe": self.recipe,
            "seed": self.seed,
            "epochs": self.epochs,
            "save_at": list(self.save_at),
            "overrides": [[name, value] for name, value in self.overrides],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Training:
        _check_keys("Training", data, {f.name for f in dataclasses.fields(cls)})
        overrides = tuple(map(tuple, data["overrides"]))
        return cls(**{**data, "save_at": tuple(data["save_at"]), "overrides": overrides})

    @cached_property
    def key(self) -> str:
        """SHA-256 hex naming this training run (see the module docstring)."""
        return content_key("training", self.to_dict())


@dataclass(frozen=True)
class Measurement:
    """Settings of profiling one checkpoint.

    - ``points``: test images whose neighbourhoods are measured (>= 3).
    - ``toggles``: number of smallest nonzero singular values toggled per channel (1..10); each
      point gets ``2**toggles - 1`` perturbed neighbours (1023 by default).
    - ``id_runs`` × ``id_samples``: intrinsic dimension by TwoNN, averaged over ``id_runs`` random
      subsets of ``id_samples`` points.
    - ``split``: one of :data:`POINT_SPLITS`; ``"train-augmented"`` reproduces the authors' defect.
    - ``precision``: dtype of the curvature fits, ``"float64"`` (default) or ``"float32"``. The
      Gram route squares the singular values, so in float32 it zeroes directions below about
      1.4e-3 σ_max that the paper's float32 SVD still resolved; float64 keeps them (6e-8 σ_max).
    - ``input_probe``: one of :data:`INPUT_PROBES`.
    - ``deviations``: named deviations from the paper's procedure (sorted, unique); the names are
      defined by the probing layer and checked by
      :func:`crlm_bench.experiment.pipeline.validate`.
    """

    points: int = 5000
    toggles: int = MAX_TOGGLES
    id_runs: int = 10
    id_samples: int = 5000
    split: str = "test"
    precision: str = "float64"
    input_probe: str = "both"
    deviations: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("points", _int("Measurement", "points", self.points, minimum=3))
        set_("toggles", _int("Measurement", "toggles", self.toggles, minimum=1, maximum=MAX_TOGGLES))
        set_("id_runs", _int("Measurement", "id_runs", self.id_runs, minimum=1))
        set_("id_samples", _int("Measurement", "id_samples", self.id_samples, minimum=3))
        _choice("Measurement", "split", self.split, POINT_SPLITS)
        _choice("Measurement", "precision", self.precision, PRECISIONS)
        _choice("Measurement", "input_probe", self.input_probe, INPUT_PROBES)
        if isinstance(self.deviations, (str, bytes)) or not isinstance(self.deviations, Iterable):
            raise TypeError(
                "Measurement.deviations must be a sequence of option names, got "
                f"{type(self.deviations).__name__} {self.deviations!r}"
            )
        deviations = [
            _name("Measurement", "deviations[]", d, _OPTION_RE, _OPTION_RULE) for d in self.deviations
        ]
        if len(set(deviations)) != len(deviations):
            twice = sorted({d for d in deviations if deviations.count(d) > 1})
            raise ValueError(f"Measurement.deviations names {twice} more than once; give each once")
        set_("deviations", tuple(sorted(deviations)))

    @property
    def neighbours(self) -> int:
        """Perturbed neighbours per point: ``2**toggles - 1``."""
        return 2**self.toggles - 1

    def with_preset(self, name: str) -> Measurement:
        """This measurement with the settings of preset ``name`` (:data:`PRESETS`), its deviations
        added to any already named."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
        settings = dict(PRESETS[name])
        deviations = (*self.deviations, *(d for d in settings.pop("deviations") if d not in self.deviations))
        return dataclasses.replace(self, **settings, deviations=deviations)

    def changed(self, change: str) -> Measurement:
        """This measurement with one change of :data:`MEASUREMENT_CHANGES`: ``"float32"`` (the
        fits' precision), a deviation's name (added to those already named), ``"train_augmented"``
        (the points of the augmented training images) or a preset's."""
        if change == "float32":
            return dataclasses.replace(self, precision="float32")
        if change == AUGMENTED_POINTS:
            return dataclasses.replace(self, split="train-augmented")
        if change in PRESETS:
            return self.with_preset(change)
        if change in DEVIATIONS:
            return dataclasses.replace(self, deviations=tuple(dict.fromkeys((*self.deviations, change))))
        raise ValueError(f"unknown measurement change {change!r}; known: {', '.join(MEASUREMENT_CHANGES)}")

    @property
    def preset(self) -> str:
        """The preset whose every setting this measurement has, or "" (none)."""
        return next((name for name in PRESETS if self.with_preset(name) == self), "")

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["deviations"] = list(self.deviations)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measurement:
        _check_keys("Measurement", data, {f.name for f in dataclasses.fields(cls)})
        return cls(**{**data, "deviations": tuple(data["deviations"])})


_TRAINING_FIELDS = {f.name for f in dataclasses.fields(Training)}
_MEASUREMENT_FIELDS = {f.name for f in dataclasses.fields(Measurement)}


@dataclass(frozen=True)
class Cell:
    """One trained network — a :class:`Training` run read at checkpoint epoch ``at`` — and the
    :class:`Measurement` settings of its profile.

    ``at`` defaults to ``training.epochs`` and must be one of ``training.save_at``.
    """

    training: Training
    at: int | None = None
    measurement: Measurement = field(default_factory=Measurement)

    def __post_init__(self) -> None:
        if not isinstance(self.training, Training):
            raise TypeError(f"Cell.training must be a Training, got {type(self.training).__name__}")
        if not isinstance(self.measurement, Measurement):
            raise TypeError(f"Cell.measurement must be a Measurement, got {type(self.measurement).__name__}")
        at = self.training.epochs if self.at is None else _int("Cell", "at", self.at, minimum=0)
        if at not in self.training.save_at:
            raise ValueError(
                f"Cell.at={at} is not a saved checkpoint of this training run "
                f"(save_at={list(self.training.save_at)}); add {at} to Training.save_at "
                "or choose a saved epoch"
            )
        object.__setattr__(self, "at", at)

    @classmethod
    def build(
        cls,
        dataset: str,
        model: str,
        recipe: str = "baseline",
        *,
        seed: int = 0,
        epochs: int | None = None,
        at: int | None = None,
        save_at: Iterable[int] = (),
        overrides: Mapping[str, OverrideValue] | Iterable[tuple[str, OverrideValue]] = (),
        measurement: Measurement | None = None,
        **measurement_fields: Any,
    ) -> Cell:
        """A cell from flat arguments. ``at`` is added to ``save_at`` if missing;
        ``measurement_fields`` (``points=``, ``toggles=``, ...) replace fields of ``measurement``."""
        unknown = set(measurement_fields) - _MEASUREMENT_FIELDS
        if unknown:
            raise TypeError(
                f"Cell.build got unknown arguments {sorted(unknown)}; Measurement fields are "
                f"{sorted(_MEASUREMENT_FIELDS)}"
            )
        save_at = tuple(save_at) + (() if at is None else (at,))
        training = Training(dataset, model, recipe, seed, epochs, save_at, overrides)
        measurement = measurement if measurement is not None else Measurement()
        if measurement_fields:
            measurement = dataclasses.replace(measurement, **measurement_fields)
        return cls(training, at, measurement)

    @property
    def id(self) -> str:
        """Readable name, e.g. ``cifar10-resnet18-baseline-s0-e50of200`` (see module docstring)."""
        t = self.training
        epoch = f"e{self.at}" if self.at == t.epochs else f"e{self.at}of{t.epochs}"
        return f"{t.dataset}-{t.model}-{t.recipe}-s{t.seed}-{epoch}"

    def __str__(self) -> str:
        return self.id

    def changed(self, change: str) -> Cell:
        """This cell measured with one change (:meth:`Measurement.changed`); "" is no change."""
        return self if not change else dataclasses.replace(self, measurement=self.measurement.changed(change))

    @cached_property
    def key(self) -> str:
        """SHA-256 hex naming this cell's profile (training settings, ``at``, measurement)."""
        return content_key("cell", self.to_dict(), profile_format=PROFILE_FORMAT)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` reads it back."""
        return {
            "training": self.training.to_dict(),
            "at": self.at,
            "measurement": self.measurement.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cell:
        _check_keys("Cell", data, {"training", "at", "measurement"})
        return cls(
            Training.from_dict(data["training"]), data["at"], Measurement.from_dict(data["measurement"])
        )

    @classmethod
    def parse(cls, id_string: str, **defaults: Any) -> Cell:
        """The cell named by ``id_string`` (e.g. ``fashion-mnist-resnet18-mixup-s1-e50of200``).

        The id gives dataset, model, recipe, seed, epochs and ``at``; ``defaults`` give the rest:
        ``save_at`` (``at`` is added to it), ``overrides``, ``measurement`` and/or Measurement
        fields (``points=``, ``toggles=``, ...). The rule is in the module docstring.
        """
        if not isinstance(id_string, str):
            raise TypeError(f"Cell.parse expects a str, got {type(id_string).__name__}")
        given = set(defaults) & (_TRAINING_FIELDS - {"save_at", "overrides"} | {"at"})
        if given:
            raise TypeError(
                f"Cell.parse: {sorted(given)} are given by the id {id_string!r}; pass only "
                "save_at, overrides, measurement or Measurement fields as defaults"
            )
        match = _ID_RE.fullmatch(id_string)
        expected = (
            "expected '<dataset>-<model>-<recipe>-s<seed>-e<epoch>[of<epochs>]', "
            "e.g. 'cifar10-resnet18-baseline-s0-e200' or 'cifar10-resnet18-baseline-s0-e50of200'"
        )
        if match is None:
            raise ValueError(f"cannot parse cell id {id_string!r}: {expected}")
        dataset, _, model = match["prefix"].rpartition("-")
        if not dataset or not model:
            raise ValueError(
                f"cannot parse cell id {id_string!r}: no dataset before the model {model!r}; {expected}"
            )
        if match["recipe"] not in RECIPE_NAMES:
            raise ValueError(
                f"cannot parse cell id {id_string!r}: unknown recipe {match['recipe']!r}; "
                f"known recipes are {', '.join(RECIPE_NAMES)}"
            )
        at = int(match["at"])
        epochs = int(match["epochs"]) if match["epochs"] is not None else at
        if at > epochs:
            raise ValueError(
                f"cannot parse cell id {id_string!r}: checkpoint epoch {at} is after the last epoch {epochs}"
            )
        try:
            return cls.build(
                dataset,
                model,
                match["recipe"],
                seed=int(match["seed"]),
                epochs=epochs,
                at=at,
                **defaults,
            )
        except ValueError as error:
            raise ValueError(f"cannot parse cell id {id_string!r}: {error}") from error
