"""The trainer: :func:`train` (a registered data set) and :func:`fit` (splits already loaded).

Both take a :class:`~crlm_bench.vision.recipes.Recipe` (or its registered name) and one
:class:`FitOptions`: the schedule (``epochs``, ``save_at``, ``seed``, ``stop_after``, subsets) and
how to run it (device, checkpoints, resume, bf16, channels_last, ``torch.compile``, progress bar).

The trainer keeps the data set on the device as one ``uint8`` tensor and does the augmentation
there in whole batches (random crop via padding + random offsets, flip via a random mask; no
per-sample PIL work), optionally with bf16 autocast, channels_last and ``torch.compile``. All
randomness of training (shuffling, augmentation, λ, permutations, mixing points) comes from one CPU
``torch.Generator`` seeded by ``seed``, so a run is deterministic on CPU for a given seed and model
initialisation (build the model with ``build(name, seed=...)``), and resuming from a checkpoint
(:mod:`crlm_bench.vision.checkpoints`) gives the same weights as an uninterrupted run. The draws of
an epoch are made up front, in the order :mod:`crlm_bench.vision.sampling` documents.

Test accuracy is measured at every saved epoch on the test split (evaluation view, no
augmentation); the accuracy reported is the last epoch's, never the best one (the paper's released
code kept the best checkpoint on the test set, which is selection on the test set).

The trainer stays one module (about 525 lines, above the project's ~500): :class:`FitOptions`, the
run's steps and the result are read together; recipes, mixing, sampling, checkpoints and
evaluation live beside it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from crlm_bench.vision import datasets as _datasets
from crlm_bench.vision.checkpoints import (
    Checkpoint,
    capture_state,
    checkpoint_path,
    load_checkpoint,
    restore_state,
    save_checkpoint,
)
from crlm_bench.vision.evaluation import check_compatible, evaluate_tensors, resolve_device
from crlm_bench.vision.mixing import HiddenMixer, mix, mixed_cross_entropy
from crlm_bench.vision.models import mixing_points
from crlm_bench.vision.recipes import Recipe, get_recipe
from crlm_bench.vision.sampling import EpochPlan, plan_epoch

__all__ = ["FitOptions", "TrainResult", "fit", "train"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Options and results


def _is_epoch_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class FitOptions:
    """How long and how to train: the options of :func:`train` and :func:`fit`, checked when made.

    Args:
        epochs: length of the schedule (cosine ``T_max``).
        save_at: epochs (1-based, after the epoch) at which a checkpoint is made; the last epoch
            is always included (:attr:`save_epochs`).
        evaluate_at: the saved epochs whose test accuracy is measured (default: every saved epoch;
            the last epoch always). A caller that checkpoints every epoch to resume, but needs the
            accuracy of a few, skips the other evaluations (one pass over the test set each; they
            do not change the training).
        seed: seeds the training generator (shuffling, augmentation, mixing). It does not
            initialise the model: use ``build(..., seed=seed)`` for that.
        device: default CUDA if available, else the CPU.
        checkpoint_dir: if given, each saved epoch is written atomically to
            ``checkpoint_dir/epoch_NNNN.pt`` (see :func:`~crlm_bench.vision.checkpoints.checkpoint_path`).
        on_checkpoint: called with a :class:`~crlm_bench.vision.checkpoints.Checkpoint` at every
            saved epoch (e.g. by an artifact store that writes the state itself; then leave
            ``checkpoint_dir`` as ``None``).
        resume_from: a checkpoint written by an earlier call with the same data set, recipe, epochs,
            seed and subsets; training continues after its epoch and ends in the same state as an
            uninterrupted run (bit-identical on CPU). A checkpoint of the last epoch only restores
            the model and returns the recorded accuracies.
        stop_after: stop after this epoch (simulates an interruption; the schedule is still that of
            ``epochs``). The result then reports the accuracy of the last epoch run.
        train_subset / test_subset: use only the first N images of a split (for quick runs).
        eval_batch_size: batch size of the test-set evaluations.
        amp: bf16 autocast for training (default: on for CUDA, off on CPU); test accuracy is
            always measured in float32. ``channels_last``: default on for CUDA. ``compile``:
            ``torch.compile`` the model for training (not with manifold mixup).
        progress: tqdm bar per epoch; ``None`` shows it only on a terminal.
    """

    epochs: int
    save_at: Iterable[int] = ()
    evaluate_at: Iterable[int] | None = None
    seed: int = 0
    device: str | torch.device | None = None
    checkpoint_dir: str | os.PathLike | None = None
    on_checkpoint: Callable[[Checkpoint], None] | None = None
    resume_from: str | os.PathLike | None = None
    stop_after: int | None = None
    train_subset: int | None = None
    test_subset: int | None = None
    eval_batch_size: int = 1024
    amp: bool | None = None
    channels_last: bool | None = None
    compile: bool = False
    progress: bool | None = None

    def __post_init__(self) -> None:
        epochs = self.epochs
        if not _is_epoch_count(epochs) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        save_at = tuple(self.save_at) if self.save_at is not None else ()
        object.__setattr__(self, "save_at", save_at)  # one tuple, whatever iterable was given
        bad = [e for e in save_at if not _is_epoch_count(e) or not 1 <= e <= epochs]
        if bad:
            raise ValueError(f"save_at must hold epochs in 1..{epochs} (epochs={epochs}), got {bad}")
        if self.evaluate_at is not None:
            evaluate_at = tuple(self.evaluate_at)
            object.__setattr__(self, "evaluate_at", evaluate_at)
            bad = [e for e in evaluate_at if not _is_epoch_count(e) or e not in self.save_epochs]
            if bad:
                raise ValueError(f"evaluate_at must hold saved epochs {self.save_epochs}, got {bad}")
        if not 1 <= self.last_epoch <= epochs:
            raise ValueError(f"stop_after must be in 1..{epochs}, got {self.stop_after}")
        for label, value in (("train_subset", self.train_subset), ("test_subset", self.test_subset)):
            if value is not None and (not isinstance(value, int) or value < 2):
                raise ValueError(f"{label} must be None or an integer >= 2, got {value!r}")

    @property
    def save_epochs(self) -> list[int]:
        """The epochs checkpointed, in order: ``save_at`` and the last epoch of the schedule."""
        return sorted(set(self.save_at) | {self.epochs})

    @property
    def evaluate_epochs(self) -> list[int]:
        """The epochs whose test accuracy is measured: ``evaluate_at`` (default every saved epoch)
        and the last epoch this call trains."""
        asked = self.save_epochs if self.evaluate_at is None else self.evaluate_at
        return sorted(set(asked) | {self.last_epoch})

    @property
    def last_epoch(self) -> int:
        """The last epoch this call trains: ``stop_after`` if given, else ``epochs``."""
        return self.epochs if self.stop_after is None else self.stop_after

    def replace(self, **changes: Any) -> FitOptions:
        """A copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`.

    ``test_accuracy``: ``(epoch, accuracy)`` at every evaluated epoch, including those before a resume;
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


# --------------------------------------------------------------------------------------------
# One run


class _Run:
    """The state of one :func:`fit` call: set up in ``__init__``, then :meth:`resume`,
    :meth:`prepare_mixing`, :meth:`train_epoch` and :meth:`evaluate_and_save` per epoch, and
    :meth:`result`."""

    def __init__(
        self,
        model: nn.Module,
        train_set: _datasets.ImageDataset,
        test_set: _datasets.ImageDataset,
        recipe: Recipe,
        options: FitOptions,
    ):
        self.model, self.recipe, self.options = model, recipe, options
        self.info = info = train_set.info
        self.epochs = epochs = options.epochs
        self.save_epochs = options.save_epochs
        self.last_epoch = options.last_epoch
        dev = self.dev = resolve_device(options.device)
        self.amp = dev.type == "cuda" if options.amp is None else options.amp
        self.channels_last = dev.type == "cuda" if options.channels_last is None else options.channels_last

        # Data: the whole split as uint8 on the device.
        x_train, y_train = train_set.images[: options.train_subset], train_set.targets[: options.train_subset]
        x_test, y_test = test_set.images[: options.test_subset], test_set.targets[: options.test_subset]
        self.x_train, self.y_train = x_train.to(dev), y_train.to(dev)
        self.x_test, self.y_test = x_test.to(dev), y_test.to(dev)
        self.n = n = self.x_train.shape[0]
        self.batch_size = batch_size = min(recipe.batch_size, n)
        steps_per_epoch = math.ceil(n / batch_size)
        if n % batch_size == 1:
            steps_per_epoch -= 1  # a last batch of one image would break BatchNorm; it is dropped
        self.steps_per_epoch = steps_per_epoch

        model.to(dev)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(
            model.parameters(),
            lr=recipe.lr,
            momentum=recipe.momentum,
            weight_decay=recipe.weight_decay,
            nesterov=recipe.nesterov,
        )
        t_max = epochs if recipe.schedule_unit == "epoch" else epochs * steps_per_epoch
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=t_max)
        self.generator = torch.Generator().manual_seed(options.seed)
        self.run_key = {
            "dataset": info.name,
            "recipe": dataclasses.asdict(recipe),
            "epochs": epochs,
            "seed": options.seed,
            "train_subset": options.train_subset,
            "test_subset": options.test_subset,
        }
        self.accuracies: dict[int, float] = {}
        self.losses: dict[int, float] = {}
        self.epoch_seconds: dict[int, float] = {}
        self.saved: list[Path] = []
        self.start_epoch = 1
        self.train_time, self.train_images = 0.0, 0
        self.mixer: HiddenMixer | None = None
        self.points: list[nn.Module | None] = []
        self.net: nn.Module = model

    def resume(self, resume_from: str | os.PathLike) -> None:
        """Restore the state saved in ``resume_from`` after checking that it is this run's."""
        state = load_checkpoint(resume_from)
        saved_run, run_key = state.get("run", {}), self.run_key
        differ = [k for k, v in run_key.items() if saved_run.get(k) != v]
        if differ:
            raise ValueError(
                f"checkpoint {resume_from} belongs to a different run ({', '.join(differ)} differ: "
                f"{ {k: saved_run.get(k) for k in differ} } vs { {k: run_key[k] for k in differ} }); "
                f"resume with the same settings or start afresh without resume_from"
            )
        restore_state(state, self.model, self.optimizer, self.scheduler, self.generator)
        self.accuracies = {int(k): float(v) for k, v in state["test_accuracy"].items()}
        self.start_epoch = int(state["epoch"]) + 1
        log.info("resuming %s from epoch %d (%s)", self.info.name, self.start_epoch - 1, resume_from)
        if self.start_epoch - 1 > self.last_epoch:
            raise ValueError(
                f"checkpoint {resume_from} is at epoch {self.start_epoch - 1}, past "
                f"stop_after={self.options.stop_after}; resume from an earlier checkpoint or raise stop_after"
            )
        # A checkpoint of the last epoch: nothing is left to train; the result is the recorded one.

    def prepare_mixing(self) -> None:
        """Hooks for manifold mixup, and the network that trains (compiled if asked and possible)."""
        compile = self.options.compile
        if self.recipe.mixing == "manifold_mixup":
            self.points = mixing_points(self.model)
            self.mixer = HiddenMixer([p for p in self.points if p is not None])
            if compile:
                log.warning("torch.compile is not used with manifold mixup (its hooks change per batch)")
                compile = False
        self.net = torch.compile(self.model) if compile else self.model

    def _batch(self, plan: EpochPlan, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (augmented, normalised, float32) and labels of one step."""
        rows = slice(step * self.batch_size, (step + 1) * self.batch_size)
        idx = plan.order[rows]
        xb, yb = self.x_train[idx], self.y_train[idx]
        if self.recipe.augment:
            xb = _datasets.crop_flip(xb, plan.offsets[:, rows], plan.flips[rows])
        xb = _datasets.normalize(xb, self.info)
        if self.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        return xb, yb

    def _step(self, plan: EpochPlan, step: int):
        """One optimiser step; returns the logits, loss, labels, λ and batch permutation."""
        recipe, mixer, points = self.recipe, self.mixer, self.points
        xb, yb = self._batch(plan, step)
        lam, perm = 1.0, None
        if recipe.mixing != "none":
            lam, perm = plan.lam[step], plan.perm(step, xb.shape[0])
            if recipe.mixing == "mixup" or points[plan.point[step]] is None:
                xb = mix(xb, lam, perm)
            else:
                mixer.arm(points[plan.point[step]], lam, perm)
        try:
            with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.amp):
                logits = self.net(xb)
        finally:
            if mixer is not None:
                mixer.arm(None, 1.0, None)  # only this forward pass is mixed
        logits = logits.float()
        if perm is None:
            loss = F.cross_entropy(logits, yb)
        else:
            loss = mixed_cross_entropy(logits, yb, yb[perm], lam)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if recipe.schedule_unit == "step":
            self.scheduler.step()
        return logits, loss, yb, lam, perm

    def train_epoch(self, epoch: int) -> None:
        """Draw the epoch's plan, run its steps, step the schedule and record the loss and time."""
        t0 = time.perf_counter()
        dev, recipe, steps_per_epoch = self.dev, self.recipe, self.steps_per_epoch
        self.model.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        correct = torch.zeros((), dtype=torch.float64, device=dev)
        seen = 0
        plan = plan_epoch(self.generator, self.n, steps_per_epoch, self.batch_size, recipe, dev)
        progress = self.options.progress
        bar = tqdm(
            total=steps_per_epoch,
            desc=f"{self.info.name} {recipe.name} epoch {epoch}/{self.epochs}",
            leave=False,
            disable=(None if progress is None else not progress),
            unit="batch",
        )
        for step in range(steps_per_epoch):
            logits, loss, yb, lam, perm = self._step(plan, step)
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
            self.scheduler.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        self.epoch_seconds[epoch] = time.perf_counter() - t0
        self.train_time += self.epoch_seconds[epoch]
        self.train_images += seen
        self.losses[epoch] = float(loss_sum) / max(1, seen)
        accuracy = float(correct) / max(1, seen)
        log.debug("epoch %d: train loss %.4f, train acc %.4f", epoch, self.losses[epoch], accuracy)

    def evaluate_and_save(self, epoch: int) -> None:
        """Test accuracy after ``epoch`` where asked (:attr:`FitOptions.evaluate_epochs`; NaN in
        the checkpoint handed on otherwise); at a saved epoch, a checkpoint (file and/or callback)."""
        acc = float("nan")
        if epoch in self.options.evaluate_epochs:
            acc = evaluate_tensors(
                self.model,
                self.x_test,
                self.y_test,
                self.info,
                batch_size=self.options.eval_batch_size,
                channels_last=self.channels_last,
            )
            self.accuracies[epoch] = acc
            log.info("epoch %d/%d: test accuracy %.4f", epoch, self.epochs, acc)
        if epoch not in self.save_epochs:
            return
        state = capture_state(
            run=self.run_key,
            epoch=epoch,
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            generator=self.generator,
            test_accuracy=self.accuracies,
            train_loss=self.losses,
        )
        path = None
        checkpoint_dir, on_checkpoint = self.options.checkpoint_dir, self.options.on_checkpoint
        if checkpoint_dir is not None:
            path = save_checkpoint(state, checkpoint_path(checkpoint_dir, epoch))
            self.saved.append(path)
        if on_checkpoint is not None:
            on_checkpoint(Checkpoint(epoch, acc, path, state))

    def run_epochs(self) -> None:
        """Train from ``start_epoch`` to ``last_epoch``, evaluating and saving where asked."""
        cudnn_benchmark = torch.backends.cudnn.benchmark
        if self.dev.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels
        try:
            for epoch in range(self.start_epoch, self.last_epoch + 1):
                self.train_epoch(epoch)
                if epoch in self.save_epochs or epoch == self.last_epoch:
                    self.evaluate_and_save(epoch)
        finally:
            torch.backends.cudnn.benchmark = cudnn_benchmark
            if self.mixer is not None:
                self.mixer.close()

    def result(self, t_start: float) -> TrainResult:
        train_time = self.train_time
        return TrainResult(
            dataset=self.info.name,
            recipe=self.recipe,
            epochs=self.epochs,
            seed=self.options.seed,
            test_accuracy=tuple(sorted(self.accuracies.items())),
            final_accuracy=self.accuracies[self.last_epoch],
            train_loss=tuple(sorted(self.losses.items())),
            epoch_seconds=tuple(sorted(self.epoch_seconds.items())),
            checkpoints=tuple(self.saved),
            start_epoch=self.start_epoch,
            wall_time_s=time.perf_counter() - t_start,
            train_images_per_s=self.train_images / train_time if train_time > 0 else float("nan"),
        )


# --------------------------------------------------------------------------------------------
# Entry points


def _check_options(options: Any) -> None:
    if not isinstance(options, FitOptions):
        raise TypeError(f"options must be a FitOptions, got {type(options).__name__}")


def train(
    model: nn.Module,
    dataset_name: str,
    recipe: str | Recipe,
    options: FitOptions,
    *,
    root: str | os.PathLike | None = None,
    download: bool = False,
) -> TrainResult:
    """Train ``model`` in place on ``dataset_name`` with ``recipe`` as ``options`` say.

    Args:
        model: e.g. ``build("resnet18", 10, 3, seed=0)``; must fit the data set (checked first).
        recipe: a registered name (:func:`~crlm_bench.vision.recipes.list_recipes`) or a
            :class:`~crlm_bench.vision.recipes.Recipe`.
        options: :class:`FitOptions` (``epochs``, ``save_at``, ``seed``, checkpoints, resume, …).
        root / download: where the data set is read (see :func:`crlm_bench.vision.datasets.load`).

    Returns:
        :class:`TrainResult`.
    """
    t_start = time.perf_counter()
    # Cheap checks before any data is read.
    _check_options(options)
    recipe = get_recipe(recipe)
    check_compatible(model, dataset_name)
    train_set = _datasets.load(dataset_name, "train", root=root, download=download)
    test_set = _datasets.load(dataset_name, "test", root=root, download=download)
    return _fit(model, train_set, test_set, recipe, options, t_start)


def fit(
    model: nn.Module,
    train_set: _datasets.ImageDataset,
    test_set: _datasets.ImageDataset,
    recipe: str | Recipe,
    options: FitOptions,
) -> TrainResult:
    """:func:`train` on already loaded splits (e.g. tensors built in memory for a benchmark).

    ``train_set`` / ``test_set`` are :class:`~crlm_bench.vision.datasets.ImageDataset` objects of
    the same data set; their ``augment`` flag is ignored (the recipe decides).
    """
    return _fit(model, train_set, test_set, recipe, options, time.perf_counter())


def _fit(
    model: nn.Module,
    train_set: _datasets.ImageDataset,
    test_set: _datasets.ImageDataset,
    recipe: str | Recipe,
    options: FitOptions,
    t_start: float,
) -> TrainResult:
    _check_options(options)
    recipe = get_recipe(recipe)
    info = train_set.info
    if test_set.info != info:
        raise ValueError(
            f"train_set is {info.name!r} but test_set is {test_set.info.name!r}; "
            f"pass two splits of one data set"
        )
    check_compatible(model, info.name)

    run = _Run(model, train_set, test_set, recipe, options)
    if options.resume_from is not None:
        run.resume(options.resume_from)
    run.prepare_mixing()
    run.run_epochs()
    model.eval()
    return run.result(t_start)
