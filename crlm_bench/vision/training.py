"""Training recipes and the trainer.

Recipes (registry :data:`RECIPES`, see :func:`list_recipes`):

- ``baseline`` — the paper's: SGD lr 0.1, momentum 0.9, weight decay 5e-4 (on all parameters),
  cosine annealing with ``T_max = epochs`` stepped once per epoch, batch 128, RandomCrop(padding 4)
  + horizontal flip.
- ``no_regularization`` — the same without weight decay and without augmentation.
- ``mixup`` — baseline plus mixup (Zhang et al. 2018) with α = 1: per batch λ ~ Beta(α, α), a random
  permutation π of the batch, input λ·x + (1−λ)·x[π], loss λ·CE(out, y) + (1−λ)·CE(out, y[π]).
- ``manifold_mixup`` — baseline plus manifold mixup (Verma et al. 2019) with α = 2: per batch the
  mixing point k is drawn uniformly from {input, output of the first stage, output of the second
  stage} and the hidden state there is mixed as above, with the same loss.

Mixup recipes keep the baseline's weight decay and augmentation (mixup is added on top, as in both
papers' CIFAR experiments). A recipe is a frozen dataclass; derive a variant with
``get_recipe("baseline").replace(lr=0.05, batch_size=256)`` — the CPU Fashion-MNIST budget does so
(see ``benchmarks/test_training.py``); the registered ``baseline`` stays exactly the paper's.

The trainer (:func:`train`) keeps the data set on the device as one ``uint8`` tensor and does the
augmentation there in whole batches (random crop via padding + random offsets, flip via a random
mask; no per-sample PIL work), optionally with bf16 autocast, channels_last and ``torch.compile``.
All randomness of training (shuffling, augmentation, λ, permutations, mixing points) comes from one
CPU ``torch.Generator`` seeded by ``seed``, so a run is deterministic on CPU for a given seed and
model initialisation (build the model with ``build(name, seed=...)``), and resuming from a
checkpoint gives the same weights as an uninterrupted run. The draws of an epoch are made up front,
in this order: the permutation of the training set; crop offsets ``(2, n)`` and flips ``(n,)`` (if
the recipe augments); one uniform per step mapped to λ by the inverse Beta(α, α) CDF, a row of
uniforms per step whose argsort is the batch permutation, and (manifold mixup) the mixing point per
step. They reach the device in a few transfers, so no step waits on the host.

Test accuracy is measured at every saved epoch on the test split (evaluation view, no
augmentation); the accuracy reported is the last epoch's, never the best one (the paper's released
code kept the best checkpoint on the test set, which is selection on the test set).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from scipy.special import betaincinv
from torch import nn
from tqdm.auto import tqdm

from crlm_bench.registry import Registry
from crlm_bench.vision import datasets as _datasets
from crlm_bench.vision.models import mixing_points

__all__ = [
    "CHECKPOINT_FORMAT",
    "RECIPES",
    "Checkpoint",
    "Recipe",
    "TrainResult",
    "check_compatible",
    "evaluate",
    "evaluate_tensors",
    "fit",
    "get_recipe",
    "latest_checkpoint",
    "list_recipes",
    "load_checkpoint",
    "mix",
    "mixed_cross_entropy",
    "sample_lambda",
    "train",
]

log = logging.getLogger(__name__)

#: Version of the checkpoint dictionary layout.
CHECKPOINT_FORMAT = 1
_MIXING = ("none", "mixup", "manifold_mixup")
_SCHEDULE_UNITS = ("epoch", "step")


# --------------------------------------------------------------------------------------------
# Recipes


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of a training recipe.

    ``schedule_unit``: cosine annealing stepped per ``"epoch"`` (the paper, ``T_max = epochs``) or
    per optimiser ``"step"`` (``T_max = epochs × steps per epoch``; smoother for runs of a few
    epochs). ``mixing``: ``"none"``, ``"mixup"`` or ``"manifold_mixup"``, with Beta(α, α)
    parameter ``mix_alpha``.
    """

    name: str
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    batch_size: int = 128
    augment: bool = True
    mixing: str = "none"
    mix_alpha: float = 0.0
    schedule_unit: str = "epoch"

    def __post_init__(self) -> None:
        problems = []
        if not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            problems.append(f"momentum must be in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not isinstance(self.batch_size, int) or self.batch_size < 2:
            problems.append(f"batch_size must be an integer >= 2 (BatchNorm), got {self.batch_size!r}")
        if self.mixing not in _MIXING:
            problems.append(f"mixing must be one of {_MIXING}, got {self.mixing!r}")
        if self.mixing != "none" and not self.mix_alpha > 0:
            problems.append(f"mix_alpha must be > 0 for {self.mixing}, got {self.mix_alpha}")
        if self.schedule_unit not in _SCHEDULE_UNITS:
            problems.append(f"schedule_unit must be one of {_SCHEDULE_UNITS}, got {self.schedule_unit!r}")
        if problems:
            raise ValueError(f"invalid recipe {self.name!r}: " + "; ".join(problems))

    def replace(self, **changes: Any) -> Recipe:
        """A copy with some fields changed (the name is kept unless given)."""
        return dataclasses.replace(self, **changes)


RECIPES: Registry[Recipe] = Registry("recipe")
RECIPES.add("baseline", Recipe("baseline"))
RECIPES.add("no_regularization", Recipe("no_regularization", weight_decay=0.0, augment=False))
RECIPES.add("mixup", Recipe("mixup", mixing="mixup", mix_alpha=1.0))
RECIPES.add("manifold_mixup", Recipe("manifold_mixup", mixing="manifold_mixup", mix_alpha=2.0))


def list_recipes(pattern: str = "*") -> list[str]:
    """Registered recipe names matching a shell-style pattern."""
    return RECIPES.names(pattern)


def get_recipe(recipe: str | Recipe) -> Recipe:
    """The registered recipe ``recipe`` (a :class:`Recipe` is returned unchanged)."""
    if isinstance(recipe, Recipe):
        return recipe
    return RECIPES.get(recipe)


# --------------------------------------------------------------------------------------------
# Mixup (Zhang et al. 2018) and manifold mixup (Verma et al. 2019)


def sample_lambda(alpha: float, generator: torch.Generator | None = None) -> float:
    """Draw λ ~ Beta(α, α) by inverse transform of one uniform from ``generator``.

    Uses only the torch generator (so its state alone determines training), via the regularised
    incomplete beta function's inverse; the trainer does the same for all steps of an epoch at once.
    """
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    u = float(torch.rand((), generator=generator, dtype=torch.float64))
    return float(betaincinv(alpha, alpha, u))


def mix(x: torch.Tensor, lam: float, perm: torch.Tensor) -> torch.Tensor:
    """``λ·x + (1−λ)·x[perm]`` along the batch dimension."""
    return lam * x + (1.0 - lam) * x[perm]


def mixed_cross_entropy(logits: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, lam: float) -> torch.Tensor:
    """``λ·CE(logits, y_a) + (1−λ)·CE(logits, y_b)`` (mean over the batch)."""
    return lam * F.cross_entropy(logits, y_a) + (1.0 - lam) * F.cross_entropy(logits, y_b)


@dataclass(frozen=True)
class _EpochPlan:
    """All random draws of one epoch, made up front on the CPU generator and moved to the device
    in a few transfers (no host–device synchronisation per step)."""

    order: torch.Tensor  # (n,) the epoch's permutation of the training set
    offsets: torch.Tensor | None  # (2, n) crop offsets, per position in ``order``
    flips: torch.Tensor | None  # (n,) horizontal flips
    lam: list[float]  # per step, λ ~ Beta(α, α)
    perm_keys: torch.Tensor | None  # (steps, batch) uniforms; argsort gives the batch permutation
    point: list[int]  # per step, manifold-mixup mixing point (0 input, 1 first stage, 2 second)

    def perm(self, step: int, b: int) -> torch.Tensor:
        return self.perm_keys[step, :b].argsort()


def _plan_epoch(
    generator: torch.Generator, n: int, steps: int, batch_size: int, recipe: Recipe, device: torch.device
) -> _EpochPlan:
    order = torch.randperm(n, generator=generator)
    offsets = flips = perm_keys = None
    lam: list[float] = []
    point: list[int] = []
    if recipe.augment:
        pad = _datasets.CROP_PADDING
        offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).to(device)
        flips = (torch.rand(n, generator=generator) < 0.5).to(device)
    if recipe.mixing != "none":
        u = torch.rand(steps, generator=generator, dtype=torch.float64).numpy()
        lam = [float(v) for v in betaincinv(recipe.mix_alpha, recipe.mix_alpha, u)]
        perm_keys = torch.rand(steps, batch_size, generator=generator).to(device)
        if recipe.mixing == "manifold_mixup":
            point = torch.randint(0, 3, (steps,), generator=generator).tolist()
    return _EpochPlan(order.to(device), offsets, flips, lam, perm_keys, point)


