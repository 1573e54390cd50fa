"""Where a report comes from: the crlm_bench and torch versions, the git commit, the hardware, a
description of the budget it was computed under and its caveat, the torch threads and device that
computed each cell (from the store's manifests), and the redaction of local paths.

Nothing here fails a report: a version, commit or device that cannot be found is ``None``, and a
thread count the store does not hold is :data:`NOT_RECORDED`.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

import crlm_bench
from crlm_bench.replication.claims import jsonable

log = logging.getLogger(__name__)

__all__ = [
    "NOT_RECORDED",
    "PATHS_NOTE",
    "budget_caveat",
    "budget_name",
    "budget_summary",
    "computed_with",
    "provenance",
    "redact_paths",
    "threads_summary",
]

#: What a report says of a thread count or device the store does not hold (an entry stored before
#: crlm_bench recorded them, a cell not stored, or a report written without a store).
NOT_RECORDED = "not recorded"

#: How ``results.json`` writes local paths, said in the file itself.
PATHS_NOTE = (
    "absolute local paths are not written: a path is $CRLM_STORE or $CRLM_DATA when it is that "
    "variable's directory, relative when it lies under the working directory, else its base name"
)


def provenance() -> dict[str, Any]:
    """The entries of ``results.json`` that say what produced it, in their order there:
    ``crlm_bench_version``, ``torch_version``, ``git_commit`` and ``hardware``."""
    return {
        "crlm_bench_version": crlm_bench.__version__,
        "torch_version": _torch_version(),
        "git_commit": _git_commit(),
        "hardware": _hardware(),
    }


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", commit) else None


def _torch_version() -> str | None:
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def _hardware() -> dict[str, Any]:
    out: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cuda_device": None,
    }
    try:
        import torch

        if torch.cuda.is_available():
            out["cuda_device"] = torch.cuda.get_device_name(0)
    except Exception as exc:  # never fail a report over the hardware description
        log.debug("no CUDA description: %s", exc)
    return out


def budget_summary(budget: Any) -> Any:
    """``budget`` as JSON: a name as is, a grid Budget as its name, description and cell ids (not
    every setting), anything with ``to_dict`` or a dataclass as its fields, else its ``str``."""
    if budget is None or isinstance(budget, (str, int, float, bool)):
        return budget
    if hasattr(budget, "to_dict"):
        return jsonable(budget.to_dict())
    if hasattr(budget, "name") and hasattr(budget, "cells"):  # a grid Budget: its names, not every setting
        runs = getattr(budget, "checkpoint_runs", ())
        return jsonable(
            {
                "name": budget.name,
                "description": getattr(budget, "description", None),
                "cells": [getattr(c, "id", str(c)) for c in budget.cells],
                "checkpoint_runs": [[getattr(c, "id", str(c)) for c in run] for run in runs],
            }
        )
    if dataclasses.is_dataclass(budget) and not isinstance(budget, type):
        return jsonable(dataclasses.asdict(budget))
    return str(budget)


def budget_name(budget: Any) -> str:
    """The budget's name for the report's header line; ``unspecified`` without a budget."""
    if budget is None:
        return "unspecified"
    if isinstance(budget, str):
        return budget
    return str(getattr(budget, "name", budget))


def budget_caveat(budget: Any) -> str:
    """What a reader must know before the verdicts: the budget's ``caveat`` (a Budget, or the name
    of a registered one); "" for anything else."""
    caveat = getattr(budget, "caveat", None)
    if isinstance(caveat, str):
        return caveat
    if isinstance(budget, str):
        from crlm_bench.replication.budgets import BUDGETS, get_budget

        if budget in BUDGETS.names():
            return get_budget(budget).caveat
    return ""


# ---------------------------------------------------------------------------------------------
# which threads and device computed each cell


def _budget_cells(budget: Any) -> dict[str, Any]:
    """Cell id → Cell of ``budget`` (a Budget or a registered budget's name); {} otherwise. An id
    names the first of the budget's cells with it (:meth:`Budget.all_cells` lists the claim cells
    first, then a demonstration measured by default before its changed measurements)."""
    if isinstance(budget, str):
        from crlm_bench.replication.budgets import BUDGETS, get_budget

        budget = get_budget(budget) if budget in BUDGETS.names() else None
    if budget is None or not hasattr(budget, "all_cells"):
        return {}
    cells: dict[str, Any] = {}
    for c in budget.all_cells():
        cells.setdefault(c.id, c)
    return cells


def _stored_meta(store_root: str | os.PathLike[str] | None) -> dict[tuple[str, str], dict]:
    """(kind, key) → manifest meta of every readable entry of the store; {} without one. Reads the
    manifests only (no hashing, nothing moved)."""
    if not store_root or not Path(store_root).is_dir():
        return {}
    from crlm_bench.experiment.store import Store

    try:
        return {(e.kind, e.key): dict(e.meta or {}) for e in Store(store_root).ls(verify=False)}
    except Exception as exc:  # never fail a report over its provenance
        log.warning("the threads that computed the cells are not reported: %s", exc)
        return {}


def computed_with(
    cell_ids: Any, budget: Any, store_root: str | os.PathLike[str] | None
) -> dict[str, dict[str, dict[str, Any]]]:
    """Cell id → ``{"training": {"threads", "device"}, "profile": {"threads", "device"}}``: the torch
    thread count and device of the processes that trained and profiled each cell, as the store's
    manifests record them (:func:`crlm_bench.experiment.pipeline.provenance`), and
    :data:`NOT_RECORDED` where they do not (an entry stored before they were recorded, a cell not
    in the budget or not stored, no store)."""
    from crlm_bench.experiment.pipeline import PROFILE_KIND, TRAINING_KIND

    cells = _budget_cells(budget)
    meta = _stored_meta(store_root) if cells else {}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for cell_id in cell_ids:
        cell = cells.get(cell_id)
        keys = {
            "training": (TRAINING_KIND, cell.training.key) if cell else None,
            "profile": (PROFILE_KIND, cell.key) if cell else None,
        }
        out[cell_id] = {}
        for what, key in keys.items():
            found = meta.get(key, {}) if key else {}
            out[cell_id][what] = {
                f: NOT_RECORDED if found.get(f) is None else found[f] for f in ("threads", "device")
            }
    return out


def threads_summary(computed: dict[str, dict[str, dict[str, Any]]]) -> str:
    """One line for the report's header: ``"1"``, ``"1 (training), 2 (profiles)"``, ``"1–2 (varies
    by cell)"``, :data:`NOT_RECORDED`, or ``"1; not recorded for 3 of 15 cells"``."""
    if not computed:
        return NOT_RECORDED
    counts = {
        what: [c[what]["threads"] for c in computed.values() if c[what]["threads"] != NOT_RECORDED]
        for what in ("training", "profile")
    }
    recorded = counts["training"] + counts["profile"]
    if not recorded:
        return NOT_RECORDED
    missing = sum(
        any(c[w]["threads"] == NOT_RECORDED for w in ("training", "profile")) for c in computed.values()
    )
    distinct = sorted(set(recorded))
    training, profile = sorted(set(counts["training"])), sorted(set(counts["profile"]))
    if len(distinct) == 1:
        text = str(distinct[0])
    elif len(training) == 1 and len(profile) == 1:
        text = f"{training[0]} (training), {profile[0]} (profiles)"
    else:
        text = f"{distinct[0]}–{distinct[-1]} (varies by cell)"
    if missing:
        text += f"; {NOT_RECORDED} for {missing} of {len(computed)} cells"
    return text


# ---------------------------------------------------------------------------------------------
# local paths


def _redact(text: str) -> str:
    """``text`` without an absolute local path in it (:data:`PATHS_NOTE`)."""
    if not (text.startswith("/") or text.startswith("~") or re.match(r"^[A-Za-z]:[\\/]", text)):
        return text
    path = Path(text).expanduser()
    for variable in ("CRLM_STORE", "CRLM_DATA"):
        value = os.environ.get(variable)
        if value and _same(path, Path(value).expanduser()):
            return f"${variable}"
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve())) or "."
    except (ValueError, OSError):
        return path.name or "(root)"


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


def redact_paths(obj: Any) -> Any:
    """``obj`` (JSON-able) with every string that is an absolute local path redacted
    (:data:`PATHS_NOTE`); other strings, numbers and structure unchanged."""
    if isinstance(obj, dict):
        return {k: redact_paths(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_paths(v) for v in obj]
    if isinstance(obj, str):
        return _redact(obj)
    return obj
