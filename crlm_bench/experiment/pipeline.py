"""A cell's artifacts in the store: its training run (checkpoints, accuracies) and its profile.

Store kinds:

- ``"training"``, keyed by :attr:`Training.key`: one file ``epoch_NNNN.pt`` per epoch in
  ``save_at`` (model weights only, loadable with ``weights_only=True``) and the test accuracy of
  each in the manifest's ``meta``. The run's full training state lives in the entry's workdir
  while it runs, so a killed training resumes from its last checkpoint.
- ``"profile"``, keyed by :attr:`Cell.key`: ``profile.parquet`` (one row per probe) with the
  cell's settings in the manifest; the per-chunk intermediate results live in the workdir while
  it runs, so a killed profile resumes at the next chunk.

Each is computed once per key across processes (the store's per-key lock).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from crlm_bench.experiment import probing
from crlm_bench.experiment.cell import UNTRAINED, Cell, Training
from crlm_bench.experiment.store import Entry, Store, load_frame, load_tensors, save_frame, save_tensors
from crlm_bench.vision import datasets, evaluation, models, recipes, training
from crlm_bench.vision.checkpoints import (
    CHECKPOINT_GLOB,
    Checkpoint,
    checkpoint_name,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
)

log = logging.getLogger(__name__)

#: the files of a profile entry: one row per probe, and the per-point values behind each row
PROFILE_FILE, POINTS_FILE = "profile.parquet", "points.parquet"
#: The store kinds of a training run and of a profile.
TRAINING_KIND, PROFILE_KIND = "training", "profile"
#: FitOptions fields that a Training override may set (the rest must be Recipe fields)
TRAIN_OPTIONS = ("train_subset", "test_subset")


@dataclass(frozen=True)
class Context:
    """Where and how to compute: data root, download permission, device, progress bars, and
    where progress lines go (``report(message, step)``: ``step`` marks a line worth keeping in a
    log — an epoch, a chunk of points — the others only refresh a live line; not sent to other
    processes: the submitit executor drops it)."""

    data_root: str | None = None
    download: bool = False
    device: str | None = None
    progress: bool | None = None
    memory_bytes: int = probing.MEMORY_BYTES
    report: probing.Reporter | None = field(default=None, compare=False, repr=False)

    def say(self, message: str, step: bool = True) -> None:
        """Send one progress line to ``report``, if any."""
        if self.report is not None:
            self.report(message, step)

    @property
    def torch_device(self) -> torch.device:
        if self.device:
            return torch.device(self.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def check(self) -> Context:
        """Raise ValueError, before anything is computed, for a device torch does not know or
        one this machine does not have, and for a memory bound below one byte."""
        try:
            device = self.torch_device
        except RuntimeError as error:
            raise ValueError(f"unknown device {self.device!r}: {str(error).splitlines()[0]}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device {self.device!r}: no CUDA device is visible on this machine; use --device cpu"
            )
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {self.device!r}: this machine has {torch.cuda.device_count()} CUDA devices"
            )
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"device {self.device!r}: MPS is not available on this machine")
        if self.memory_bytes < 1:
            raise ValueError(f"memory bound must be positive, got {self.memory_bytes} bytes")
        return self


def provenance(ctx: Context, started: float) -> dict:
    """What produced an artefact besides its key, for its manifest's ``meta``: the torch thread
    count (other counts round training differently), the device, and the seconds the computing
    took (from ``started``, a :func:`time.monotonic` reading; what :mod:`.cost` estimates from).
    A run resumed under other settings records those of the process that finished it, and only
    that process's seconds."""
    return {
        "threads": torch.get_num_threads(),
        "device": ctx.torch_device.type,
        "seconds": round(time.monotonic() - started, 3),
    }


def build_model(spec: Training) -> torch.nn.Module:
    info = datasets.dataset_info(spec.dataset)
    return models.build(spec.model, info.num_classes, info.in_channels, seed=spec.seed)


def _coerce(name: str, value, default):
    """``value`` as the type of the setting's ``default``: an integral float for an int, any
    number for a float; a bool only for a bool. Anything else is a ValueError naming the setting."""
    if isinstance(default, bool) or isinstance(value, bool):
        if isinstance(default, bool) and isinstance(value, bool):
            return value
    elif isinstance(default, int) or (default is None and name in TRAIN_OPTIONS):
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return int(value)
    elif isinstance(default, float):
        if isinstance(value, (int, float)):
            return float(value)
    elif isinstance(default, str) and isinstance(value, str):
        return value
    if value is None and default is None:
        return None
    kind = "an integer" if name in TRAIN_OPTIONS else type(default).__name__
    raise ValueError(f"override {name}={value!r}: expected {kind} (default {default!r})")


