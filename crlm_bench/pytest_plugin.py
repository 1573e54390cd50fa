"""The pytest face of crlm_bench: ``pytest claims/ --budget cpu -k resnet8``.

Registered through the ``pytest11`` entry point, so any pytest in the environment knows it; it
stays inert unless a test asks for one of its fixtures. Options:

    --budget {smoke,cpu,paper}   the grid of cells (default paper)
    --store DIR                  artifact store (default $CRLM_STORE or ~/.cache/crlm-bench/store)
    --data-dir DIR               data root (default $CRLM_DATA or ~/.cache/crlm-bench/data)
    --download                   allow downloading missing data sets
    --device DEV                 torch device (default cuda when available)
    --report DIR                 where the replication report is written (default crlm-report)

With pytest-xdist (``pytest claims/ -n 8 --dist loadgroup``) each worker is pinned to one GPU of
the caller's ``CUDA_VISIBLE_DEVICES`` (worker i gets device i mod n) before CUDA starts, tests of
one model are grouped on one worker, the store's locks compute each cell once, and the controller
assembles one report from every worker's verdicts.

Claim tests take one of the group fixtures below, parametrised from the budget's grid alone (so
``--collect-only`` touches no data) with ids that carry dataset, model and recipe. A group's cells
are trained and profiled when a selected test first needs them — once per store, whichever tests
share them — and cells of deselected tests are never built. At the end of the session the report
(Markdown, JSON, figures) is written from every cell and verdict the session produced.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

log = logging.getLogger(__name__)

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("crlm-bench", "replication of Kaufman & Azencot (ICML 2023)")
    group.addoption("--budget", default="paper", choices=("smoke", "cpu", "paper"),
                    help="grid of cells to replicate on (default paper)")
    group.addoption("--store", default=None, help="artifact store directory")
    group.addoption("--data-dir", default=None, help="data root directory")
    group.addoption("--download", action="store_true", default=False, help="allow downloading missing data sets")
    group.addoption("--device", default=None, help="torch device (default cuda when available, else cpu)")
    group.addoption("--report", default="crlm-report", help="replication report directory (default crlm-report)")
    group.addoption("--executor", default="local", choices=("local", "submitit"),
                    help="local: compute cells in the test process; submitit: submit the missing cells of the "
                    "selected tests as one job array first (the store must be on a shared file system)")
    group.addoption("--submitit-cluster", default=None, help="submitit cluster: auto (default), slurm, local, debug")
    group.addoption("--submitit-folder", default=None, help="job logs (default <store>/.submitit)")
    group.addoption("--slurm-partition", default=None, help="Slurm partition")
    group.addoption("--slurm-gpus-per-task", type=int, default=None, help="GPUs per task")
    group.addoption("--slurm-time", type=int, default=None, help="time limit per job, minutes")
    group.addoption("--submitit-option", action="append", default=[], metavar="KEY=VALUE",
                    help="any other submitit parameter (e.g. mem_gb=64, slurm_array_parallelism=8)")
    group.addoption("--threads", type=int, default=None,
                    help="torch threads for computing cells, in every process and job (default: torch's; under "
                    "xdist, the CPU count shared among the workers). Numbers are bit-identical across runs with "
                    "the same thread count; other counts change training's rounding")


def _worker_index() -> int | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else None


def pin_device(index: int, environ: dict | None = None) -> str | None:
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "xdist_group(name): run on the same xdist worker (--dist loadgroup)")
    index = _worker_index()
    if index is not None and "CRLM_NO_PIN" not in os.environ:
        chosen = pin_device(index)
        if chosen is not None:
            log.info("xdist worker %d pinned to CUDA device %s", index, chosen)
    threads = config.getoption("--threads", None)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if threads is None and index is not None and workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)  # no oversubscription of the cores
    if threads:
        import torch

        torch.set_num_threads(threads)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group the tests of one model on one xdist worker (``--dist loadgroup``), and run the tests
    that compare a dataset's models last: by then the workers have computed those models in
    parallel, instead of one worker computing them in turn while the others wait on its locks."""
    per_model, per_dataset = [], []
    for item in items:
        target = per_model
        for kind, group in _item_groups(item):
            item.add_marker(pytest.mark.xdist_group(_xdist_group(kind, group)))
            if kind == "dataset_models":
                target = per_dataset
        target.append(item)
    items[:] = per_model + per_dataset


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    from crlm_bench.replication.grid import GROUP_KINDS, get_budget, groups_of

    wanted = [name for name in GROUP_KINDS if name in metafunc.fixturenames]
    if not wanted:
        return
    groups = groups_of(get_budget(metafunc.config.getoption("--budget")))
    for name in wanted:
        metafunc.parametrize(name, groups[name], ids=[g.id for g in groups[name]], scope="session")


