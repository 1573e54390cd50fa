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

import dataclasses
import logging
from dataclasses import dataclass
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

#: the file of a profile entry: one row per probe
PROFILE_FILE = "profile.parquet"
#: The store kinds of a training run and of a profile.
TRAINING_KIND, PROFILE_KIND = "training", "profile"
#: FitOptions fields that a Training override may set (the rest must be Recipe fields)
TRAIN_OPTIONS = ("train_subset", "test_subset")


@dataclass(frozen=True)
class Context:
    """Where and how to compute: data root, download permission, device, progress bars."""

    data_root: str | None = None
    download: bool = False
    device: str | None = None
    progress: bool | None = None
    memory_bytes: int = probing.MEMORY_BYTES

    @property
    def torch_device(self) -> torch.device:
        if self.device:
            return torch.device(self.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_model(spec: Training) -> torch.nn.Module:
    info = datasets.dataset_info(spec.dataset)
    return models.build(spec.model, info.num_classes, info.in_channels, seed=spec.seed)


def recipe_and_options(spec: Training) -> tuple[recipes.Recipe, dict]:
    """The recipe with the cell's overrides applied, and the FitOptions fields among them."""
    recipe = recipes.get_recipe(spec.recipe)
    fields = {f.name for f in dataclasses.fields(recipe)} - {"name"}
    opts = spec.options
    unknown = sorted(set(opts) - fields - set(TRAIN_OPTIONS))
    if unknown:
        raise ValueError(
            f"unknown training override(s) {unknown}; recipe fields: {sorted(fields)}, train options: "
            f"{list(TRAIN_OPTIONS)}"
        )
    recipe = recipe.replace(**{k: v for k, v in opts.items() if k in fields})
    return recipe, {k: v for k, v in opts.items() if k in TRAIN_OPTIONS}


def ensure_training(spec: Training, store: Store, ctx: Context = Context()) -> Entry:
    """The stored training run of ``spec``, trained (or resumed) first if missing."""

    def create(workdir: Path):
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

            fit_options = training.FitOptions(
                epochs=spec.epochs,
                save_at=range(1, spec.epochs + 1),
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
        meta = {"test_accuracy": {str(e): a for e, a in sorted(accuracy.items())}}
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
        model, accuracy = load_model(cell, store, ctx)
        model.to(ctx.torch_device)
        frame = probing.measure(
            model,
            models.probes(model),
            _split(cell, ctx),
            cell.measurement,
            device=ctx.torch_device,
            workdir=workdir / "partial",
            progress=ctx.progress,
            memory_bytes=ctx.memory_bytes,
        )
        frame.insert(0, "cell", cell.id)
        frame["test_accuracy"] = accuracy
        out = workdir / PROFILE_FILE
        save_frame(out, frame)
        return {out.name: out}, {"test_accuracy": accuracy, "cell_id": cell.id}

    return store.get_or_create(PROFILE_KIND, cell.key, create, cell.to_dict(), summary=cell.id)


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


# ---------------------------------------------------------------------------------------------
# validation against the registries


def validate(cell: Cell) -> Cell:
    """Check ``cell``'s names against the registries and return it; raise on an unknown name.

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
        recipe_and_options(spec)  # the recipe is registered, and the overrides are known
    probing.check_deviations(cell.measurement)
    return cell
