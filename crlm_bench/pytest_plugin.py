"""The pytest face of crlm_bench: ``pytest claims/ --budget cpu -k resnet8``.

Registered through the ``pytest11`` entry point, so any pytest in the environment knows it; it
stays inert unless a test asks for one of its fixtures. Options:

    --budget {smoke,cpu,paper}   the grid of cells (default paper)
    --store DIR                  artifact store (default $CRLM_STORE or ~/.cache/crlm-bench/store)
    --data-dir DIR               data root (default $CRLM_DATA or ~/.cache/crlm-bench/data)
    --download                   allow downloading missing data sets
    --device DEV                 torch device (default cuda when available)
    --report DIR                 where the replication report is written (default crlm-report)

Claim tests take one of the group fixtures below, parametrised from the budget's grid alone (so
``--collect-only`` touches no data) with ids that carry dataset, model and recipe. A group's cells
are trained and profiled when a selected test first needs them — once per store, whichever tests
share them — and cells of deselected tests are never built. At the end of the session the report
(Markdown, JSON, figures) is written from every cell and verdict the session produced.
"""

from __future__ import annotations

import logging
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
    results: dict = field(default_factory=dict)  # cell key -> CellResult
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
        if cell.key not in self.results:
            from crlm_bench.experiment import pipeline
            from crlm_bench.replication.claims import CellResult

            frame = pipeline.profile(cell, self.store, self.context)
            self.results[cell.key] = CellResult.from_profile(cell, frame)
        return self.results[cell.key]

    def verdicts_for(self, claim: str, group) -> list:
        """Every variant's verdicts of ``claim`` on ``group``; the main variant's are returned."""
        from crlm_bench.replication.claims import MAIN_VARIANT
        from crlm_bench.replication.grid import evaluate_group

        found = evaluate_group(claim, group, self.result)
        self.verdicts.extend(found)
        return [v for v in found if v.variant == MAIN_VARIANT]


_STATE = pytest.StashKey[Replication]()


@pytest.fixture(scope="session")
def replication(request: pytest.FixtureRequest) -> Replication:
    """The session's :class:`Replication` (store, cached results, collected verdicts)."""
    state = request.config.stash.get(_STATE, None)
    if state is None:
        state = Replication(request.config)
        request.config.stash[_STATE] = state
    return state


def check(verdicts: list, *, selection: str | None = None) -> None:
    """Fail with the explanations unless every (selected) verdict holds; no verdict is a failure."""
    chosen = [v for v in verdicts if selection is None or selection in v.statistic]
    if not chosen:
        pytest.fail(f"no verdict could be formed{f' for {selection!r}' if selection else ''}", pytrace=False)
    failed = [v for v in chosen if not v.holds]
    if failed:
        pytest.fail("\n".join(f"{v.claim} [{v.group}] {v.explanation}" for v in failed), pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is None or not state.verdicts:
        return
    from crlm_bench.replication.report import write_report

    directory = Path(session.config.getoption("--report"))
    settings = {"budget": state.budget, "store": str(state.store.root),
                "cells": sorted(r.cell_id for r in state.results.values())}
    written = write_report(directory, state.verdicts, list(state.results.values()), budget=state.budget,
                           settings=settings)
    log.info("replication report: %s", ", ".join(str(p) for p in written.values()))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"crlm-bench: replication report written to {directory}/report.md")