@dataclass
class Replication:
    """Session state: the store, lazily computed cell results, and the verdicts of the tests run."""

    config: pytest.Config
    failures: dict = field(default_factory=dict)  # cell key -> JobFailure (submitit)
    results: dict = field(default_factory=dict)  # cell key -> CellResult
    cells: dict = field(default_factory=dict)  # cell key -> the cell's settings (to_dict)
    verdicts: list = field(default_factory=list)

    def __post_init__(self) -> None:
        from crlm_bench.experiment.pipeline import Context
        from crlm_bench.experiment.store import Store

        opt = self.config.getoption
        self.store = Store(opt("--store"))
        self.context = Context(data_root=opt("--data-dir"), download=opt("--download"), device=opt("--device"))
        self.budget = opt("--budget")

    def result(self, cell):
        """The cell's result, computed (trained, profiled) once per store and cached for the session."""
        if cell.key in self.failures:
            pytest.fail(self.failures[cell.key].message(), pytrace=False)
        if cell.key not in self.results:
            from crlm_bench.experiment import pipeline
            from crlm_bench.replication.claims import CellResult

            frame = pipeline.profile(cell, self.store, self.context)
            self.results[cell.key] = CellResult.from_profile(cell, frame)
            self.cells[cell.key] = cell.to_dict()
        return self.results[cell.key]

    def verdicts_for(self, claim: str, group) -> list:
        """Every variant's verdicts of ``claim`` on ``group``; the main variant's are returned."""
        from crlm_bench.replication.claims import MAIN_VARIANT
        from crlm_bench.replication.grid import evaluate_group

        found = evaluate_group(claim, group, self.result)
        self.verdicts.extend(found)
        return [v for v in found if v.variant == MAIN_VARIANT]


_STATE = pytest.StashKey[Replication]()


def _state(config: pytest.Config) -> Replication:
    state = config.stash.get(_STATE, None)
    if state is None:
        state = Replication(config)
        config.stash[_STATE] = state
    return state


@pytest.fixture(scope="session")
def replication(request: pytest.FixtureRequest) -> Replication:
    """The session's :class:`Replication` (store, cached results, collected verdicts)."""
    return _state(request.config)


def _xdist_group(kind: str, group) -> str:
    """The worker group of a claim test: its dataset for tests that compare a dataset's models,
    its dataset and model otherwise."""
    t = group.cells[-1].training
    return t.dataset if kind == "dataset_models" else f"{t.dataset}-{t.model}"


def xdist_groups(budget: str) -> dict[str, str]:
    """Worker group of every claim test parameter id of ``budget`` (the text in a node id's [])."""
    from crlm_bench.replication.grid import GROUP_KINDS, get_budget, groups_of

    groups = groups_of(get_budget(budget))
    return {g.id: _xdist_group(kind, g) for kind in GROUP_KINDS for g in groups[kind]}


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # before xdist's own choice of scheduler
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadgroup`` that groups the claim tests by their parameters, not by node ids.

    xdist 3.8 groups by an ``@group`` suffix it writes into each worker's node ids; since pytest
    9.2 derives node ids from a structured id, that write has no effect and every test is
    scheduled alone (pytest-xdist issue 1386). The controller knows the budget, hence the group
    of every claim test id; tests it does not know keep xdist's own rule.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
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


def _item_groups(item: pytest.Item) -> list:
    """The (kind, Group) parameters a claim test item was given by pytest_generate_tests."""
    from crlm_bench.replication.grid import GROUP_KINDS

    params = getattr(getattr(item, "callspec", None), "params", {})
    return [(kind, params[kind]) for kind in GROUP_KINDS if kind in params]


def _selected_cells(items: list[pytest.Item]) -> list:
    return [cell for item in items for _, group in _item_groups(item) for cell in group.cells]


