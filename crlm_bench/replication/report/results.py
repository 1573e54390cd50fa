"""``results.json``, everything in a report in machine-readable form, in the manner of
lm-evaluation-harness: the verdicts, the profiles, the budget, its caveat and the settings, the
package and torch versions, the git commit, the hardware, and the torch threads and device that
computed each cell. No absolute local path is written (:data:`~.provenance.PATHS_NOTE`, in the
file as ``paths``). And the way back: :func:`load_report` reads a written report,
:func:`verdict_table` the verdict table of its ``report.md``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crlm_bench.replication.claims import (
    MAIN_VARIANT,
    ROBUSTNESS_VARIANTS,
    THRESHOLDS,
    CellResult,
    Verdict,
    jsonable,
)
from crlm_bench.replication.report.markdown import VERDICTS_HEADING, uncell
from crlm_bench.replication.report.provenance import PATHS_NOTE, budget_summary, redact_paths, threads_summary

__all__ = [
    "REPORT_MD",
    "RESULTS_JSON",
    "RESULTS_FORMAT",
    "LoadedReport",
    "results_data",
    "write_results",
    "load_report",
    "verdict_table",
]

REPORT_MD = "report.md"
RESULTS_JSON = "results.json"
RESULTS_FORMAT = 1


def results_data(
    verdicts: Sequence[Verdict],
    results: Sequence[CellResult],
    *,
    created: str,
    meta: Mapping[str, Any],
    budget: Any,
    settings: Mapping[str, Any],
    extra_meta: Mapping[str, Any] | None,
    figures: Sequence[str],
    caveat: str = "",
    computed: Mapping[str, Any] | None = None,
    demonstrations: Sequence[tuple[str, CellResult]] = (),
) -> dict[str, Any]:
    """The content of ``results.json``; ``meta`` is :func:`.provenance.provenance`, ``caveat``
    :func:`.provenance.budget_caveat` and ``computed`` :func:`.provenance.computed_with`.
    ``variants.attribution`` names the seed-0 attribution variants among the verdicts, and
    ``demonstrations`` holds each demonstration cell's profile under each ``change``."""
    main = [v for v in verdicts if v.variant == MAIN_VARIANT]
    computed = jsonable(dict(computed or {}))
    return {
        "format": RESULTS_FORMAT,
        "created": created,
        **meta,
        "threads": {
            "summary": threads_summary(computed),
            "note": (
                "torch threads and device of the processes that trained and profiled each cell, from "
                "the store's manifests; 'not recorded' where the store does not hold them (entries "
                "stored before crlm_bench recorded them). The process that wrote this report computed "
                "nothing."
            ),
            "cells": computed,
        },
        "budget": budget_summary(budget),
        "caveat": caveat,
        "settings": redact_paths(jsonable(dict(settings))),
        "extra": redact_paths(jsonable(dict(extra_meta or {}))),
        "paths": PATHS_NOTE,
        "variants": {
            "main": MAIN_VARIANT,
            "robustness": list(ROBUSTNESS_VARIANTS),
            "attribution": sorted({v.variant for v in verdicts} - {MAIN_VARIANT, *ROBUSTNESS_VARIANTS}),
        },
        "counts": {
            "verdicts": len(verdicts),
            "main": len(main),
            "main_holds": sum(v.outcome == "holds" for v in main),
            "main_inconclusive": sum(v.outcome == "inconclusive" for v in main),
            "cells": len(results),
        },
        "thresholds": {
            k: {
                "value": t.value,
                "comparison": t.comparison,
                "text": t.text,
                "justification": t.justification,
            }
            for k, t in THRESHOLDS.items()
        },
        "verdicts": [v.to_dict() for v in verdicts],
        "profiles": [r.to_dict() for r in results],
        "demonstrations": [{"change": change, **r.to_dict()} for change, r in demonstrations],
        "figures": sorted(figures),
    }


def write_results(directory: Path, data: Mapping[str, Any]) -> Path:
    """Write ``data`` as ``directory/results.json`` (strict JSON: no NaN); its path."""
    path = directory / RESULTS_JSON
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False), encoding="utf-8")
    return path


@dataclass(frozen=True)
class LoadedReport:
    """A report read back: the Markdown text, the JSON data and its verdicts, the figure paths."""

    directory: Path
    markdown: str
    results: dict[str, Any]
    verdicts: tuple[Verdict, ...]
    figures: tuple[Path, ...]

    def verdict_table(self) -> list[dict[str, str]]:
        return verdict_table(self.markdown)


def load_report(directory: str | Path) -> LoadedReport:
    """Read a report written by :func:`crlm_bench.replication.report.write_report`."""
    directory = Path(directory)
    md, js = directory / REPORT_MD, directory / RESULTS_JSON
    for path in (md, js):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing; write the report with crlm_bench.replication.report.write_report"
            )
    data = json.loads(js.read_text(encoding="utf-8"))
    return LoadedReport(
        directory,
        md.read_text(encoding="utf-8"),
        data,
        tuple(Verdict.from_dict(v) for v in data.get("verdicts", [])),
        tuple(directory / name for name in data.get("figures", [])),
    )


def verdict_table(markdown: str) -> list[dict[str, str]]:
    """The rows of the verdict table of a ``report.md`` as dicts keyed by its header (the columns
    of :data:`~crlm_bench.replication.report.markdown.VERDICT_HEADERS` it has). A table too wide
    for a screen is written as two, row for row the same verdicts (the second with the robustness):
    their rows are merged."""
    lines = markdown.splitlines()
    try:
        start = lines.index(VERDICTS_HEADING)
    except ValueError:
        return []
    tables: list[list[str]] = [[]]
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            tables[-1].append(line)
        elif not line.strip() and tables[-1]:
            tables.append([])  # a blank line ends a table; another may follow
        elif line.startswith("#") or (line.strip() and tables[0]):
            break
    tables = [t for t in tables if len(t) >= 2]
    if not tables:
        return []

    def cells(line: str) -> list[str]:
        return [uncell(c) for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]

    rows = [dict(zip(cells(tables[0][0]), cells(line))) for line in tables[0][2:]]  # after the separator
    for table in tables[1:]:
        if len(table) - 2 != len(rows):
            break
        for row, line in zip(rows, table[2:]):
            row.update(zip(cells(table[0]), cells(line)))
    return rows