def normalised(spec: Training) -> Training:
    """``spec`` with its overrides in the types of the settings they set (``lr=1`` → ``1.0``,
    ``batch_size=64.0`` → ``64``) and without those equal to the recipe's or the train options'
    defaults, so that settings meaning the same run share one key. Raises ValueError for an
    unknown name, a value of the wrong type or one the recipe or the train options refuse."""
    if spec.recipe == UNTRAINED:
        return spec
    recipe = recipes.get_recipe(spec.recipe)
    defaults = {f.name: getattr(recipe, f.name) for f in dataclasses.fields(recipe)} | {
        name: None for name in TRAIN_OPTIONS
    }
    defaults.pop("name")
    unknown = sorted(set(spec.options) - set(defaults))
    if unknown:
        raise ValueError(
            f"unknown training override(s) {unknown}; recipe fields: "
            f"{sorted(set(defaults) - set(TRAIN_OPTIONS))}, train options: {list(TRAIN_OPTIONS)}"
        )
    kept = {}
    for name, value in spec.options.items():
        value = _coerce(name, value, defaults[name])
        if value != defaults[name]:
            kept[name] = value
    if list(kept.items()) == list(spec.options.items()) and all(
        type(kept[k]) is type(v) for k, v in spec.options.items()
    ):
        return spec
    return dataclasses.replace(spec, overrides=tuple(sorted(kept.items())))


def recipe_and_options(spec: Training) -> tuple[recipes.Recipe, dict]:
    """The recipe with the cell's overrides applied, and the FitOptions fields among them; both
    checked (the recipe's and FitOptions' own rules) before anything is computed."""
    spec = normalised(spec)
    recipe = recipes.get_recipe(spec.recipe)
    fields = {f.name for f in dataclasses.fields(recipe)} - {"name"}
    opts = spec.options
    recipe = recipe.replace(**{k: v for k, v in opts.items() if k in fields})
    options = {k: v for k, v in opts.items() if k in TRAIN_OPTIONS}
    training.FitOptions(epochs=spec.epochs, save_at=spec.save_at, **options)  # raises on a bad value
    return recipe, options


def ensure_training(spec: Training, store: Store, ctx: Context = Context()) -> Entry:
    """The stored training run of ``spec``, trained (or resumed) first if missing."""

    def create(workdir: Path):
        started = time.monotonic()
        name = f"{spec.dataset}-{spec.model}-{spec.recipe}-s{spec.seed}"
        ctx.say(f"training {name}: building the network")
        model = build_model(spec)
        files: dict[str, Path] = {}
        accuracy: dict[int, float] = {}
        if 0 in spec.save_at:  # the initialisation (the whole of an untrained cell)
            init = checkpoint_path(workdir, 0)
            save_tensors(init, {"model": model.state_dict()})
            files[init.name] = init
            accuracy[0] = evaluation.evaluate(
                model, spec.dataset, root=ctx.data_root, download=ctx.download, device=ctx.torch_device
            )
        if spec.recipe != UNTRAINED:
            recipe, options = recipe_and_options(spec)
            run_dir = workdir / "run"
            keep = set(spec.save_at)

            def prune(ckpt: Checkpoint) -> None:
                # a resumable state every epoch, but only the asked epochs are kept on disk
                for older in run_dir.glob(CHECKPOINT_GLOB):
                    epoch = int(older.stem.split("_")[1])
                    if epoch < ckpt.epoch and epoch not in keep:
                        older.unlink(missing_ok=True)
                accuracy = (
                    "" if math.isnan(ckpt.test_accuracy) else f", test accuracy {ckpt.test_accuracy:.4f}"
                )
                ctx.say(f"training {name}: epoch {ckpt.epoch}/{spec.epochs}{accuracy}")

            fit_options = training.FitOptions(
                epochs=spec.epochs,
                save_at=range(1, spec.epochs + 1),
                evaluate_at=[e for e in spec.save_at if e > 0],  # the others only to resume
                seed=spec.seed,
                device=ctx.torch_device,
                checkpoint_dir=run_dir,
                on_checkpoint=prune,
                resume_from=latest_checkpoint(run_dir),
                progress=ctx.progress,
                **options,
            )
            result = training.train(
                model, spec.dataset, recipe, fit_options, root=ctx.data_root, download=ctx.download
            )
            for epoch, acc in result.test_accuracy:
                if epoch not in keep:
                    continue
                weights = checkpoint_path(workdir, epoch)
                state = load_checkpoint(checkpoint_path(run_dir, epoch))
                save_tensors(weights, {"model": state["model"]})
                files[weights.name] = weights
                accuracy[epoch] = acc
        accuracies = {str(e): a for e, a in sorted(accuracy.items())}
        meta = {"test_accuracy": accuracies, **provenance(ctx, started)}
        return files, meta

    return store.get_or_create(
        TRAINING_KIND,
        spec.key,
        create,
        spec.to_dict(),
        summary=f"{spec.dataset}-{spec.model}-{spec.recipe}-s{spec.seed}",
    )


