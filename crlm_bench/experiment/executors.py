"""Computing a budget's cells as a job array through submitit (Slurm, or its local executor).

The pytest plugin's ``--executor submitit`` gathers the cells of the selected tests, submits those
missing from the store as one job array before any test runs, waits with a progress bar, and then
lets the tests read the stored results. A job that fails is reported with its log paths, and the
tests of its cell fail with that message; a rerun submits only what is still missing. The store
must be on a file system every node sees.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from crlm_bench.experiment.cell import Cell
from crlm_bench.experiment.pipeline import Context, ensure_profile, stored_profile
from crlm_bench.experiment.store import Store

log = logging.getLogger(__name__)


def run_cell(
    cell: Mapping[str, Any], store_root: str, context: Mapping[str, Any], threads: int | None = None
) -> str:
    """The job: train (if needed) and profile one cell into the store; returns the cell's key."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    c = Cell.from_dict(cell)
    ensure_profile(c, Store(store_root), Context(**context))
    return c.key


@dataclass(frozen=True)
class JobFailure:
    """A job that did not complete: what to tell the tests of its cell."""

    cell_id: str
    job_id: str
    error: str
    stdout: str
    stderr: str

    def message(self) -> str:
        return (
            f"the submitit job {self.job_id} computing {self.cell_id} failed: {self.error}\n"
            f"  logs: {self.stdout}\n        {self.stderr}"
        )


def missing_cells(cells: Iterable[Cell], store: Store) -> list[Cell]:
    """The distinct cells whose profile is not (completely) in the store."""
    seen, out = set(), []
    for cell in cells:
        if cell.key not in seen:
            seen.add(cell.key)
            if stored_profile(cell, store) is None:
                out.append(cell)
    return out


def array_state(jobs: list) -> str:
    """The jobs counted by their scheduler state, e.g. ``"2 COMPLETED, 1 RUNNING, 5 PENDING"``
    (``UNKNOWN`` where the scheduler cannot say)."""
    counts: dict[str, int] = {}
    for job in jobs:
        try:
            state = str(job.state)
        except Exception:  # noqa: BLE001 - a scheduler query that fails is not a failed job
            state = "UNKNOWN"
        counts[state] = counts.get(state, 0) + 1
    return ", ".join(f"{k} {s}" for s, k in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def submit(
    cells: list[Cell],
    store: Store,
    context: Context,
    *,
    folder: str | Path,
    cluster: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    threads: int | None = None,
    poll_s: float = 2.0,
    progress: bool | None = None,
    report: Callable[[str, bool], None] | None = None,
) -> dict[str, JobFailure]:
    """Submit ``cells`` as one job array, wait for all, and return the failures by cell key.
    ``report(message, step)`` gets the array's state (jobs per state) whenever it changes."""
    import submitit

    if not cells:
        return {}
    store.ensure_root()  # before the job folder, which may live inside the store
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    executor.update_parameters(name="crlm-bench", **dict(parameters or {}))
    n = len(cells)
    ctx = dataclasses.asdict(dataclasses.replace(context, report=None))
    ctx.pop("report")  # a callback of this process: not sent to the jobs
    jobs = executor.map_array(
        run_cell, [c.to_dict() for c in cells], [str(store.root)] * n, [ctx] * n, [threads] * n
    )
    log.info("submitted %d cell(s) as job array %s (logs in %s)", n, jobs[0].job_id.split("_")[0], folder)
    disable = (not progress) if progress is not None else None
    with tqdm(total=n, desc="submitit jobs", unit="cell", disable=disable) as bar:
        done, said = 0, ""
        while done < n:
            time.sleep(poll_s)
            now = sum(job.done() for job in jobs)
            bar.update(now - done)
            done = now
            state = array_state(jobs)
            if report is not None and state != said:
                report(f"submitit array {jobs[0].job_id.split('_')[0]}: {done}/{n} done; {state}", True)
                said = state
    failures = {}
    for cell, job in zip(cells, jobs):
        try:
            job.result()
        except Exception as error:  # noqa: BLE001 - every failure is reported to the cell's tests
            lines = [l for l in str(error).strip().splitlines() if l.strip()]
            summary = (
                lines[-1] if lines else "".join(traceback.format_exception_only(type(error), error)).strip()
            )
            failures[cell.key] = JobFailure(
                cell.id, str(job.job_id), summary, str(job.paths.stdout), str(job.paths.stderr)
            )
            log.error("job %s for %s failed: %s (logs: %s)", job.job_id, cell.id, summary, job.paths.stderr)
    return failures
