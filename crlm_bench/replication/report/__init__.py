"""The replication report: ``report.md`` (tables), ``results.json`` (everything, machine-readable)
and PNG figures, in one directory.

In the manner of lm-evaluation-harness: the JSON carries the verdicts, the profiles, the budget and
settings, the package and torch versions, the git commit and the hardware; the Markdown has one
table of verdicts for the main variant (with whether each verdict survives the robustness
variants), one section per claim, and one profile table per cell. :func:`check_report` checks that
the two agree.

Modules: :mod:`.write` (:func:`write_report`), :mod:`.markdown` (``report.md``), :mod:`.results`
(``results.json`` and reading a report back), :mod:`.figures`, :mod:`.provenance` (commit,
versions, hardware, budget) and :mod:`.check` (:func:`check_report`).
"""

from __future__ import annotations

from crlm_bench.replication.report.check import check_report
from crlm_bench.replication.report.markdown import (
    HOLDS,
    VERDICT_HEADERS,
    VERDICTS_HEADING,
    render_markdown,
    robustness_label,
)
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
    "REPORT_MD",
    "RESULTS_JSON",
    "RESULTS_FORMAT",
    "VERDICT_HEADERS",
    "VERDICTS_HEADING",
    "HOLDS",
    "LoadedReport",
    "write_report",
    "load_report",
    "check_report",
    "robustness_label",
    "render_markdown",
    "verdict_table",
]
