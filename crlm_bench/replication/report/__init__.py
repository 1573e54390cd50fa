"""The replication report: ``report.md`` (tables), ``results.json`` (everything, machine-readable)
and figures (PNG at 150 dpi with an SVG beside each), in one directory.

In the manner of lm-evaluation-harness: the JSON carries the verdicts, the profiles, the budget, its
caveat and the settings, the package and torch versions, the git commit, the hardware and the torch
threads that computed each cell, and no absolute local path; the Markdown opens with the budget's
caveat, one table of verdicts for the main variant (with whether each verdict survives the
robustness variants) and the figures, then one section per claim, the thresholds, the provenance
and one profile table per cell. :func:`check_report` checks that the two agree and that the layout
holds (caveat first, verdicts before figures, no table line over 120 characters, SVG twins, dpi).

Modules: :mod:`.write` (:func:`write_report`), :mod:`.markdown` (``report.md``), :mod:`.results`
(``results.json`` and reading a report back), :mod:`.figures` (which figures, saving) and
:mod:`.plots` (drawing them), :mod:`.provenance` (commit, versions, hardware, budget and caveat,
threads per cell, path redaction) and :mod:`.check` (:func:`check_report`).
"""

from __future__ import annotations

from crlm_bench.replication.report.check import check_report, png_dpi
from crlm_bench.replication.report.figures import DPI
from crlm_bench.replication.report.markdown import (
    FIGURES_HEADING,
    HOLDS,
    MAX_LINE,
    OUTCOME_MARKS,
    VERDICT_HEADERS,
    VERDICTS_HEADING,
    render_markdown,
    robustness_label,
    short_group,
)
from crlm_bench.replication.report.provenance import NOT_RECORDED
from crlm_bench.replication.report.results import (
    REPORT_MD,
    RESULTS_FORMAT,
    RESULTS_JSON,
    LoadedReport,
    load_report,
    verdict_table,
)
from crlm_bench.replication.report.write import write_report

__all__ = [
    "DPI",
    "FIGURES_HEADING",
    "MAX_LINE",
    "NOT_RECORDED",
    "REPORT_MD",
    "RESULTS_JSON",
    "RESULTS_FORMAT",
    "VERDICT_HEADERS",
    "VERDICTS_HEADING",
    "HOLDS",
    "OUTCOME_MARKS",
    "LoadedReport",
    "write_report",
    "load_report",
    "check_report",
    "png_dpi",
    "short_group",
    "robustness_label",
    "render_markdown",
    "verdict_table",
]
