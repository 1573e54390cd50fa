"""The text of ``report.md``: one table of verdicts for the main variant (with whether each verdict
survives the robustness variants), one section per claim with its details, the thresholds, one
profile table per cell, and links to the figures.

Tables are GitHub Markdown written by :mod:`tabulate`; :func:`uncell` undoes the escaping of
:func:`_cell` for :func:`crlm_bench.replication.report.results.verdict_table`, which reads the
verdict table back.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from tabulate import tabulate

import crlm_bench
from crlm_bench.replication.claims import (
    MAIN_VARIANT,
    ROBUSTNESS_VARIANTS,
    THRESHOLDS,
    CellResult,
    Verdict,
    fmt,
    jsonable,
    ordered,
    summary,
)
from crlm_bench.replication.report.provenance import budget_name

__all__ = [
    "HOLDS",
    "VERDICTS_HEADING",
    "VERDICT_HEADERS",
    "render_markdown",
    "robustness_label",
    "uncell",
]

VERDICTS_HEADING = "## Verdicts"
VERDICT_HEADERS = [
    "claim",
    "group",
    "variant",
    "statistic",
    "measured",
    "threshold",
    "paper",
    "holds",
    "robust",
]
HOLDS = {True: "✓", False: "✗"}

# ---------------------------------------------------------------------------------------------
# small helpers


def _fmt(x: Any) -> str:
    """:func:`~crlm_bench.replication.claims.fmt`, with ``—`` for a missing value and ✓/✗ for a
    boolean (a table cell)."""
    if x is None:
        return "—"
    if isinstance(x, (bool, np.bool_)):
        return HOLDS[bool(x)]
    return fmt(x)


def _cell(text: Any) -> str:
    """Markdown-table-safe text: pipes escaped, newlines flattened."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def uncell(text: str) -> str:
    """The text of a Markdown table cell written by :func:`_cell`, stripped and unescaped."""
    return re.sub(r"\\(.)", r"\1", text.strip())


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    body = [[_cell(c) for c in row] for row in rows]
    return tabulate(body, headers=list(headers), tablefmt="github", disable_numparse=True)


def _flatten(details: Mapping[str, Any], prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in details.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and depth < 2:
            out.extend(_flatten(value, name + ".", depth + 1))
        elif isinstance(value, Mapping):
            out.append((name, json.dumps(jsonable(value), ensure_ascii=False)))
        elif isinstance(value, (list, tuple)):
            out.append((name, ", ".join(_fmt(v) for v in value)))
        else:
            out.append((name, value))
    return out


def robustness_label(verdict: Verdict, verdicts: Iterable[Verdict]) -> str:
    """Whether ``verdict`` (main variant) is the same under the robustness variants: ``yes``,
    ``no (sff/knn-input ✗)``, or ``n/a`` when no robustness variant could be evaluated."""
    others = {v.variant: v for v in verdicts if v.key == verdict.key and v.variant in ROBUSTNESS_VARIANTS}
    if not others:
        return "n/a"
    differ = [
        f"{name} {HOLDS[others[name].holds]}"
        for name in ROBUSTNESS_VARIANTS
        if name in others and others[name].holds != verdict.holds
    ]
    missing = [name for name in ROBUSTNESS_VARIANTS if name not in others]
    if differ:
        return f"no ({', '.join(differ)})"
    return "yes" + (f" (no {', '.join(missing)})" if missing else "")


def _paper_text(v: Verdict) -> str:
    return "—" if v.paper_value is None else f"≈{_fmt(v.paper_value)}"


# ---------------------------------------------------------------------------------------------
# the report


def render_markdown(
    verdicts: Sequence[Verdict],
    results: Sequence[CellResult],
    *,
    budget: Any,
    created: str,
    meta: Mapping[str, Any],
    figures: Sequence[str],
) -> str:
    """The text of ``report.md``."""
    lines = _header(verdicts, results, budget=budget, created=created, meta=meta)
    lines += ["## Claims", ""]
    for claim in ordered(v.claim for v in verdicts):
        lines += _claim_section(claim, [v for v in verdicts if v.claim == claim])

    lines += ["## Thresholds", ""]
    thresholds = [[k, t.text, t.justification] for k, t in THRESHOLDS.items()]
    lines += [_table(thresholds, ["threshold", "bound", "why"]), ""]

    lines += ["## Profiles", ""]
    for r in results:
        accuracy = f"test accuracy {_fmt(r.test_accuracy)} · epoch {r.epoch} of {r.epochs}"
        lines += [f"### {r.cell_id}", "", accuracy, ""]
        lines += [_profile_table(r), ""]

    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{name}]({name})" for name in figures] + [""]
    return "\n".join(lines)


