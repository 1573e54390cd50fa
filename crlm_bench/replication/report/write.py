"""Writing a report: ``report.md``, ``results.json`` and the figures (PNG and SVG), in one
directory."""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from crlm_bench.replication.claims import CellResult, Verdict
from crlm_bench.replication.report.figures import write_figures
from crlm_bench.replication.report.markdown import render_markdown
from crlm_bench.replication.report.provenance import budget_caveat, computed_with, provenance
from crlm_bench.replication.report.results import REPORT_MD, RESULTS_JSON, results_data, write_results

log = logging.getLogger(__name__)

__all__ = ["write_report"]


def write_report(
    directory: str | Path,
    verdicts: Sequence[Verdict],
    results: Sequence[CellResult],
    *,
    budget: Any,
    settings: Mapping[str, Any],
    extra_meta: Mapping[str, Any] | None = None,
    figures: bool = True,
    computed: Mapping[str, Any] | None = None,
    demonstrations: Sequence[tuple[str, CellResult]] = (),
) -> dict[str, Path]:
    """Write ``report.md``, ``results.json`` and the figures into ``directory`` (created if needed).

    Returns file name → path. A figure whose data is absent (no untrained cells, a single recipe,
    no baseline) is skipped. ``figures=False`` skips all of them. ``computed`` is the torch threads
    and device per cell (:func:`.provenance.computed_with`); by default they are read from the
    manifests of the store named by ``settings["store"]``, for the cells of ``budget``.
    ``demonstrations`` are (change, result) pairs of cells measured beside the claims to show a
    mechanism (:func:`crlm_bench.replication.session.stored_attribution`).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    verdicts, results = list(verdicts), list(results)
    created = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    meta = provenance()
    caveat = budget_caveat(budget)
    if computed is None:
        computed = computed_with([r.cell_id for r in results], budget, settings.get("store"))
    written = write_figures(directory, results, verdicts, demonstrations) if figures else {}
    names = list(written)
    data = results_data(
        verdicts,
        results,
        created=created,
        meta=meta,
        budget=budget,
        settings=settings,
        extra_meta=extra_meta,
        figures=names,
        caveat=caveat,
        computed=computed,
        demonstrations=demonstrations,
    )
    json_path = write_results(directory, data)
    md_path = directory / REPORT_MD
    md_path.write_text(
        render_markdown(
            verdicts,
            results,
            budget=budget,
            created=created,
            meta=meta,
            figures=names,
            caveat=caveat,
            computed=computed,
            demonstrations=demonstrations,
        ),
        encoding="utf-8",
    )
    log.info("report written to %s (%d verdicts, %d figures)", directory, len(verdicts), len(written))
    return {REPORT_MD: md_path, RESULTS_JSON: json_path, **written}