class _HiddenMixer:
    """Forward hooks that mix the output of one chosen module (manifold mixup), armed per batch."""

    def __init__(self, modules: Iterable[nn.Module]):
        self.target: nn.Module | None = None
        self.lam, self.perm = 1.0, None
        self.handles = [m.register_forward_hook(self._hook) for m in modules]

    def _hook(self, module: nn.Module, inputs, output):
        if module is self.target:
            return mix(output, self.lam, self.perm)
        return None

    def arm(self, target: nn.Module | None, lam: float, perm: torch.Tensor | None) -> None:
        self.target, self.lam, self.perm = target, lam, perm

    def close(self) -> None:
        for h in self.handles:
            h.remove()


# --------------------------------------------------------------------------------------------
# Results and checkpoints


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """One saved epoch: handed to ``on_checkpoint``. ``path`` is ``None`` when no
    ``checkpoint_dir`` was given; ``state`` is the full checkpoint dictionary (CPU tensors), ready
    for ``torch.save`` and loadable with ``torch.load(weights_only=True)``."""

    epoch: int
    test_accuracy: float
    path: Path | None
    state: dict


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`.

    ``test_accuracy``: ``(epoch, accuracy)`` at every saved epoch, including those before a resume;
    ``final_accuracy``: the last epoch's test accuracy (never the best). ``train_loss``:
    ``(epoch, mean training loss)`` and ``epoch_seconds`` ``(epoch, seconds of training steps)`` for
    the epochs run in this call. ``wall_time_s`` covers this call
    (data loading, training and evaluation); ``train_images_per_s`` the training steps only.
    """

    dataset: str
    recipe: Recipe
    epochs: int
    seed: int
    test_accuracy: tuple[tuple[int, float], ...]
    final_accuracy: float
    train_loss: tuple[tuple[int, float], ...]
    epoch_seconds: tuple[tuple[int, float], ...]
    checkpoints: tuple[Path, ...]
    start_epoch: int
    wall_time_s: float
    train_images_per_s: float

    @property
    def accuracy_by_epoch(self) -> dict[int, float]:
        return dict(self.test_accuracy)


def checkpoint_path(checkpoint_dir: str | os.PathLike, epoch: int) -> Path:
    """Where :func:`train` writes the checkpoint of ``epoch`` in ``checkpoint_dir``."""
    return Path(checkpoint_dir) / f"epoch_{epoch:04d}.pt"


_CKPT_RE = re.compile(r"^epoch_(\d+)\.pt$")


def latest_checkpoint(checkpoint_dir: str | os.PathLike) -> Path | None:
    """The checkpoint of the highest epoch in ``checkpoint_dir``, or ``None`` if there is none."""
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _CKPT_RE.match(p.name))]
    return max(found)[1] if found else None


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by :func:`train` (``weights_only=True``, tensors on the CPU)."""
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} is not a crlm_bench training checkpoint of format {CHECKPOINT_FORMAT}; "
            f"delete it and train again"
        )
    return state


def _save_atomic(state: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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


# --------------------------------------------------------------------------------------------
# Checks


def _model_shape(model: nn.Module) -> tuple[int | None, int | None]:
    inner = getattr(model, "_orig_mod", model)
    in_ch = getattr(inner, "in_channels", None)
    classes = getattr(inner, "num_classes", None)
    if in_ch is None:
        first = next((m for m in inner.modules() if isinstance(m, nn.Conv2d)), None)
        in_ch = first.in_channels if first is not None else None
    if classes is None:
        last = [m for m in inner.modules() if isinstance(m, nn.Linear)]
        classes = last[-1].out_features if last else None
    return in_ch, classes


def check_compatible(model: nn.Module, dataset_name: str) -> None:
    """Raise ``ValueError`` if ``model``'s input channels or classes do not fit the data set."""
    info = _datasets.dataset_info(dataset_name)
    in_ch, classes = _model_shape(model)
    arch = getattr(getattr(model, "_orig_mod", model), "arch", type(model).__name__)
    problems = []
    if in_ch is not None and in_ch != info.in_channels:
        problems.append(f"it takes {in_ch}-channel input but {info.name} images have {info.in_channels} channel(s)")
    if classes is not None and classes != info.num_classes:
        problems.append(f"it has {classes} outputs but {info.name} has {info.num_classes} classes")
    if problems:
        raise ValueError(
            f"model {arch!r} does not fit data set {info.name!r}: {'; '.join(problems)}. Build it with "
            f"crlm_bench.vision.models.build({arch!r}, num_classes={info.num_classes}, "
            f"in_channels={info.in_channels})."
        )


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# --------------------------------------------------------------------------------------------
# Evaluation


@torch.no_grad()
def evaluate_tensors(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    info: _datasets.DatasetInfo,
    *,
    batch_size: int = 1024,
    amp: bool = False,
    channels_last: bool = False,
) -> float:
    """Accuracy of ``model`` on ``uint8`` ``images`` ``(N, C, H, W)`` of data set ``info`` (normalised
    here) with labels ``targets``, on the images' device; the model's mode is restored after."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=images.device)
    try:
        for start in range(0, images.shape[0], batch_size):
            x = _datasets.normalize(images[start : start + batch_size], info)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(x)
            correct += (logits.argmax(1) == targets[start : start + batch_size]).sum()
    finally:
        model.train(was_training)
    return int(correct) / max(1, images.shape[0])


def evaluate(
    model: nn.Module,
    dataset_name: str,
    *,
    root: str | os.PathLike | None = None,
    batch_size: int = 1024,
    split: str = "test",
    device: str | torch.device | None = None,
    amp: bool = False,
    download: bool = False,
) -> float:
    """Accuracy of ``model`` on a split (default the test set, evaluation view) of a data set.

    The model is run on ``device`` (default: where its parameters are) in float32 unless ``amp``
    (bf16 autocast); it is left in the mode it was in. The trainer measures test accuracy the same
    way (float32, even when training in bf16).
    """
    check_compatible(model, dataset_name)
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    dev = torch.device(device)
    model.to(dev)
    ds = _datasets.load(dataset_name, split, root=root, download=download)
    return evaluate_tensors(
        model, ds.images.to(dev), ds.targets.to(dev), ds.info,
        batch_size=batch_size, amp=amp, channels_last=dev.type == "cuda",
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Training


def _save_epochs(save_at: Iterable[int] | None, epochs: int) -> list[int]:
    raw = list(save_at) if save_at is not None else []
    bad = [e for e in raw if not isinstance(e, int) or isinstance(e, bool) or not 1 <= e <= epochs]
    if bad:
        raise ValueError(f"save_at must hold epochs in 1..{epochs} (epochs={epochs}), got {bad}")
    return sorted(set(raw) | {epochs})


def train(
    model: nn.Module,
    dataset_name: str,
    recipe: str | Recipe = "baseline",
    *,
    epochs: int,
    save_at: Iterable[int] | None = None,
    seed: int = 0,
    root: str | os.PathLike | None = None,
    download: bool = False,
    device: str | torch.device | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    on_checkpoint: Callable[[Checkpoint], None] | None = None,
    resume_from: str | os.PathLike | None = None,
    stop_after: int | None = None,
    train_subset: int | None = None,
    test_subset: int | None = None,
    eval_batch_size: int = 1024,
    amp: bool | None = None,
    channels_last: bool | None = None,
    compile: bool = False,
    progress: bool | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``dataset_name`` with ``recipe`` for ``epochs`` epochs.

    Args:
        model: e.g. ``build("resnet18", 10, 3, seed=0)``; must fit the data set (checked first).
        recipe: a registered name (:func:`list_recipes`) or a :class:`Recipe`.
        epochs: length of the schedule (cosine ``T_max``).
        save_at: epochs (1-based, after the epoch) at which test accuracy is measured and a
            checkpoint is made; the last epoch is always included.
        seed: seeds the training generator (shuffling, augmentation, mixing). It does not
            initialise the model: use ``build(..., seed=seed)`` for that.
        checkpoint_dir: if given, each saved epoch is written atomically to
            ``checkpoint_dir/epoch_NNNN.pt`` (see :func:`checkpoint_path`).
        on_checkpoint: called with a :class:`Checkpoint` at every saved epoch (e.g. by an artifact
            store that writes the state itself; then leave ``checkpoint_dir`` as ``None``).
        resume_from: a checkpoint written by an earlier call with the same data set, recipe, epochs,
            seed and subsets; training continues after its epoch and ends in the same state as an
            uninterrupted run (bit-identical on CPU). A checkpoint of the last epoch only restores
            the model and returns the recorded accuracies.
        stop_after: stop after this epoch (simulates an interruption; the schedule is still that of
            ``epochs``). The result then reports the accuracy of the last epoch run.
        train_subset / test_subset: use only the first N images of a split (for quick runs).
        amp: bf16 autocast for training (default: on for CUDA, off on CPU); test accuracy is
            always measured in float32. ``channels_last``: default on for CUDA. ``compile``:
            ``torch.compile`` the model for training (not with manifold mixup).
        progress: tqdm bar per epoch; ``None`` shows it only on a terminal.

    Returns:
        :class:`TrainResult`.
    """
    t_start = time.perf_counter()
    # Cheap checks before any data is read.
    recipe = get_recipe(recipe)
    check_compatible(model, dataset_name)
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    _save_epochs(save_at, epochs)
    train_set = _datasets.load(dataset_name, "train", root=root, download=download)
    test_set = _datasets.load(dataset_name, "test", root=root, download=download)
    return fit(
        model,
        train_set,
        test_set,
        recipe,
        epochs=epochs,
        save_at=save_at,
        seed=seed,
        device=device,
        checkpoint_dir=checkpoint_dir,
        on_checkpoint=on_checkpoint,
        resume_from=resume_from,
        stop_after=stop_after,
        train_subset=train_subset,
        test_subset=test_subset,
        eval_batch_size=eval_batch_size,
        amp=amp,
        channels_last=channels_last,
        compile=compile,
        progress=progress,
        _t_start=t_start,
    )


def fit(
    model: nn.Module,
    train_set: _datasets.ImageDataset,
    test_set: _datasets.ImageDataset,
    recipe: str | Recipe = "baseline",
    *,
    epochs: int,
    save_at: Iterable[int] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    on_checkpoint: Callable[[Checkpoint], None] | None = None,
    resume_from: str | os.PathLike | None = None,
    stop_after: int | None = None,
    train_subset: int | None = None,
    test_subset: int | None = None,
    eval_batch_size: int = 1024,
    amp: bool | None = None,
    channels_last: bool | None = None,
    compile: bool = False,
    progress: bool | None = None,
    _t_start: float | None = None,
) -> TrainResult:
    """:func:`train` on already loaded splits (e.g. tensors built in memory for a benchmark).

    ``train_set`` / ``test_set`` are :class:`~crlm_bench.vision.datasets.ImageDataset` objects of
    the same data set; their ``augment`` flag is ignored (the recipe decides). Other arguments as
    for :func:`train`.
    """
    t_start = time.perf_counter() if _t_start is None else _t_start
    recipe = get_recipe(recipe)
    info = train_set.info
    dataset_name = info.name
    if test_set.info != info:
        raise ValueError(
            f"train_set is {info.name!r} but test_set is {test_set.info.name!r}; pass two splits of one data set"
        )
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    save_epochs = _save_epochs(save_at, epochs)
    check_compatible(model, dataset_name)
    last_epoch = epochs if stop_after is None else stop_after
    if not 1 <= last_epoch <= epochs:
        raise ValueError(f"stop_after must be in 1..{epochs}, got {stop_after}")
    for label, value in (("train_subset", train_subset), ("test_subset", test_subset)):
        if value is not None and (not isinstance(value, int) or value < 2):
            raise ValueError(f"{label} must be None or an integer >= 2, got {value!r}")

    dev = _resolve_device(device)
    amp = dev.type == "cuda" if amp is None else amp
    channels_last = dev.type == "cuda" if channels_last is None else channels_last

    # Data: the whole split as uint8 on the device.
    x_train, y_train = train_set.images[:train_subset], train_set.targets[:train_subset]
    x_test, y_test = test_set.images[:test_subset], test_set.targets[:test_subset]
    x_train, y_train = x_train.to(dev), y_train.to(dev)
    x_test, y_test = x_test.to(dev), y_test.to(dev)
    n = x_train.shape[0]
    batch_size = min(recipe.batch_size, n)
    steps_per_epoch = math.ceil(n / batch_size)
    if n % batch_size == 1:
        steps_per_epoch -= 1  # a last batch of one image would break BatchNorm; it is dropped

    model.to(dev)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=recipe.lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        nesterov=recipe.nesterov,
    )
    t_max = epochs if recipe.schedule_unit == "epoch" else epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t_max)
    generator = torch.Generator().manual_seed(seed)
    accuracies: dict[int, float] = {}
    start_epoch = 1

    run_key = {
        "dataset": dataset_name,
        "recipe": dataclasses.asdict(recipe),
        "epochs": epochs,
        "seed": seed,
        "train_subset": train_subset,
        "test_subset": test_subset,
    }
    if resume_from is not None:
        state = load_checkpoint(resume_from)
        differ = [k for k, v in run_key.items() if state.get("run", {}).get(k) != v]
        if differ:
            raise ValueError(
                f"checkpoint {resume_from} belongs to a different run ({', '.join(differ)} differ: "
                f"{ {k: state.get('run', {}).get(k) for k in differ} } vs { {k: run_key[k] for k in differ} }); "
                f"resume with the same settings or start afresh without resume_from"
            )
        getattr(model, "_orig_mod", model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        accuracies = {int(k): float(v) for k, v in state["test_accuracy"].items()}
        start_epoch = int(state["epoch"]) + 1
        log.info("resuming %s from epoch %d (%s)", dataset_name, start_epoch - 1, resume_from)
        if start_epoch - 1 > last_epoch:
            raise ValueError(
                f"checkpoint {resume_from} is at epoch {start_epoch - 1}, past stop_after={stop_after}; "
                f"resume from an earlier checkpoint or raise stop_after"
            )
        # A checkpoint of the last epoch: nothing is left to train; the result is the recorded one.

    mixer = None
    if recipe.mixing == "manifold_mixup":
        points = mixing_points(model)
        mixer = _HiddenMixer([p for p in points if p is not None])
        if compile:
            log.warning("torch.compile is not used with manifold mixup (its hooks change per batch)")
            compile = False
    net = torch.compile(model) if compile else model

    losses: dict[int, float] = {}
    epoch_seconds: dict[int, float] = {}
    saved: list[Path] = []
    train_time, train_images = 0.0, 0
    cudnn_benchmark = torch.backends.cudnn.benchmark
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels
    try:
        for epoch in range(start_epoch, last_epoch + 1):
            t0 = time.perf_counter()
            model.train()
            loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
            correct = torch.zeros((), dtype=torch.float64, device=dev)
            seen = 0
            plan = _plan_epoch(generator, n, steps_per_epoch, batch_size, recipe, dev)
            bar = tqdm(
                total=steps_per_epoch,
                desc=f"{dataset_name} {recipe.name} epoch {epoch}/{epochs}",
                leave=False,
                disable=(None if progress is None else not progress),
                unit="batch",
            )
            for step in range(steps_per_epoch):
                rows = slice(step * batch_size, (step + 1) * batch_size)
                idx = plan.order[rows]
                xb, yb = x_train[idx], y_train[idx]
                if recipe.augment:
                    xb = _datasets.crop_flip(xb, plan.offsets[:, rows], plan.flips[rows])
                xb = _datasets.normalize(xb, info)
                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                lam, perm = 1.0, None
                if recipe.mixing != "none":
                    lam, perm = plan.lam[step], plan.perm(step, xb.shape[0])
                    if recipe.mixing == "mixup" or points[plan.point[step]] is None:
                        xb = mix(xb, lam, perm)
                    else:
                        mixer.arm(points[plan.point[step]], lam, perm)
                try:
                    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                        logits = net(xb)
                finally:
                    if mixer is not None:
                        mixer.arm(None, 1.0, None)  # only this forward pass is mixed
                logits = logits.float()
                if perm is None:
                    loss = F.cross_entropy(logits, yb)
                else:
                    loss = mixed_cross_entropy(logits, yb, yb[perm], lam)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if recipe.schedule_unit == "step":
                    scheduler.step()
                with torch.no_grad():
                    b = yb.shape[0]
                    seen += b
                    loss_sum += loss.detach().double() * b
                    pred = logits.argmax(1)
                    if perm is None:
                        correct += (pred == yb).sum()
                    else:
                        correct += lam * (pred == yb).sum() + (1 - lam) * (pred == yb[perm]).sum()
                bar.update(1)
                if not bar.disable and (step % 20 == 19 or step == steps_per_epoch - 1):
                    bar.set_postfix(loss=f"{float(loss_sum) / seen:.3f}", acc=f"{float(correct) / seen:.3f}")
            bar.close()
            if recipe.schedule_unit == "epoch":
                scheduler.step()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            epoch_seconds[epoch] = time.perf_counter() - t0
            train_time += epoch_seconds[epoch]
            train_images += seen
            losses[epoch] = float(loss_sum) / max(1, seen)
            log.debug("epoch %d: train loss %.4f, train acc %.4f", epoch, losses[epoch], float(correct) / max(1, seen))

            if epoch in save_epochs or epoch == last_epoch:
                acc = evaluate_tensors(
                    model, x_test, y_test, info, batch_size=eval_batch_size, channels_last=channels_last
                )
                accuracies[epoch] = acc
                log.info("epoch %d/%d: test accuracy %.4f", epoch, epochs, acc)
                if epoch in save_epochs:
                    state = {
                        "format": CHECKPOINT_FORMAT,
                        "run": run_key,
                        "arch": getattr(model, "arch", type(model).__name__),
                        "epoch": epoch,
                        "model": _cpu_copy(getattr(model, "_orig_mod", model).state_dict()),
                        "optimizer": _cpu_copy(optimizer.state_dict()),
                        "scheduler": _cpu_copy(scheduler.state_dict()),
                        "generator": generator.get_state(),
                        "torch_rng": torch.get_rng_state(),
                        "cuda_rng": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_initialized() else [],
                        "test_accuracy": dict(accuracies),
                        "train_loss": dict(losses),
                    }
                    path = None
                    if checkpoint_dir is not None:
                        path = checkpoint_path(checkpoint_dir, epoch)
                        _save_atomic(state, path)
                        saved.append(path)
                    if on_checkpoint is not None:
                        on_checkpoint(Checkpoint(epoch, acc, path, state))
    finally:
        torch.backends.cudnn.benchmark = cudnn_benchmark
        if mixer is not None:
            mixer.close()

    model.eval()
    wall = time.perf_counter() - t_start
    return TrainResult(
        dataset=dataset_name,
        recipe=recipe,
        epochs=epochs,
        seed=seed,
        test_accuracy=tuple(sorted(accuracies.items())),
        final_accuracy=accuracies[last_epoch],
        train_loss=tuple(sorted(losses.items())),
        epoch_seconds=tuple(sorted(epoch_seconds.items())),
        checkpoints=tuple(saved),
        start_epoch=start_epoch,
        wall_time_s=wall,
        train_images_per_s=train_images / train_time if train_time > 0 else float("nan"),
    )
