"""The results of a budget read from a store: what the command line's report, the pytest plugin
and the xdist controller share, so that none of them needs to know how the store keeps a profile.

:class:`StoredResults` looks cells up in a store (each once), turns stored profiles into
:class:`~crlm_bench.replication.claims.CellResult` and computes those missing (the plugin's
cells); :func:`evaluate_stored` gives the verdicts a
claims run over a budget would give from what is stored; :func:`write_budget_report` writes the
report of a set of verdicts with the settings every report records. :func:`find_stored_profile`
finds a stored profile by its key (or a prefix of it, as ``grid --list`` shows keys);
:func:`budget_cell` and :func:`smallest_group` find a budget's cell by its id and the claim test
that computes it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from crlm_bench.experiment.cell import Cell
from crlm_bench.experiment.pipeline import (
    PROFILE_KIND,
    TRAINING_KIND,
    Context,
    ensure_profiles,
    measured_with,
    stored_points,
    stored_profile,
)
from crlm_bench.experiment.store import Store
from crlm_bench.replication import report
from crlm_bench.replication.attribution import evaluate_attribution
from crlm_bench.replication.budgets import Budget, budget_names, get_budget
from crlm_bench.replication.claims import CellResult, Verdict
from crlm_bench.replication.grid import ATTRIBUTION_KIND, Group, evaluate_budget, groups_of

__all__ = [
    "KEY_PREFIX_MIN",
    "ProfileKeyError",
    "StoredResults",
    "budget_cell",
    "budgets_with_cell",
    "evaluate_stored",
    "find_stored_profile",
    "grid_status",
    "is_key_prefix",
    "report_settings",
    "smallest_group",
    "stored_attribution",
    "write_budget_report",
]

#: the fewest hex digits of a key that :func:`find_stored_profile` accepts (grid --list shows 12)
KEY_PREFIX_MIN = 8
_HEX = re.compile(r"[0-9a-f]+")


@dataclass
class StoredResults:
    """Cell results read from ``store``, each cell looked up once; None for a cell not stored
    (:meth:`compute` computes it)."""

    store: Store
    _cache: dict[str, CellResult | None] = field(default_factory=dict, repr=False)

    def __call__(self, cell: Cell) -> CellResult | None:
        if cell.key not in self._cache:
            frame = stored_profile(cell, self.store)
            if frame is None:
                self._cache[cell.key] = None
            else:
                points = stored_points(cell, self.store)
                self._cache[cell.key] = CellResult.from_profile(cell, frame, points=points)
        return self._cache[cell.key]

    def holds(self, cell: Cell) -> bool:
        """Whether the store holds ``cell``'s profile (without reading it)."""
        if self._cache.get(cell.key) is not None:
            return True
        return self.store.root.is_dir() and self.store.get(PROFILE_KIND, cell.key) is not None

    def compute(self, cell: Cell, context: Context, *, alongside: Iterable[Cell] = ()) -> CellResult:
        """Compute ``cell`` into the store (its training run, then its profile), measuring with it
        the cells of ``alongside`` that share its activations, and return its result."""
        together = measured_with(cell, alongside, self.store)
        ensure_profiles([cell, *together], self.store, context)
        for computed in (cell, *together):
            self._cache.pop(computed.key, None)
        result = self(cell)
        if result is None:  # pragma: no cover - ensure_profiles stores it or raises
            raise RuntimeError(f"{cell.id} was computed but its profile is not in {self.store.root}")
        return result

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
    """Write the report of ``verdicts`` over ``results`` to ``directory`` and return it, with the
    attribution of those verdicts and the budget's demonstrations as far as the store holds them
    (:func:`stored_attribution`)."""
    settings = report_settings(budget, store_root, results)
    extra, demonstrations = stored_attribution(budget, Store(store_root), verdicts)
    report.write_report(
        directory,
        [*verdicts, *extra],
        results,
        budget=budget,
        settings=settings,
        demonstrations=demonstrations,
    )
    return Path(directory)


def stored_attribution(
    budget: str | Budget, store: Store, verdicts: Sequence[Verdict]
) -> tuple[list[Verdict], list[tuple[str, CellResult]]]:
    """The seed-0 attribution verdicts (:func:`~crlm_bench.replication.attribution.evaluate_attribution`)
    of the claim groups that ``verdicts`` judge, and each stored demonstration cell with its change
    ("" for the default measurement), from what ``store`` holds; a budget that is not registered
    (a hand-made one) has none."""
    if isinstance(budget, str):
        if budget not in budget_names():
            return [], []
        budget = get_budget(budget)
    results = StoredResults(store)
    judged = {(v.claim, v.group) for v in verdicts}
    extra = [v for v in evaluate_attribution(budget, results) if (v.claim, v.group) in judged]
    demonstrations = []
    for cell in budget.demonstrations:
        shown = [("", cell)] + [(ch, c) for ch, d, c in budget.attribution_cells() if d.key == cell.key]
        demonstrations += [(change, r) for change, c in shown if (r := results(c)) is not None]
    return extra, demonstrations


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
    changes = {changed.key: change for change, _, changed in budget.attribution_cells()}
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
                # the measurement change this cell is measured under for the attribution ("": none)
                "change": changes.get(c.key, ""),
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


