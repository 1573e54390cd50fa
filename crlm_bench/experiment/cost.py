"""What a selection of cells costs to compute, estimated from the store's own timings.

Every entry computed since timings were recorded carries ``seconds`` in its manifest's meta
(:func:`crlm_bench.experiment.pipeline.provenance`). A missing training run is estimated from the
median of stored runs of the same data set, model and kind (trained or untrained), scaled by the
number of epochs; a missing profile from stored profiles of the same data set, model and
neighbourhood size (toggles), scaled by the number of points. The timings are this machine's only
if the store was filled here; what has no comparable timing is counted, not guessed.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from crlm_bench.experiment.cell import UNTRAINED, Cell
from crlm_bench.experiment.pipeline import PROFILE_KIND, TRAINING_KIND
from crlm_bench.experiment.store import Store


@dataclass(frozen=True)
class Cost:
    """Counts of a selection's cells and of what is left to compute, and the estimated seconds."""

    cells: int
    stored: int
    profiles: int  # profiles to compute
    trainings: int  # distinct training runs to compute
    seconds: float  # estimated, for what has a comparable timing
    unestimated: int  # profiles and training runs without a comparable timing

    def describe(self) -> str:
        if not self.profiles:
            return f"{self.cells} cells, all stored: nothing to compute"
        text = (
            f"{self.cells} cells: {self.stored} stored, {self.profiles} profiles and "
            f"{self.trainings} training runs to compute"
        )
        if self.unestimated == self.profiles + self.trainings:
            return text + "; no comparable timing in the store to estimate the time from"
        text += f"; about {_duration(self.seconds)} by this store's timings"
        if self.unestimated:
            text += f" (+ {self.unestimated} without a comparable timing)"
        return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _training_group(settings: dict) -> tuple:
    return settings["dataset"], settings["model"], settings["recipe"] == UNTRAINED


def estimate(cells: Iterable[Cell], store: Store) -> Cost:
    """The cost of computing ``cells`` (duplicates counted once) given what ``store`` holds."""
    unique = list({c.key: c for c in cells}.values())
    listing = [e for e in store.ls(verify=False) if e.status == "complete"] if store.root.is_dir() else []
    stored = {(e.kind, e.key) for e in listing}
    per_epoch: dict[tuple, list[float]] = {}
    per_point: dict[tuple, list[float]] = {}
    for e in listing:
        seconds = (e.meta or {}).get("seconds")
        if not isinstance(seconds, (int, float)) or not e.settings:
            continue
        try:
            if e.kind == TRAINING_KIND:
                epochs = 1 if e.settings["recipe"] == UNTRAINED else max(1, int(e.settings["epochs"]))
                per_epoch.setdefault(_training_group(e.settings), []).append(seconds / epochs)
            elif e.kind == PROFILE_KIND:
                t, m = e.settings["training"], e.settings["measurement"]
                group = (t["dataset"], t["model"], m["toggles"])
                per_point.setdefault(group, []).append(seconds / max(1, m["points"]))
        except (KeyError, TypeError, ValueError):  # settings of another format: no timing from it
            continue
    todo = [c for c in unique if (PROFILE_KIND, c.key) not in stored]
    runs = {c.training.key: c.training for c in todo if (TRAINING_KIND, c.training.key) not in stored}
    seconds, unestimated = 0.0, 0
    for spec in runs.values():
        found = per_epoch.get(_training_group(spec.to_dict()))
        if found:
            seconds += statistics.median(found) * (1 if spec.recipe == UNTRAINED else spec.epochs)
        else:
            unestimated += 1
    for c in todo:
        found = per_point.get((c.training.dataset, c.training.model, c.measurement.toggles))
        if found:
            seconds += statistics.median(found) * c.measurement.points
        else:
            unestimated += 1
    return Cost(len(unique), len(unique) - len(todo), len(todo), len(runs), seconds, unestimated)