def load_model(cell: Cell, store: Store, ctx: Context = Context()) -> tuple[torch.nn.Module, float]:
    """The cell's network at its checkpoint epoch (eval mode) and its test accuracy there."""
    entry = ensure_training(cell.training, store, ctx)
    model = build_model(cell.training)
    state = load_tensors(entry.file(checkpoint_name(cell.at)))
    model.load_state_dict(state["model"])
    return model.eval(), float(entry.meta["test_accuracy"][str(cell.at)])


def _split(cell: Cell, ctx: Context) -> datasets.ImageDataset:
    name = "train" if cell.measurement.split == "train-augmented" else "test"
    return datasets.load(cell.training.dataset, name, root=ctx.data_root, download=ctx.download)


def ensure_profile(cell: Cell, store: Store, ctx: Context = Context()) -> Entry:
    """The stored profile of ``cell``, measured (or resumed) first if missing."""

    def create(workdir: Path):
        (files,) = _measure([cell], [workdir], store, ctx)
        return files

    return store.get_or_create(PROFILE_KIND, cell.key, create, cell.to_dict(), summary=cell.id)


def measurable_together(a: Cell, b: Cell) -> bool:
    """Whether two cells' profiles can be measured together (:func:`ensure_profiles`): the same
    network at the same epoch, measured at the same points with the same intrinsic dimensions
    (they differ at most in the fit's precision and deviations and in the neighbourhoods,
    :func:`~crlm_bench.experiment.probing.shared_settings`)."""
    same = probing.shared_settings
    return a.training == b.training and a.at == b.at and same(a.measurement) == same(b.measurement)


def measured_with(cell: Cell, cells: Iterable[Cell], store: Store) -> list[Cell]:
    """The cells of ``cells`` (each once) to measure together with ``cell``: those that
    :func:`measurable_together` with it and have no stored profile, ``cell`` itself left out."""
    out: dict[str, Cell] = {}
    for other in cells:
        if other.key != cell.key and other.key not in out and measurable_together(cell, other):
            if store.get(PROFILE_KIND, other.key) is None:
                out[other.key] = other
    return list(out.values())


def ensure_profiles(cells: list[Cell], store: Store, ctx: Context = Context()) -> list[Entry]:
    """The stored profiles of ``cells``, which must all :func:`measurable_together` with the first;
    those missing are measured together (one forward pass of each point's neighbourhood and one
    TwoNN per probe for all of them, one fit each), each stored under its own key. Their
    ``seconds`` are the shared time divided among them."""
    for cell in cells[1:]:
        if not measurable_together(cells[0], cell):
            raise ValueError(
                f"{cell.id} ({cell.measurement}) cannot be measured together with {cells[0].id}: it does "
                "not share its points and intrinsic dimensions"
            )
    missing = list({c.key: c for c in cells if store.get(PROFILE_KIND, c.key) is None}.values())
    if len(missing) > 1:
        with contextlib.ExitStack() as held:
            for cell in sorted(missing, key=lambda c: c.key):  # one order: no deadlock
                held.enter_context(store.lock(PROFILE_KIND, cell.key))
            missing = [c for c in missing if store.get(PROFILE_KIND, c.key) is None]  # another process?
            workdirs = [store.workdir(PROFILE_KIND, c.key) for c in missing]
            measured = _measure(missing, workdirs, store, ctx) if missing else []
            for cell, (files, meta) in zip(missing, measured):
                store.put(PROFILE_KIND, cell.key, files, cell.to_dict(), meta, summary=cell.id)
    return [ensure_profile(c, store, ctx) for c in cells]