# ---------------------------------------------------------------------------------------------
# finding one cell


class ProfileKeyError(LookupError):
    """No stored profile, or more than one, has the key or key prefix asked for; ``ambiguous`` is
    True for the latter. The message says what was found instead and what to type."""

    def __init__(self, message: str, *, ambiguous: bool = False):
        super().__init__(message)
        self.ambiguous = ambiguous


def is_key_prefix(text: str) -> bool:
    """Whether ``text`` reads as a key or a key's prefix (lower-case hex) rather than a cell id."""
    return bool(_HEX.fullmatch(text))


def find_stored_profile(store: Store, prefix: str) -> Cell:
    """The cell whose complete stored profile's key is ``prefix`` or starts with it (at least
    :data:`KEY_PREFIX_MIN` hex digits). Nothing is hashed or moved: the listing checks sizes.

    Raises :class:`ValueError` for a prefix that is too short or not hex, and
    :class:`ProfileKeyError` when no complete profile matches (naming a training run, or a partial
    or corrupt profile, that does) or when several do (listing them).
    """
    if not is_key_prefix(prefix) or len(prefix) < KEY_PREFIX_MIN:
        raise ValueError(
            f"{prefix!r} is not a key: give a cell id, or at least {KEY_PREFIX_MIN} lower-case hex digits "
            "of a profile's key (crlm-bench grid --budget B --list shows 12 in its key column)"
        )
    found = [row for row in store.ls(verify=False) if row.key.startswith(prefix)]
    profiles = [row for row in found if row.kind == PROFILE_KIND]
    complete = [row for row in profiles if row.status == "complete"]
    if len(complete) > 1:
        listed = "; ".join(f"{row.key[:16]}… {row.summary}" for row in complete)
        raise ProfileKeyError(
            f"{len(complete)} stored profiles have keys starting {prefix}: {listed}; give more digits",
            ambiguous=True,
        )
    if not complete:
        if profiles:
            row = profiles[0]
            raise ProfileKeyError(
                f"the profile {row.key} in {store.root} is {row.status}"
                f"{f' ({row.problem})' if row.problem else ''}: crlm-bench store verify lists it, "
                "crlm-bench store gc removes it, and profiling the cell again recomputes it"
            )
        others = "; ".join(
            f"a {row.kind} entry ({row.key[:12]}, {row.summary or 'no summary'})" for row in found
        )
        raise ProfileKeyError(
            f"no stored profile in {store.root} has a key starting {prefix}"
            + (f"; it is the key of {others}, not of a profile" if others else "")
            + "; the key column of crlm-bench grid --budget B --list, or the profile rows of "
            "crlm-bench store ls, show the profiles' keys"
        )
    entry = store.get(PROFILE_KIND, complete[0].key)
    if entry is None:  # its checksums failed (moved aside, with a warning) or it was removed meanwhile
        raise ProfileKeyError(
            f"the profile {complete[0].key} ({complete[0].summary}) is no longer a complete entry of "
            f"{store.root} (see the warning above); profile the cell again"
        )
    cell = Cell.from_dict(entry.settings)
    if cell.key != entry.key:
        raise ProfileKeyError(
            f"the profile {entry.key} was stored with settings this crlm_bench hashes to {cell.key}: "
            "it was written by another version; show it with that version, or profile the cell again"
        )
    return cell


def budget_cell(budget: Budget, cell_id: str) -> Cell:
    """The cell of ``budget`` whose id is ``cell_id``. Raises :class:`LookupError` naming the
    closest id and listing the budget's cells when it has none."""
    cells = budget.claim_cells()
    for cell in cells:
        if cell.id == cell_id:
            return cell
    ids = [c.id for c in cells]
    close = difflib.get_close_matches(cell_id, ids, n=1)
    raise LookupError(
        f"the {budget.name} budget has no cell {cell_id}"
        + (f" (did you mean {close[0]}?)" if close else "")
        + f"; its {len(ids)} cells: "
        + ", ".join(ids)
    )


def smallest_group(budget: Budget, cell: Cell) -> Group | None:
    """Of the groups the budget's claim tests compare, the one with the fewest cells that holds
    ``cell`` (its id selects that claim test: ``pytest claims/ --budget B -k ID``); None if no
    claim test needs it."""
    holding = [
        g
        for kind, groups in groups_of(budget).items()
        if kind != ATTRIBUTION_KIND
        for g in groups
        if any(c.key == cell.key for c in g.cells)
    ]
    return min(holding, key=lambda g: len(g.cells), default=None)


def budgets_with_cell(cell_id: str, store: Store) -> list[tuple[str, Cell, bool]]:
    """Each budget that has a cell of id ``cell_id``: its name, that cell and whether the store
    holds its profile (a stored profile is checked as :meth:`Store.get` checks it)."""
    found = []
    for name in budget_names():
        for cell in get_budget(name).claim_cells():
            if cell.id == cell_id:
                found.append((name, cell, store.get(PROFILE_KIND, cell.key) is not None))
    return found
