"""The results of a budget read from a store: what the command line's report, the pytest plugin
and the xdist controller share, so that none of them needs to know how the store keeps a profile.

:class:`StoredResults` looks cells up in a store (each once) and turns stored profiles into
:class:`~crlm_bench.replication.claims.CellResult`; :func:`evaluate_stored` gives the verdicts a
claims run over a budget would give from what is stored; :func:`write_budget_report` writes the
report of a set of verdicts with the settings every report records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from crlm_bench.experiment.cell import Cell
from crlm_bench.experiment.pipeline import PROFILE_KIND, TRAINING_KIND, stored_profile
from crlm_bench.experiment.store import Store
from crlm_bench.replication import report
from crlm_bench.replication.budgets import Budget
from crlm_bench.replication.claims import CellResult, Verdict
from crlm_bench.replication.grid import evaluate_budget

__all__ = ["StoredResults", "evaluate_stored", "grid_status", "report_settings", "write_budget_report"]


@dataclass
class StoredResults:
    """Cell results read from ``store``, each cell looked up once; None for a cell not stored."""

    store: Store
    _cache: dict[str, CellResult | None] = field(default_factory=dict, repr=False)

    def __call__(self, cell: Cell) -> CellResult | None:
        if cell.key not in self._cache:
            frame = stored_profile(cell, self.store)
            self._cache[cell.key] = None if frame is None else CellResult.from_profile(cell, frame)
        return self._cache[cell.key]

    def found(self) -> list[CellResult]:
        """The results found so far, in the order they were first asked for."""
        return [r for r in self._cache.values() if r is not None]

    def of(self, cells: Iterable[Cell]) -> list[CellResult]:
        """The stored results of ``cells`` (each cell once), skipping those not stored."""
        seen: set[str] = set()
        out = []
        for cell in cells:
            if cell.key in seen:
                continue
            seen.add(cell.key)
            result = self(cell)
            if result is not None:
                out.append(result)
        return out


def evaluate_stored(budget: Budget, store: Store) -> tuple[list[Verdict], list[CellResult], list[str]]:
    """The verdicts a claims run over ``budget`` would give from what ``store`` holds, the results
    they were formed from, and the claim groups left out because a cell is not stored."""
    results = StoredResults(store)
    verdicts, skipped = evaluate_budget(budget, results)
    return verdicts, results.found(), skipped


def report_settings(budget: str, store_root: str | Path, results: Sequence[CellResult]) -> dict:
    """The settings a report records: the budget, the store and the cells it read."""
    return {"budget": budget, "store": str(store_root), "cells": sorted(r.cell_id for r in results)}


def write_budget_report(
    directory: str | Path,
    verdicts: Sequence[Verdict],
    results: Sequence[CellResult],
    *,
    budget: str,
    store_root: str | Path,
) -> Path:
    """Write the report of ``verdicts`` over ``results`` to ``directory`` and return it."""
    settings = report_settings(budget, store_root, results)
    report.write_report(directory, verdicts, results, budget=budget, settings=settings)
    return Path(directory)


def grid_status(budget: Budget, store: Store) -> tuple[list[dict], dict[str, int]]:
    """Each cell of ``budget`` with its keys, sizes and whether its profile and training run are in
    ``store`` (``stored``, ``missing``, ``partial``, ``corrupt``; a training run may be
    ``working``), and the counts of what is stored and what is left to compute.

    Sizes are checked, nothing is hashed: a listing, not a verification (that is ``store verify``).
    Raises :class:`~crlm_bench.experiment.store.NotAStoreError` for a directory that is not a store.
    """
    listing = store.ls(verify=False)
    status = {(entry.kind, entry.key): entry.status for entry in listing}
    meta = {(entry.kind, entry.key): entry.meta or {} for entry in listing}

    def state(kind: str, key: str) -> str:
        found = status.get((kind, key), "missing")
        return "stored" if found == "complete" else found

    series = {c.key for run in budget.checkpoint_runs for c in run}
    cells = []
    for c in budget.all_cells():
        t, m = c.training, c.measurement
        profile, training = state(PROFILE_KIND, c.key), state(TRAINING_KIND, t.key)
        cells.append(
            {
                "id": c.id,
                "key": c.key,
                "training_key": t.key,
                "profile": profile,
                "profile_stored": profile == "stored",
                "training": training,
                "training_stored": training == "stored",
                # which torch thread count made the stored artefacts (None: not stored or not recorded)
                "training_threads": meta.get((TRAINING_KIND, t.key), {}).get("threads"),
                "profile_threads": meta.get((PROFILE_KIND, c.key), {}).get("threads"),
                "dataset": t.dataset,
                "model": t.model,
                "recipe": t.recipe,
                "seed": t.seed,
                "epochs": t.epochs,
                "at": c.at,
                "checkpoint_series": c.key in series,
                "points": m.points,
                "toggles": m.toggles,
                "neighbours": m.neighbours,
                "id_runs": m.id_runs,
                "id_samples": m.id_samples,
            }
        )
    todo = [c for c in cells if not c["profile_stored"]]
    runs = {c["training_key"]: c["training_stored"] for c in cells}
    counts = {
        "cells": len(cells),
        "stored": len(cells) - len(todo),
        "to_compute": len(todo),
        "training_runs": len(runs),
        "training_runs_stored": sum(runs.values()),
        "training_runs_to_compute": len({c["training_key"] for c in todo if not c["training_stored"]}),
    }
    return cells, counts