def _header(
    verdicts: Sequence[Verdict],
    results: Sequence[CellResult],
    *,
    budget: Any,
    created: str,
    meta: Mapping[str, Any],
) -> list[str]:
    """The title, the provenance line, the summary and the verdict table of the main variant."""
    main = [v for v in verdicts if v.variant == MAIN_VARIANT]
    holding = sum(v.holds for v in main)
    commit = meta.get("git_commit")
    lines = [
        "# crlm_bench replication report: Kaufman & Azencot, ICML 2023",
        "",
        f"Budget: **{budget_name(budget)}** · created {created} · crlm_bench {crlm_bench.__version__}"
        f" · commit {commit[:12] if commit else 'unknown'} · {len(results)} cells",
        "",
        f"{holding} of {len(main)} verdicts hold under the main variant ({MAIN_VARIANT}). "
        f"*robust*: the verdict is the same under {' and '.join(ROBUSTNESS_VARIANTS)}. Paper values "
        "were read from the paper's figures (±10 % on MAPC, ±0.05 on gaps); they are approximate, "
        "never exact.",
        "",
        VERDICTS_HEADING,
        "",
    ]
    rows = [
        [
            v.claim,
            v.group,
            v.variant,
            v.statistic,
            _fmt(v.value),
            v.threshold,
            _paper_text(v),
            HOLDS[v.holds],
            robustness_label(v, verdicts),
        ]
        for v in main
    ]
    lines += [_table(rows, VERDICT_HEADERS) if rows else "(no verdicts: no claim could form a group)", ""]
    return lines


def _claim_section(claim: str, verdicts: Sequence[Verdict]) -> list[str]:
    """One claim: its prose, a row per (group, statistic) with the value under every variant, the
    paper's sources and the main variant's details."""
    lines = [f"### {claim}", "", summary(claim), ""]
    variants = list(dict.fromkeys([MAIN_VARIANT, *ROBUSTNESS_VARIANTS, *(v.variant for v in verdicts)]))
    by_key: dict[tuple, dict[str, Verdict]] = defaultdict(dict)
    for v in verdicts:
        by_key[v.key][v.variant] = v
    rows = []
    for key, per_variant in by_key.items():
        first = per_variant.get(MAIN_VARIANT) or next(iter(per_variant.values()))
        cells = [
            f"{_fmt(per_variant[n].value)} {HOLDS[per_variant[n].holds]}" if n in per_variant else "—"
            for n in variants
        ]
        rows.append([key[1], key[2], *cells, first.explanation])
    lines += [_table(rows, ["group", "statistic", *variants, "explanation"]), ""]
    sources = sorted({v.paper_source for v in verdicts if v.paper_source})
    if sources:
        lines += ["Paper values: " + "; ".join(sources) + ".", ""]
    lines += _details_sections(claim, [v for v in verdicts if v.variant == MAIN_VARIANT and v.details])
    return lines


def _details_sections(claim: str, verdicts: Sequence[Verdict]) -> list[str]:
    """The main variant's details: one wide table (a row per group) per statistic when the details
    are flat, else one figure/value table per verdict."""
    lines: list[str] = []
    for statistic in dict.fromkeys(v.statistic for v in verdicts):
        these = [v for v in verdicts if v.statistic == statistic]
        if all(not isinstance(x, (Mapping, list, tuple)) for v in these for x in v.details.values()):
            keys = list(dict.fromkeys(k for v in these for k in v.details))
            lines += [f"#### {claim}: details ({statistic})", ""]
            rows = [[v.group, *(_fmt(v.details.get(k)) for k in keys)] for v in these]
            lines += [_table(rows, ["group", *keys]), ""]
            continue
        for v in these:
            lines += [f"#### {claim} · {v.group}: details", ""]
            lines += [_table([[k, _fmt(x)] for k, x in _flatten(v.details)], ["figure", "value"]), ""]
    return lines


def _profile_table(r: CellResult) -> str:
    frame = r.profile.sort_values("depth", kind="stable")
    rows = []
    for _, row in frame.iterrows():
        name = str(row["probe"])
        if row["depth"] == 0 and "neighbourhood" in frame.columns:
            name = f"{name} ({row['neighbourhood']})"
        rows.append(
            [
                name,
                _fmt(float(row["relative_depth"])),
                _fmt(row.get("d")),
                _fmt(float(row["mapc"])),
                _fmt(row.get("nmapc")),
                _fmt(row.get("sff_norm_median")),
            ]
        )
    return _table(rows, ["probe", "relative depth", "d", "MAPC", "NMAPC", "sff_norm_median"])