def _submitit_parameters(config: pytest.Config) -> dict:
    opt = config.getoption
    params: dict = {}
    if opt("--slurm-partition"):
        params["slurm_partition"] = opt("--slurm-partition")
    if opt("--slurm-gpus-per-task") is not None:
        params["slurm_gpus_per_task"] = opt("--slurm-gpus-per-task")
    if opt("--slurm-time") is not None:
        params["timeout_min"] = opt("--slurm-time")
    for item in opt("--submitit-option"):
        name, sep, value = item.partition("=")
        if not sep:
            raise pytest.UsageError(f"--submitit-option {item!r}: expected KEY=VALUE")
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                pass
        params[name] = value
    return params


def pytest_collection_finish(session: pytest.Session) -> None:
    """``--executor submitit``: compute the selected tests' missing cells as a job array first."""
    config = session.config
    if config.getoption("--executor") != "submitit" or hasattr(config, "workerinput") or config.option.collectonly:
        return
    from crlm_bench.replication.executors import missing_cells, submit

    state = _state(config)
    missing = missing_cells(_selected_cells(session.items), state.store)
    if not missing:
        return
    folder = config.getoption("--submitit-folder") or str(Path(state.store.root) / ".submitit")
    cluster = config.getoption("--submitit-cluster")
    state.failures.update(submit(
        missing, state.store, state.context, folder=folder, cluster=None if cluster in (None, "auto") else cluster,
        parameters=_submitit_parameters(config), threads=config.getoption("--threads"),
    ))  # fmt: skip


def check(verdicts: list, *, selection: str | None = None) -> None:
    """Fail with the explanations unless every (selected) verdict holds; no verdict is a failure."""
    chosen = [v for v in verdicts if selection is None or selection in v.statistic]
    if not chosen:
        pytest.fail(f"no verdict could be formed{f' for {selection!r}' if selection else ''}", pytrace=False)
    failed = [v for v in chosen if not v.holds]
    if failed:
        pytest.fail("\n".join(f"{v.claim} [{v.group}] {v.explanation}" for v in failed), pytrace=False)


_WORKER_KEY = "crlm_bench"
_COLLECTED = pytest.StashKey[list]()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """xdist controller: keep what a finished worker found, for the one report."""
    payload = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
    if payload:
        node.config.stash.setdefault(_COLLECTED, []).append(json.loads(payload))


def _write_report(config: pytest.Config, verdicts: list, results: list, budget: str, store_root) -> Path:
    from crlm_bench.replication.report import write_report

    directory = Path(config.getoption("--report"))
    settings = {"budget": budget, "store": str(store_root), "cells": sorted(r.cell_id for r in results)}
    write_report(directory, verdicts, results, budget=budget, settings=settings)
    return directory


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = config.stash.get(_STATE, None)
    if hasattr(config, "workerinput"):  # an xdist worker: hand the verdicts to the controller
        if state is not None and state.verdicts:
            config.workeroutput[_WORKER_KEY] = json.dumps({
                "budget": state.budget, "store": str(state.store.root),
                "verdicts": [v.to_dict() for v in state.verdicts],
                "cells": [c for c in state.cells.values()],
            })  # fmt: skip
        return
    collected = config.stash.get(_COLLECTED, [])
    if collected:  # the xdist controller: one report from every worker
        verdicts, results = _merge(config, collected)
        budget, root = collected[0]["budget"], collected[0]["store"]
    elif state is not None and state.verdicts:
        verdicts, results, budget, root = state.verdicts, list(state.results.values()), state.budget, state.store.root
    else:
        return
    directory = _write_report(config, verdicts, results, budget, root)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"crlm-bench: replication report written to {directory}/report.md")


def _merge(config: pytest.Config, collected: list[dict]) -> tuple[list, list]:
    """Verdicts of all workers, and their cells' results read back from the shared store."""
    from crlm_bench.experiment.cell import Cell
    from crlm_bench.experiment.store import Store, load_frame
    from crlm_bench.replication.claims import CellResult, Verdict

    store = Store(collected[0]["store"])
    verdicts = [Verdict.from_dict(v) for part in collected for v in part["verdicts"]]
    results, seen = [], set()
    for part in collected:
        for data in part["cells"]:
            cell = Cell.from_dict(data)
            if cell.key in seen:
                continue
            seen.add(cell.key)
            entry = store.get("profile", cell.key)
            if entry is not None:
                results.append(CellResult.from_profile(cell, load_frame(entry.file("profile.parquet"))))
    return verdicts, results
