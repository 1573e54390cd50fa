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
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    points = 100  # one chunk per point (--memory-mb 1): a window of seconds to kill it in
    args = ["profile", UNTRAINED, *MEASURE, *TRAIN, "--points", str(points), "--memory-mb", "1"]
    measurement = Measurement(**{**MEASUREMENT.to_dict(), "points": points, "deviations": ()})
    c = Cell.parse(UNTRAINED, measurement=measurement, overrides={"batch_size": 64, "train_subset": 512})
    run(*args, store=straight)
    proc = cli(*args, store=killed)
    partial = Store(killed).workdir("profile", c.key) / "partial"
    wait_for("curvature_00002.pt", partial)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(partial.glob("curvature_*.pt")))
    assert 0 < done_before < points
    run(*args, store=killed)
    a = load_frame(Store(straight).get("profile", c.key).file("profile.parquet"))
    b = load_frame(Store(killed).get("profile", c.key).file("profile.parquet"))
    pd.testing.assert_frame_equal(a, b)


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
