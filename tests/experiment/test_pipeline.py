"""A cell's training and profile in the store: once per key, resumable, never silently corrupt;
and a cell's names checked against the registries.

Most of these tests drive the real command line in subprocesses (so SIGKILL and concurrency are
real).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch

from crlm_bench.experiment import pipeline
from crlm_bench.experiment.cell import Cell, Measurement
from crlm_bench.experiment.store import CorruptEntryWarning, Store, load_frame

TRAINED = "synthetic-vgg6_narrow-baseline-s0-e4"
UNTRAINED = "synthetic-vgg6_narrow-untrained-s0-e0"
MEASURE = [
    "--points",
    "6",
    "--toggles",
    "3",
    "--id-runs",
    "2",
    "--id-samples",
    "64",
    "--precision",
    "float64",
]
TRAIN = ["--override", "batch_size=64", "--override", "train_subset=512"]
MEASUREMENT = Measurement(points=6, toggles=3, id_runs=2, id_samples=64, precision="float64")


def cell(text: str) -> Cell:
    return Cell.parse(text, measurement=MEASUREMENT, overrides={"batch_size": 64, "train_subset": 512})


def cli(*args: str, store: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "crlm_bench", "-v", *args, "--store", str(store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


def run(*args: str, store: Path) -> subprocess.CompletedProcess:
    proc = cli(*args, store=store)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def wait_for(pattern: str, folder: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list(folder.glob(pattern)):
            return
        time.sleep(0.05)
    raise AssertionError(f"{pattern} never appeared in {folder}")


def weights(store: Path, text: str, epoch: int) -> dict:
    entry = Store(store).get("training", cell(text).training.key)
    return torch.load(entry.file(f"epoch_{epoch:04d}.pt"), weights_only=True)["model"]


def test_killed_training_resumes_to_the_uninterrupted_result(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run("train", TRAINED, *TRAIN, store=straight)
    proc = cli("train", TRAINED, *TRAIN, store=killed)
    run_dir = Store(killed).workdir("training", cell(TRAINED).training.key) / "run"
    wait_for("epoch_0002.pt", run_dir)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert Store(killed).get("training", cell(TRAINED).training.key) is None
    run("train", TRAINED, *TRAIN, store=killed)
    a, b = weights(straight, TRAINED, 4), weights(killed, TRAINED, 4)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_killed_profile_resumes_to_the_uninterrupted_result(tmp_path):
    """Killed with one-point chunks, resumed with the default memory bound (what a user does after
    an out-of-memory kill): the stored profile is bit for bit the uninterrupted one."""
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    points = 100  # one chunk per point (--memory-mb 1): a window of seconds to kill it in
    args = ["profile", UNTRAINED, *MEASURE, *TRAIN, "--points", str(points), "--memory-mb", "1"]
    measurement = Measurement(**{**MEASUREMENT.to_dict(), "points": points, "deviations": ()})
    c = Cell.parse(UNTRAINED, measurement=measurement, overrides={"batch_size": 64, "train_subset": 512})
    run(*args, store=straight)
    proc = cli(*args, store=killed)
    partial = Store(killed).workdir("profile", c.key) / "partial"
    wait_for("curvature_000002_000003.pt", partial)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(partial.glob("curvature_*.pt")))
    assert 0 < done_before < points
    run(*args[:-2], store=killed)
    a = load_frame(Store(straight).get("profile", c.key).file("profile.parquet"))
    b = load_frame(Store(killed).get("profile", c.key).file("profile.parquet"))
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_two_processes_compute_one_cell_once(tmp_path):
    procs = [cli("profile", UNTRAINED, *MEASURE, *TRAIN, store=tmp_path) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    logs = "".join(err for _, err in outputs)
    assert logs.count("computing store entry profile/") == 1
    assert logs.count("computing store entry training/") == 1
    assert sorted(e["kind"] for e in Store(tmp_path).audit()) == ["profile", "training"]
    assert [line.split(":")[0] for out, _ in outputs for line in out.splitlines()] == [UNTRAINED] * 2


@pytest.mark.parametrize("kind,name", [("training", "epoch_0000.pt"), ("profile", "profile.parquet")])
def test_a_flipped_byte_is_detected_and_recomputed(tmp_path, kind, name):
    store = Store(tmp_path)
    c = cell(UNTRAINED)
    assert pipeline.stored_profile(c, store) is None  # not computed by asking
    before = pipeline.profile(c, store)
    pd.testing.assert_frame_equal(pipeline.stored_profile(c, store), before)
    key = c.training.key if kind == "training" else c.key
    path = store.get(kind, key).file(name)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    with pytest.warns(CorruptEntryWarning, match=name):
        after = pipeline.profile(c, store) if kind == "profile" else pipeline.load_model(c, store)[0]
    if kind == "profile":
        pd.testing.assert_frame_equal(before, after)
    assert store.get(kind, key) is not None  # recomputed and complete again
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptEntryWarning)
        pd.testing.assert_frame_equal(before, pipeline.profile(c, store))


def test_overrides_must_be_recipe_fields_or_train_options():
    bad = Cell.parse(TRAINED, overrides={"learning_rate": 0.1})
    with pytest.raises(ValueError, match=r"unknown training override\(s\) \['learning_rate'\].*lr"):
        pipeline.recipe_and_options(bad.training)


def test_validate_returns_a_known_cell():
    known = Cell.parse("cifar10-resnet18-baseline-s0-e200")
    assert pipeline.validate(known) is known
    with pytest.raises(TypeError):
        pipeline.validate("cifar10-resnet18-baseline-s0-e200")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text,kwargs,words",
    [
        ("cifar11-resnet18-baseline-s0-e5", {}, "unknown data set 'cifar11'. Did you mean 'cifar10'?"),
        ("cifar10-resnet19-baseline-s0-e5", {}, "unknown model 'resnet19'. Did you mean 'resnet18'?"),
        ("cifar10-resnet18-baseline-s0-e5", {"overrides": {"momentun": 0.5}}, "unknown training override"),
        ("cifar10-resnet18-baseline-s0-e5", {"deviations": ("fast",)}, "unknown deviation"),
    ],
)
def test_validate_names_the_unknown_name(text, kwargs, words):
    with pytest.raises((KeyError, ValueError)) as info:
        pipeline.validate(Cell.parse(text, **kwargs))
    assert words in str(info.value)


@pytest.mark.parametrize(
    "a,b",
    [
        ({"lr": 1}, {"lr": 1.0}),  # an int for a float setting
        ({"batch_size": 64.0}, {"batch_size": 64}),  # an integral float for an int setting
        ({"batch_size": 128}, {}),  # the recipe's default is no override
        ({"momentum": 0.9, "lr": 0.05}, {"lr": 0.05}),
        ({"train_subset": None}, {}),  # a train option's default
        ({"train_subset": 512.0}, {"train_subset": 512}),
    ],
)
def test_settings_that_mean_the_same_run_share_one_key(a, b):
    """The cell's docstring promises it: normalised before hashing, so nothing is computed twice."""
    first = pipeline.validate(Cell.parse(TRAINED, overrides=a))
    second = pipeline.validate(Cell.parse(TRAINED, overrides=b))
    assert first.key == second.key and first.training.key == second.training.key
    assert first.training.options == second.training.options == b


