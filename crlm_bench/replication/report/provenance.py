"""Where a report comes from: the crlm_bench and torch versions, the git commit, the hardware, and a
description of the budget it was computed under.

Nothing here fails a report: a version, commit or device that cannot be found is ``None``.
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

__all__ = ["provenance", "budget_summary", "budget_name"]


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
