"""Checkpoints: file names, finding the latest, atomic saving, the saved state, and refusing files
that are not checkpoints (nor regular files); a full disk names the checkpoint."""

from __future__ import annotations

import contextlib
import io
import os
import threading

import pytest
import torch

from crlm_bench.vision.checkpoints import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_GLOB,
    checkpoint_epoch,
    checkpoint_name,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from crlm_bench.vision.models import build
from crlm_bench.vision.training import FitOptions, train

#: Small, fast settings: the synthetic set (3×32×32), a narrow network, a few hundred images.
FAST = dict(train_subset=192, test_subset=64, device="cpu", progress=False)


def test_names_and_paths(tmp_path):
    assert checkpoint_name(3) == "epoch_0003.pt" and checkpoint_name(12345) == "epoch_12345.pt"
    assert checkpoint_path(tmp_path, 0) == tmp_path / "epoch_0000.pt"
    assert checkpoint_path(str(tmp_path), 7).match(CHECKPOINT_GLOB)
    assert checkpoint_epoch(tmp_path / "epoch_0042.pt") == 42
    for other in ("epoch_0042.pt.tmp", ".epoch_0001.pt.1.ab.tmp", "epoch_x.pt", "model.pt"):
        assert checkpoint_epoch(other) is None


def test_latest_checkpoint_ignores_other_files(tmp_path):
    assert latest_checkpoint(tmp_path / "nothing") is None
    assert latest_checkpoint(tmp_path) is None
    for name in ("epoch_0002.pt", "epoch_0010.pt", "epoch_0099.pt.tmp", ".epoch_0100.pt.1.ab.tmp"):
        (tmp_path / name).write_bytes(b"")
    assert latest_checkpoint(tmp_path) == tmp_path / "epoch_0010.pt"


def _state(value: float) -> dict:
    return {"format": CHECKPOINT_FORMAT, "epoch": 1, "model": {"w": torch.full((3,), value)}}


def test_save_is_atomic_and_writes_what_torch_save_writes(tmp_path):
    path = tmp_path / "run" / checkpoint_name(1)
    assert save_checkpoint(_state(1.0), path) == path  # the directory is created
    buffer = io.BytesIO()
    torch.save(_state(1.0), buffer)
    assert path.read_bytes() == buffer.getvalue()
    with pytest.raises(TypeError, match="pickle"):  # fails after the temporary file is opened
        save_checkpoint({**_state(2.0), "bad": threading.Lock()}, path)
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.full((3,), 1.0))  # the old file
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_load_refuses_other_files(tmp_path):
    torch.save({"model": {}}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="not a crlm_bench training checkpoint of format 1"):
        load_checkpoint(tmp_path / "plain.pt")


def test_a_fifo_is_neither_resumed_from_nor_blocked_on(tmp_path):
    save_checkpoint(_state(1.0), tmp_path / checkpoint_name(2))
    fifo = tmp_path / checkpoint_name(3)
    os.mkfifo(fifo)
    assert latest_checkpoint(tmp_path) == tmp_path / checkpoint_name(2)
    outcome = {}

    def load():
        try:
            load_checkpoint(fifo)
        except OSError as error:
            outcome["error"] = error

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # blocked opening the FIFO: give it a writer so that the thread ends
        writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(writer)
        thread.join(10)
        pytest.fail("load_checkpoint blocked on a FIFO")
    assert "FIFO" in str(outcome.get("error"))


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_names_the_checkpoint_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = save_checkpoint(_state(1.0), tmp_path / checkpoint_name(1))
    real_save = torch.save

    def save_on_full_disk(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 the first bytes")
        full = open("/dev/full", "wb")  # torch's own failure: "[enforce fail at inline_container.cc]"
        try:
            real_save(obj, full, *args, **kwargs)
        finally:
            with contextlib.suppress(OSError):
                full.close()

    monkeypatch.setattr(torch, "save", save_on_full_disk)
    with pytest.raises(OSError, match=f"no space left on device at {path}"):
        save_checkpoint({**_state(2.0), "model": {"w": torch.zeros(10_000)}}, path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # nothing partial left
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.full((3,), 1.0))


def test_checkpoint_contents_and_atomic_write(tmp_path):
    got = []
    options = FitOptions(epochs=2, save_at=[1], checkpoint_dir=tmp_path, on_checkpoint=got.append, **FAST)
    result = train(build("vgg6_narrow", seed=0), "synthetic", "baseline", options)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_0001.pt", "epoch_0002.pt"]  # no temp files
    assert result.checkpoints == (tmp_path / "epoch_0001.pt", tmp_path / "epoch_0002.pt")
    assert [c.epoch for c in got] == [1, 2] and [c.path for c in got] == list(result.checkpoints)
    state = torch.load(tmp_path / "epoch_0002.pt", weights_only=True)  # plain tensors and dicts
    assert state["epoch"] == 2 and state["run"]["dataset"] == "synthetic" and state["arch"] == "vgg6_narrow"
    assert set(state) >= {"model", "optimizer", "scheduler", "generator", "torch_rng", "test_accuracy"}
    assert state["test_accuracy"] == dict(result.test_accuracy)
    assert latest_checkpoint(tmp_path) == tmp_path / "epoch_0002.pt"


def test_on_checkpoint_without_directory_gets_a_detached_state(tmp_path):
    got = []
    model = build("resnet8_narrow", seed=0)
    options = FitOptions(epochs=2, save_at=[1], on_checkpoint=got.append, **FAST)
    result = train(model, "synthetic", "baseline", options)
    assert result.checkpoints == () and [c.path for c in got] == [None, None]
    first = got[0].state["model"]["conv1.weight"]
    assert not torch.equal(first, model.conv1.weight.detach())  # a copy, not the live tensor
    torch.save(got[0].state, tmp_path / "s.pt")
    assert torch.load(tmp_path / "s.pt", weights_only=True)["epoch"] == 1