def test_settings_that_differ_keep_their_keys_apart():
    keys = {pipeline.validate(Cell.parse(TRAINED, overrides=o)).key for o in ({}, {"lr": 0.2}, {"lr": 0.05})}
    assert len(keys) == 3


def test_every_budget_cell_is_already_normal():
    """Normalising must not move a budget's keys (that would orphan every stored result)."""
    from crlm_bench.replication.budgets import budget_names, get_budget

    for name in budget_names():
        for c in get_budget(name).all_cells():
            assert pipeline.validate(c) is c, c.id


@pytest.mark.parametrize(
    "overrides,words",
    [
        ({"batch_size": True}, "expected int"),  # a bool is not a count
        ({"batch_size": 64.5}, "expected int"),
        ({"lr": "fast"}, "expected float"),
        ({"augment": 1}, "expected bool"),
        ({"train_subset": -5}, "train_subset must be None or an integer >= 2"),
        ({"train_subset": 1.5}, "expected an integer"),
        ({"lr": -1.0}, "lr must be > 0"),
    ],
)
def test_a_bad_override_value_is_refused_before_anything_runs(overrides, words):
    with pytest.raises(ValueError, match=words):
        pipeline.validate(Cell.parse(TRAINED, overrides=overrides))


def test_the_stored_metadata_says_which_thread_count_and_device_made_an_artefact(tmp_path):
    store = Store(tmp_path)
    c = cell(UNTRAINED)
    assert pipeline.stored_provenance(c, store) == {"training": {}, "profile": {}}
    pipeline.profile(c, store)
    made = {"threads": torch.get_num_threads(), "device": "cpu"}
    assert pipeline.stored_provenance(c, store) == {"training": made, "profile": made}
    assert store.get("profile", c.key).meta["seconds"] > 0  # what the cost estimate reads


