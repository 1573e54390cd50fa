"""The training checkpoint format: file names, the state dictionary, atomic saving and loading.

A checkpoint is one file ``epoch_NNNN.pt`` (:func:`checkpoint_name`) per saved epoch, written
atomically with :func:`crlm_bench.files.atomic_write` (a full disk raises
:class:`~crlm_bench.files.DiskFullError` naming the file, and leaves nothing partial), holding a
dictionary of CPU tensors and plain values, loadable with ``torch.load(weights_only=True)``:

- ``format``: :data:`CHECKPOINT_FORMAT`; ``run``: the settings that must match to resume (data set,
  recipe, epochs, seed, subsets); ``arch``: the model's architecture name; ``epoch``;
- ``model``, ``optimizer``, ``scheduler``: their ``state_dict()``;
- ``generator``, ``torch_rng``, ``cuda_rng``: the training generator's and torch's RNG states;
- ``test_accuracy`` and ``train_loss``: ``{epoch: value}`` up to this epoch.

:func:`capture_state` builds the dictionary and :func:`restore_state` puts it back, so that resuming
gives the same weights as an uninterrupted run.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from crlm_bench.files import atomic_write, open_regular

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_GLOB",
    "Checkpoint",
    "capture_state",
    "checkpoint_epoch",
    "checkpoint_name",
    "checkpoint_path",
    "latest_checkpoint",
    "load_checkpoint",
    "restore_state",
    "save_checkpoint",
]

#: Version of the checkpoint dictionary layout.
CHECKPOINT_FORMAT = 1
#: Matches every checkpoint file in a directory (``Path.glob``).
CHECKPOINT_GLOB = "epoch_*.pt"
_CKPT_RE = re.compile(r"^epoch_(\d+)\.pt$")


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """One saved epoch: handed to ``on_checkpoint``. ``path`` is ``None`` when no
    ``checkpoint_dir`` was given; ``state`` is the full checkpoint dictionary (CPU tensors), ready
    for ``torch.save`` and loadable with ``torch.load(weights_only=True)``."""

    epoch: int
    test_accuracy: float
    path: Path | None
    state: dict


def checkpoint_name(epoch: int) -> str:
    """The file name of the checkpoint of ``epoch``: ``epoch_NNNN.pt``."""
    return f"epoch_{epoch:04d}.pt"


def checkpoint_path(checkpoint_dir: str | os.PathLike, epoch: int) -> Path:
    """Where the trainer writes the checkpoint of ``epoch`` in ``checkpoint_dir``."""
    return Path(checkpoint_dir) / checkpoint_name(epoch)


def checkpoint_epoch(path: str | os.PathLike) -> int | None:
    """The epoch of a checkpoint file named by :func:`checkpoint_name`; ``None`` for other names."""
    m = _CKPT_RE.match(Path(path).name)
    return int(m.group(1)) if m else None


def latest_checkpoint(checkpoint_dir: str | os.PathLike) -> Path | None:
    """The checkpoint of the highest epoch in ``checkpoint_dir``, or ``None`` if there is none.
    Only regular files count (a FIFO or device with a checkpoint's name is passed over)."""
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return None
    found = [
        (epoch, p) for p in folder.iterdir() if (epoch := checkpoint_epoch(p)) is not None and p.is_file()
    ]
    return max(found)[1] if found else None


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by the trainer (``weights_only=True``, tensors on the CPU); anything
    but a regular file raises :class:`~crlm_bench.files.NotARegularFileError` (never blocks)."""
    with open_regular(path) as f:
        state = torch.load(f, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} is not a crlm_bench training checkpoint of format {CHECKPOINT_FORMAT}; "
            f"delete it and train again"
        )
    return state


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """``torch.save`` ``state`` to ``path`` atomically (creating its directory); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        torch.save(state, f)
    return path


def _cpu_copy(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_cpu_copy(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_cpu_copy(v) for v in obj)
    return obj


def capture_state(
    *,
    run: dict,
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
    test_accuracy: dict[int, float],
    train_loss: dict[int, float],
) -> dict:
    """The checkpoint dictionary of a run after ``epoch`` (CPU copies; see the module docstring)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "run": run,
        "arch": getattr(model, "arch", type(model).__name__),
        "epoch": epoch,
        "model": _cpu_copy(getattr(model, "_orig_mod", model).state_dict()),
        "optimizer": _cpu_copy(optimizer.state_dict()),
        "scheduler": _cpu_copy(scheduler.state_dict()),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_initialized() else [],
        "test_accuracy": dict(test_accuracy),
        "train_loss": dict(train_loss),
    }


def restore_state(
    state: dict,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
) -> None:
    """Load ``state`` (from :func:`capture_state`) into the model, optimiser, scheduler, training
    generator and torch's RNGs. The caller checks first that ``state["run"]`` is its run."""
    getattr(model, "_orig_mod", model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