def _measure(cells: list[Cell], workdirs: list[Path], store: Store, ctx: Context) -> list[tuple[dict, dict]]:
    """Measure the profiles of ``cells`` (sharing activations) in ``workdirs``: (files, meta) each."""
    cell = cells[0]
    model, accuracy = load_model(cell, store, ctx)
    model.to(ctx.torch_device)
    started = time.monotonic()
    names = cell.id if len(cells) == 1 else f"{cell.id} under {len(cells)} measurements"
    measured = probing.measure_profiles(
        model,
        models.probes(model),
        _split(cell, ctx),
        [c.measurement for c in cells],
        device=ctx.torch_device,
        workdirs=[w / "partial" for w in workdirs],
        progress=ctx.progress,
        memory_bytes=ctx.memory_bytes,
        report=None if ctx.report is None else lambda m, step=True: ctx.say(f"profiling {names}: {m}", step),
    )
    made = provenance(ctx, started)
    made["seconds"] = round(made["seconds"] / len(cells), 3)  # the shared time, divided
    out = []
    for c, workdir, profile_ in zip(cells, workdirs, measured):
        frame = profile_.frame
        frame.insert(0, "cell", c.id)
        frame["test_accuracy"] = accuracy
        path, points = workdir / PROFILE_FILE, workdir / POINTS_FILE
        save_frame(path, frame)
        save_frame(points, profile_.points)
        meta = {"test_accuracy": accuracy, "cell_id": c.id, **made}
        if len(cells) > 1:
            meta["measured_with"] = [o.key for o in cells if o is not c]
        out.append(({path.name: path, points.name: points}, meta))
    return out


def profile(cell: Cell, store: Store, ctx: Context = Context()) -> pd.DataFrame:
    """The cell's profile as a DataFrame (computed first if it is not stored)."""
    return load_frame(ensure_profile(cell, store, ctx).file(PROFILE_FILE))


def stored_profile(cell: Cell, store: Store) -> pd.DataFrame | None:
    """The cell's profile as a DataFrame if it is stored, else None; computes nothing.

    A partial or corrupt entry counts as not stored (:meth:`Store.get` moves it aside with a
    :class:`~crlm_bench.experiment.store.CorruptEntryWarning`).
    """
    entry = store.get(PROFILE_KIND, cell.key)
    return None if entry is None else load_frame(entry.file(PROFILE_FILE))


def stored_points(cell: Cell, store: Store) -> pd.DataFrame | None:
    """The per-point values behind the cell's stored profile (:data:`probing.POINT_COLUMNS`), or
    None when no profile is stored; computes nothing."""
    entry = store.get(PROFILE_KIND, cell.key)
    return None if entry is None else load_frame(entry.file(POINTS_FILE))


def stored_provenance(cell: Cell, store: Store) -> dict[str, dict]:
    """What produced the cell's stored training run and profile (:func:`provenance`): kind →
    ``{"threads": …, "device": …}``, empty for an entry not stored and None for a field that an
    earlier version did not record. Computes nothing."""
    out: dict[str, dict] = {}
    for kind, key in ((TRAINING_KIND, cell.training.key), (PROFILE_KIND, cell.key)):
        entry = store.get(kind, key)
        out[kind] = {} if entry is None else {f: entry.meta.get(f) for f in ("threads", "device")}
    return out


# ---------------------------------------------------------------------------------------------
# validation against the registries


def validate(cell: Cell) -> Cell:
    """Check ``cell``'s names against the registries and return it with its overrides
    :func:`normalised`; raise on an unknown name or a bad value.

    Dataset, model and recipe must be registered (:class:`~crlm_bench.registry.UnknownNameError`
    lists the known names and the closest match), the overrides must be recipe fields or train
    options, and the deviations must be known to the probing layer. Called at the edges (CLI,
    grid) before spending compute; the cell's dataclasses themselves only check structure so that
    stored settings always load.
    """
    if not isinstance(cell, Cell):
        raise TypeError(f"validate expects a Cell, got {type(cell).__name__}")
    spec = cell.training
    datasets.DATASETS.get(spec.dataset)
    models.MODELS.get(spec.model)
    if spec.recipe != UNTRAINED:
        recipe_and_options(spec)  # the recipe is registered, and the overrides are known and valid
    probing.check_deviations(cell.measurement)
    normal = normalised(spec)
    return cell if normal is spec else dataclasses.replace(cell, training=normal)