def test_the_per_point_values_are_stored_and_show_json_prints_every_column(tmp_path, capsys):
    import json

    from crlm_bench import cli
    from crlm_bench.experiment.probing import POINT_COLUMNS

    store = Store(tmp_path)
    c = cell(UNTRAINED)
    assert pipeline.stored_points(c, store) is None
    frame = pipeline.profile(c, store)
    points = pipeline.stored_points(c, store)
    assert list(points.columns) == POINT_COLUMNS and len(points) == len(frame) * MEASUREMENT.points
    assert cli.main(["show", UNTRAINED, *MEASURE, *TRAIN, "--store", str(tmp_path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["key"] == c.key and len(shown["rows"]) == len(frame)
    for field in ("probe", "relative_depth", "d", "m", "mapc", "radius", "mapc_undiluted", "unresolved"):
        assert [r[field] for r in shown["rows"]] == frame[field].tolist()


def test_cells_on_the_same_points_are_measured_together_each_as_alone(tmp_path):
    import dataclasses

    c = cell(UNTRAINED)
    others = [c.changed("float32"), c.changed("unscaled_fit")]
    assert all(pipeline.measurable_together(c, o) for o in others)
    assert pipeline.measurable_together(c, c.changed("authors_neighbourhoods"))  # same points, TwoNN
    assert not pipeline.measurable_together(c, c.changed("authors"))
    # the augmented training points are the preset's points: measured together with it
    assert pipeline.measurable_together(c.changed("train_augmented"), c.changed("authors"))
    together, alone = Store(tmp_path / "together"), Store(tmp_path / "alone")
    pipeline.profile(c, together)  # one already stored: only the two others are measured
    budget = [c, others[0], c.changed("authors"), others[1], others[0]]
    assert pipeline.measured_with(others[0], budget, together) == [others[1]]
    assert pipeline.measured_with(c.changed("authors"), budget, together) == []
    entries = pipeline.ensure_profiles([c, *others], together)
    assert [e.key for e in entries] == [x.key for x in (c, *others)]
    for x in (c, *others):
        pd.testing.assert_frame_equal(
            pipeline.profile(x, together), pipeline.profile(x, alone), check_exact=True
        )
        pd.testing.assert_frame_equal(pipeline.stored_points(x, together), pipeline.stored_points(x, alone))
    assert together.get("profile", others[0].key).meta["measured_with"] == [others[1].key]
    assert "measured_with" not in together.get("profile", c.key).meta
    with pytest.raises(ValueError, match="does not share its points and intrinsic dimensions"):
        pipeline.ensure_profiles(
            [c, dataclasses.replace(c, measurement=dataclasses.replace(MEASUREMENT, points=7))], together
        )
