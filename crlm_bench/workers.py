"""pytest-xdist workers for the claims: one GPU and a share of the CPU per worker, and the tests of
one model on one worker.

Used by :mod:`crlm_bench.pytest_plugin`'s hooks. Device pinning happens in each worker before CUDA
starts (worker i gets device i mod n of the caller's ``CUDA_VISIBLE_DEVICES``); under ``--dist
loadgroup`` the plugin supplies a scheduler that groups claim tests by the cells they share, since
xdist's own grouping does not reach the scheduler with pytest ≥ 9.2 (pytest-xdist issue 1386).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any

__all__ = [
    "claim_group_scheduler",
    "pin_device",
    "worker_group",
    "worker_index",
    "worker_threads",
    "xdist_groups",
]


def worker_index(environ: MutableMapping[str, str] | None = None) -> int | None:
    """This process's xdist worker number (``gw3`` → 3), None outside xdist."""
    worker = (os.environ if environ is None else environ).get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else None


def pin_device(index: int, environ: MutableMapping[str, str] | None = None) -> str | None:
    """Restrict this process to one GPU of the caller's list (index mod its length)."""
    environ = os.environ if environ is None else environ
    visible = [d for d in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if not visible:
        import torch

        visible = [str(i) for i in range(torch.cuda.device_count())]  # counts without a CUDA context
    if not visible:
        return None
    chosen = visible[index % len(visible)]
    environ["CUDA_VISIBLE_DEVICES"] = chosen
    return chosen


def worker_threads(threads: int | None, environ: MutableMapping[str, str] | None = None) -> int | None:
    """The torch thread count for this process: ``threads`` if given; under xdist with several
    workers the CPU count shared among them (no oversubscription of the cores); else None."""
    environ = os.environ if environ is None else environ
    workers = int(environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if threads is None and worker_index(environ) is not None and workers > 1:
        return max(1, (os.cpu_count() or 1) // workers)
    return threads


def worker_group(kind: str, group: Any) -> str:
    """The worker group of a claim test: its dataset for tests that compare a dataset's models,
    its dataset and model otherwise."""
    t = group.cells[-1].training
    return t.dataset if kind == "dataset_models" else f"{t.dataset}-{t.model}"


def xdist_groups(budget: str) -> dict[str, str]:
    """Worker group of every claim test parameter id of ``budget`` (the text in a node id's [])."""
    from crlm_bench.replication.budgets import get_budget
    from crlm_bench.replication.grid import TEST_KINDS, groups_of

    groups = groups_of(get_budget(budget))
    return {g.id: worker_group(kind, g) for kind in TEST_KINDS for g in groups[kind]}


def claim_group_scheduler(config: Any, log: Any) -> Any:
    """xdist's ``loadgroup`` scheduler, grouping claim tests by their parameters, not node ids.

    xdist 3.8 groups by an ``@group`` suffix it writes into each worker's node ids; since pytest
    9.2 derives node ids from a structured id, that write has no effect and every test is
    scheduled alone. The controller knows the budget, hence the group of every claim test id;
    tests it does not know keep xdist's own rule.
    """
    from xdist.scheduler import LoadGroupScheduling

    known = xdist_groups(config.getoption("--budget"))

    class ClaimGroupScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            name = nodeid.rpartition("::")[2]
            if "[" in name and name.endswith("]"):
                group = known.get(name[name.index("[") + 1 : -1])
                if group is not None:
                    return group
            return super()._split_scope(nodeid)

    return ClaimGroupScheduling(config, log)
