"""Cells: ids, parsing, keys, dict round trips, validation."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crlm_bench.experiment.cell import (
    FORMAT_VERSION,
    INPUT_PROBES,
    POINT_SPLITS,
    PRECISIONS,
    PROFILE_FORMAT,
    RECIPE_NAMES,
    Cell,
    Measurement,
    Training,
    content_key,
)
from crlm_bench.files import canonical_json

# Fixed keys: any change of the key scheme, of to_dict, or of a default must change these on
# purpose (and bump FORMAT_VERSION when old artifacts should stop matching).
BASELINE = Cell(Training("cifar10", "resnet18", "baseline", seed=0, epochs=200))
BASELINE_KEY = "916530ce126087204988f4a67f06fefe4679cac759abb2ab6e9a8c345038d130"  # profile format 2
BASELINE_TRAINING_KEY = "a9439d84223f9168336e0eb6aa4b249174aa0e911f4f096ce5a6dd2afba1a050"
BASELINE_JSON = (
    '{"at":200,"measurement":{"deviations":[],"id_runs":10,"id_samples":5000,"input_probe":"both",'
    '"points":5000,"precision":"float64","split":"test","toggles":10},"training":{"dataset":"cifar10",'
    '"epochs":200,"model":"resnet18","overrides":[],"recipe":"baseline","save_at":[200],"seed":0}}'
)


# ---------------------------------------------------------------------------------------------
# ids and parsing

ID_CASES = [
    (Cell(Training("cifar10", "resnet18", "baseline", 0, 200)), "cifar10-resnet18-baseline-s0-e200"),
    (
        Cell(Training("cifar10", "resnet18", "baseline", 0, 200, save_at=(50,)), at=50),
        "cifar10-resnet18-baseline-s0-e50of200",
    ),
    (Cell(Training("cifar10", "resnet18", "untrained")), "cifar10-resnet18-untrained-s0-e0"),
    (
        Cell(Training("fashion-mnist", "vgg16", "manifold_mixup", 3, 30)),
        "fashion-mnist-vgg16-manifold_mixup-s3-e30",
    ),
    (
        Cell(Training("fashion-mnist", "wide_resnet", "mixup", 12, 100, save_at=(0, 10)), at=0),
        "fashion-mnist-wide_resnet-mixup-s12-e0of100",
    ),
]


@pytest.mark.parametrize("cell, expected", ID_CASES, ids=[c[1] for c in ID_CASES])
def test_id_and_parse(cell: Cell, expected: str) -> None:
    assert cell.id == expected == str(cell)
    parsed = Cell.parse(expected, save_at=cell.training.save_at)
    assert parsed == cell
    assert parsed.key == cell.key


def test_parse_adds_checkpoint_to_save_at_and_takes_defaults() -> None:
    cell = Cell.parse("fashion-mnist-resnet18-mixup-s1-e50of200", overrides={"lr": 0.05}, points=100)
    assert cell.training == Training("fashion-mnist", "resnet18", "mixup", 1, 200, (50, 200), (("lr", 0.05),))
    assert cell.at == 50
    assert cell.measurement == Measurement(points=100)
    measured = Cell.parse(
        "mnist-resnet18-baseline-s0-e5", measurement=Measurement(toggles=4), precision="float64"
    )
    assert measured.measurement == Measurement(toggles=4, precision="float64")


def test_parse_last_epoch_written_with_of_is_accepted() -> None:
    assert Cell.parse("cifar10-resnet18-baseline-s0-e200of200") == BASELINE


@pytest.mark.parametrize(
    "bad, words",
    [
        ("cifar10-resnet18-baseline-s0", "expected"),
        ("cifar10-resnet18-baseline-e200", "expected"),
        ("cifar10-resnet18-sgd-s0-e200", "unknown recipe 'sgd'"),
        ("resnet18-baseline-s0-e200", "no dataset"),
        ("cifar10-resnet18-baseline-s-1-e200", "expected"),
        ("cifar10-resnet18-baseline-s01-e200", "expected"),
        ("cifar10-resnet18-baseline-s0-e300of200", "after the last epoch"),
        ("cifar10-resnet18-untrained-s0-e10", "zero epochs"),
        ("cifar10-resnet18-baseline-s0-e0", "untrained"),
        ("CIFAR10-resnet18-baseline-s0-e200", "lowercase"),
        ("cifar10--resnet18-baseline-s0-e200", "not a valid name"),
    ],
)
def test_parse_rejects_malformed_ids(bad: str, words: str) -> None:
    with pytest.raises(ValueError, match="cannot parse cell id") as info:
        Cell.parse(bad)
    assert words in str(info.value)


def test_parse_refuses_defaults_that_the_id_gives() -> None:
    with pytest.raises(TypeError, match="given by the id"):
        Cell.parse("cifar10-resnet18-baseline-s0-e200", seed=1)
    with pytest.raises(TypeError, match="Measurement fields"):
        Cell.parse("cifar10-resnet18-baseline-s0-e200", pointz=10)


def test_models_and_recipes_cannot_contain_hyphens() -> None:
    with pytest.raises(ValueError, match="no hyphen"):
        Training("cifar10", "resnet-18", "baseline", 0, 10)


# ---------------------------------------------------------------------------------------------
# hypothesis: ids, parsing and dict round trips

_part = st.from_regex(r"[a-z0-9][a-z0-9_.]{0,5}", fullmatch=True)
datasets = st.lists(_part, min_size=1, max_size=3).map("-".join)
models = _part
option_names = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True)
override_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)


@st.composite
def trainings(draw: st.DrawFn) -> Training:
    recipe = draw(st.sampled_from(RECIPE_NAMES))
    epochs = 0 if recipe == "untrained" else draw(st.integers(1, 400))
    return Training(
        dataset=draw(datasets),
        model=draw(models),
        recipe=recipe,
        seed=draw(st.integers(0, 10**6)),
        epochs=epochs,
        save_at=tuple(draw(st.lists(st.integers(0, epochs), max_size=4))),
        overrides=draw(st.dictionaries(option_names, override_values, max_size=3)),
    )


measurements = st.builds(
    Measurement,
    points=st.integers(3, 10**5),
    toggles=st.integers(1, 10),
    id_runs=st.integers(1, 20),
    id_samples=st.integers(3, 10**5),
    split=st.sampled_from(POINT_SPLITS),
    precision=st.sampled_from(PRECISIONS),
    input_probe=st.sampled_from(INPUT_PROBES),
    deviations=st.lists(option_names, unique=True, max_size=3).map(tuple),
)


@st.composite
def cells(draw: st.DrawFn) -> Cell:
    training = draw(trainings())
    return Cell(training, draw(st.sampled_from(training.save_at)), draw(measurements))


@settings(deadline=None)
@given(cells())
def test_parse_inverts_id(cell: Cell) -> None:
    parsed = Cell.parse(
        cell.id,
        save_at=cell.training.save_at,
        overrides=cell.training.overrides,
        measurement=cell.measurement,
    )
    assert parsed == cell
    assert parsed.id == cell.id
    assert parsed.key == cell.key


@settings(deadline=None)
@given(cells())
def test_dict_round_trip_through_json(cell: Cell) -> None:
    data = json.loads(json.dumps(cell.to_dict()))
    back = Cell.from_dict(data)
    assert back == cell
    assert back.key == cell.key and back.training.key == cell.training.key
    assert Training.from_dict(data["training"]) == cell.training
    assert Measurement.from_dict(data["measurement"]) == cell.measurement


@settings(deadline=None)
@given(cells())
def test_id_selects_by_dataset_and_model(cell: Cell) -> None:
    assert cell.training.dataset in cell.id and cell.training.model in cell.id
    assert cell.id.startswith(f"{cell.training.dataset}-{cell.training.model}-")


# ---------------------------------------------------------------------------------------------
# keys


def test_keys_are_fixed() -> None:
    assert canonical_json(BASELINE.to_dict()) == BASELINE_JSON
    assert FORMAT_VERSION == 1 and PROFILE_FORMAT == 2
    assert BASELINE.key == BASELINE_KEY
    assert BASELINE.training.key == BASELINE_TRAINING_KEY  # a new profile format keeps the runs
    assert BASELINE.key == content_key("cell", json.loads(BASELINE_JSON), profile_format=PROFILE_FORMAT)
    assert BASELINE.key != content_key("cell", json.loads(BASELINE_JSON))


def test_canonical_json() -> None:
    assert canonical_json({"b": [1, 2.5], "a": "é"}) == '{"a":"\\u00e9","b":[1,2.5]}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


TRAINING_VARIANTS = {
    "dataset": {"dataset": "cifar100"},
    "model": {"model": "vgg16"},
    "recipe": {"recipe": "mixup"},
    "seed": {"seed": 1},
    "epochs": {"epochs": 201},
    "save_at": {"save_at": (100,)},
    "overrides": {"overrides": {"lr": 0.1}},
}
MEASUREMENT_VARIANTS = {
    "points": 4999,
    "toggles": 9,
    "id_runs": 9,
    "id_samples": 4999,
    "split": "train-augmented",
    "precision": "float32",
    "input_probe": "knn",
    "deviations": ("per_direction_mapc",),
}


def test_every_field_changes_the_key() -> None:
    # The variants must cover every field: adding a field without a variant fails here.
    assert set(TRAINING_VARIANTS) == {f.name for f in dataclasses.fields(Training)}
    assert set(MEASUREMENT_VARIANTS) == {f.name for f in dataclasses.fields(Measurement)}
    base = Training("cifar10", "resnet18", "baseline", 0, 200)
    keys = {"base": Cell(base).key}
    training_keys = {"base": base.key}
    for name, change in TRAINING_VARIANTS.items():
        variant = dataclasses.replace(base, **change)
        training_keys[name] = variant.key
        keys[name] = Cell(variant).key
    for name, value in MEASUREMENT_VARIANTS.items():
        keys[f"measurement.{name}"] = Cell(base, measurement=Measurement(**{name: value})).key
    two = dataclasses.replace(base, save_at=(100,))
    keys["at"] = Cell(two, at=100).key
    assert len(set(keys.values())) == len(keys), "two different cells share a key"
    assert len(set(training_keys.values())) == len(training_keys)
    # the kind is part of the key: a cell and its training never collide
    assert not set(keys.values()) & set(training_keys.values())


def test_checkpoints_of_one_run_share_the_training_key() -> None:
    training = Training("cifar10", "resnet18", "baseline", 0, 200, save_at=(0, 50, 100))
    cells = [Cell(training, at=e) for e in training.save_at]
    assert {c.training.key for c in cells} == {training.key}
    assert len({c.key for c in cells}) == 4
    assert [c.id for c in cells] == [
        "cifar10-resnet18-baseline-s0-e0of200",
        "cifar10-resnet18-baseline-s0-e50of200",
        "cifar10-resnet18-baseline-s0-e100of200",
        "cifar10-resnet18-baseline-s0-e200",
    ]


def test_equivalent_settings_normalise_to_one_key() -> None:
    a = Training(
        "cifar10",
        "resnet18",
        "baseline",
        0,
        200,
        save_at=[100, 50, 200, 50],
        overrides={"lr": 0.1, "batch_size": 64},
    )
    b = Training(
        "cifar10",
        "resnet18",
        "baseline",
        0,
        200,
        save_at=(50, 100),
        overrides=(("batch_size", 64), ("lr", 0.1)),
    )
    assert a == b and a.key == b.key and hash(a) == hash(b)
    assert a.save_at == (50, 100, 200)
    assert a.options == {"batch_size": 64, "lr": 0.1}
    m1, m2 = Measurement(deviations=["b", "a"]), Measurement(deviations=("a", "b"))
    assert m1 == m2 and Cell(a, measurement=m1).key == Cell(b, measurement=m2).key
    assert Cell(a).at == 200 and Cell(a, at=200) == Cell(a)


# ---------------------------------------------------------------------------------------------
# validation


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: Training("cifar10", "resnet18", "baseline", 0, -1), ValueError, "epochs must be >= 0"),
        (lambda: Training("cifar10", "resnet18", "baseline", -1, 10), ValueError, "seed must be >= 0"),
        (lambda: Training("cifar10", "resnet18", "baseline", True, 10), TypeError, "bool"),
        (lambda: Training("cifar10", "resnet18", "baseline", 0, 2.5), TypeError, "integer"),
        (lambda: Training("cifar10", "resnet18", "baseline", 0), ValueError, "epochs is required"),
        (lambda: Training("cifar10", "resnet18", "sgd", 0, 10), ValueError, "recipe must be one of"),
        (lambda: Training("cifar10", "resnet18", "untrained", 0, 5), ValueError, "zero epochs"),
        (lambda: Training("cifar10", "resnet18", "baseline", 0, 0), ValueError, "recipe='untrained'"),
        (
            lambda: Training("cifar10", "resnet18", "baseline", 0, 10, save_at=(11,)),
            ValueError,
            "between 0 and 10",
        ),
        (lambda: Training("cifar10", "resnet18", "baseline", 0, 10, save_at=5), TypeError, "sequence"),
        (lambda: Training("Cifar10", "resnet18", "baseline", 0, 10), ValueError, "lowercase"),
        (lambda: Training("", "resnet18", "baseline", 0, 10), ValueError, "not a valid name"),
        (lambda: Training("cifar10", 18, "baseline", 0, 10), TypeError, "must be a string"),
        (
            lambda: Training("cifar10", "resnet18", "baseline", 0, 10, overrides=(("lr", 1), ("lr", 2))),
            ValueError,
            "twice",
        ),
        (
            lambda: Training("cifar10", "resnet18", "baseline", 0, 10, overrides={"lr": float("nan")}),
            ValueError,
            "finite",
        ),
        (
            lambda: Training("cifar10", "resnet18", "baseline", 0, 10, overrides={"lr": [1]}),
            TypeError,
            "JSON scalar",
        ),
        (
            lambda: Training("cifar10", "resnet18", "baseline", 0, 10, overrides={"Bad-Name": 1}),
            ValueError,
            "identifier",
        ),
        (lambda: Measurement(points=2), ValueError, "points must be >= 3"),
        (lambda: Measurement(toggles=0), ValueError, "between 1 and 10"),
        (lambda: Measurement(toggles=11), ValueError, "between 1 and 10"),
        (lambda: Measurement(id_runs=0), ValueError, "id_runs must be >= 1"),
        (lambda: Measurement(id_samples=2), ValueError, "id_samples must be >= 3"),
        (lambda: Measurement(split="train"), ValueError, "'test', 'train-augmented'"),
        (lambda: Measurement(precision="float16"), ValueError, "precision must be one of"),
        (lambda: Measurement(input_probe="none"), ValueError, "input_probe must be one of"),
        (lambda: Measurement(deviations="abc"), TypeError, "sequence"),
        (lambda: Measurement(deviations=("a", "a")), ValueError, "more than once"),
        (
            lambda: Cell(Training("cifar10", "resnet18", "baseline", 0, 10), at=5),
            ValueError,
            "add 5 to Training.save_at",
        ),
        (lambda: Cell("cifar10-resnet18-baseline-s0-e10"), TypeError, "must be a Training"),
        (lambda: Cell.from_dict({**BASELINE.to_dict(), "extra": 1}), ValueError, "unknown keys"),
        (lambda: Training.from_dict({"dataset": "cifar10"}), ValueError, "missing keys"),
    ],
)
def test_invalid_settings_are_refused_with_a_clear_error(make, error, words) -> None:
    with pytest.raises(error) as info:
        make()
    assert words in str(info.value)


def test_measurement_defaults_are_the_papers() -> None:
    m = Measurement()
    assert (m.points, m.toggles, m.neighbours, m.id_runs, m.id_samples) == (5000, 10, 1023, 10, 5000)
    # float64 fits: the Gram route in float32 would lose directions the paper's SVD resolved
    assert (m.split, m.precision, m.input_probe, m.deviations) == ("test", "float64", "both", ())


def test_settings_are_frozen_and_hashable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        BASELINE.at = 3  # type: ignore[misc]
    assert len({BASELINE, Cell.parse(BASELINE.id)}) == 1


def test_a_preset_is_its_settings_and_deviations_and_is_recognised() -> None:
    from crlm_bench.experiment.cell import DEVIATIONS, PRESETS

    plain = Measurement(points=200, toggles=7)
    authors = plain.with_preset("authors")
    assert authors.points == 200 and authors.toggles == 7  # the rest is kept
    assert authors.precision == "float32" and authors.split == "train-augmented"
    assert authors.deviations == tuple(sorted(PRESETS["authors"]["deviations"]))
    assert set(authors.deviations) <= set(DEVIATIONS)
    assert authors.preset == "authors" and plain.preset == ""
    more = Measurement(deviations=("svd_fit",)).with_preset("authors")  # named twice: once
    assert more.deviations == authors.deviations
    partial = dataclasses.replace(authors, precision="float64")  # one setting differs: no preset
    assert partial.preset == ""
    with pytest.raises(ValueError, match="unknown preset 'theirs'; known: authors"):
        plain.with_preset("theirs")
