"""The self-check of a written report: its files exist, ``results.json`` has every entry, agrees
with its own counts and holds no absolute local path, the verdict table and the profile tables of
``report.md`` agree with it, ``report.md`` opens with the caveat and the verdicts before the
figures and has no table line over :data:`~.markdown.MAX_LINE` characters, and every PNG figure
has its SVG twin and at least :data:`~.figures.DPI` dpi."""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path
from typing import Any

from crlm_bench.replication.claims import MAIN_VARIANT
from crlm_bench.replication.report.figures import DPI
from crlm_bench.replication.report.markdown import (
    FIGURES_HEADING,
    MAX_LINE,
    VERDICTS_HEADING,
    verdict_rows,
)
from crlm_bench.replication.report.results import REPORT_MD, RESULTS_JSON, LoadedReport, load_report

__all__ = ["check_report", "png_dpi"]

#: The entries every ``results.json`` has.
_REQUIRED_ENTRIES = (
    "created",
    "budget",
    "settings",
    "crlm_bench_version",
    "torch_version",
    "git_commit",
    "hardware",
    "verdicts",
    "profiles",
    "counts",
    "figures",
    "caveat",
    "threads",
    "paths",
)


def check_report(directory: str | Path) -> list[str]:
    """Problems with a written report; [] when its files exist and ``report.md`` agrees with
    ``results.json``."""
    directory = Path(directory)
    problems = [
        f"{name} is missing from {directory}"
        for name in (REPORT_MD, RESULTS_JSON)
        if not (directory / name).is_file()
    ]
    if problems:
        return problems
    try:
        report = load_report(directory)
    except (ValueError, TypeError, KeyError) as exc:
        return [f"{RESULTS_JSON} cannot be read back: {exc}"]
    data = report.results
    for key in _REQUIRED_ENTRIES:
        if key not in data:
            problems.append(f"{RESULTS_JSON} has no {key!r} entry")
    for path in report.figures:
        if not path.is_file():
            problems.append(f"figure {path.name} is listed in {RESULTS_JSON} but missing")
    problems += _figure_problems(report)
    problems += _count_problems(report)
    problems += _markdown_problems(report)
    problems += _layout_problems(report)
    problems += [
        f"{RESULTS_JSON} holds the absolute local path {text!r} (at {where})"
        for where, text in _absolute_paths(data)
    ]
    return problems


def png_dpi(path: str | Path) -> float | None:
    """The resolution a PNG records (its pHYs chunk) in dots per inch; None without one."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    at = 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        body = data[at + 8 : at + 8 + length]
        if kind == b"pHYs" and length == 9:
            x, _, unit = struct.unpack(">IIB", body)
            return x * 0.0254 if unit == 1 else None
        if kind in (b"IDAT", b"IEND"):  # pHYs comes before the image data
            return None
        at += 12 + length
    return None


def _figure_problems(report: LoadedReport) -> list[str]:
    """A PNG without its SVG twin, or under :data:`~.figures.DPI` dpi."""
    problems = []
    for path in report.figures:
        if path.suffix != ".png" or not path.is_file():
            continue
        svg = path.with_suffix(".svg")
        if not svg.is_file() or svg.name not in {p.name for p in report.figures}:
            problems.append(f"figure {path.name} has no SVG twin {svg.name} listed in {RESULTS_JSON}")
        dpi = png_dpi(path)
        if dpi is None or dpi < DPI - 0.5:
            found = "of unrecorded resolution" if dpi is None else f"{dpi:.0f} dpi"
            problems.append(f"figure {path.name} is {found}, under {DPI}")
    return problems


def _layout_problems(report: LoadedReport) -> list[str]:
    """``report.md`` without the caveat before the verdicts, with the figures before the verdicts,
    or with a table line longer than :data:`~.markdown.MAX_LINE` characters."""
    problems = []
    lines = report.markdown.splitlines()
    verdicts_at = lines.index(VERDICTS_HEADING) if VERDICTS_HEADING in lines else None
    if verdicts_at is None:
        problems.append(f"{REPORT_MD} has no {VERDICTS_HEADING!r} section")
    caveat = report.results.get("caveat")
    top = "\n".join(lines[: verdicts_at if verdicts_at is not None else 10])
    if not any(line.startswith("> ") for line in lines[: verdicts_at or 10]) or (
        caveat and caveat not in top
    ):
        problems.append(f"{REPORT_MD} does not state the budget's caveat before the verdicts")
    if FIGURES_HEADING in lines and verdicts_at is not None and lines.index(FIGURES_HEADING) < verdicts_at:
        problems.append(f"{REPORT_MD} has the figures before the verdicts")
    if any(p.suffix == ".png" for p in report.figures) and FIGURES_HEADING not in lines:
        problems.append(f"{REPORT_MD} has no {FIGURES_HEADING!r} section for its figures")
    long = [i + 1 for i, line in enumerate(lines) if line.startswith("|") and len(line) > MAX_LINE]
    if long:
        problems.append(
            f"{REPORT_MD} has {len(long)} table lines longer than {MAX_LINE} characters "
            f"(line {long[0]} first)"
        )
    return problems


def _absolute_paths(obj: Any, where: str = "") -> list[tuple[str, str]]:
    """(where, text) of every string of ``obj`` that is an absolute local path."""
    if isinstance(obj, dict):
        return [found for k, v in obj.items() for found in _absolute_paths(v, f"{where}.{k}" if where else k)]
    if isinstance(obj, list):
        return [found for i, v in enumerate(obj) for found in _absolute_paths(v, f"{where}[{i}]")]
    if isinstance(obj, str) and (obj.startswith("/") or obj.startswith("~/") or obj[1:3] in (":\\", ":/")):
        return [(where, obj)]
    return []


def _count_problems(report: LoadedReport) -> list[str]:
    """Where ``counts`` in ``results.json`` disagrees with the verdicts and profiles stored there."""
    problems = []
    data = report.results
    main = [v for v in report.verdicts if v.variant == MAIN_VARIANT]
    counts = data.get("counts", {})
    if counts.get("verdicts") != len(report.verdicts):
        problems.append(
            f"counts.verdicts is {counts.get('verdicts')} but {RESULTS_JSON} holds "
            f"{len(report.verdicts)} verdicts"
        )
    if counts.get("main") != len(main):
        problems.append(
            f"counts.main is {counts.get('main')} but {len(main)} verdicts are of the main variant"
        )
    holding = sum(v.outcome == "holds" for v in main)
    if counts.get("main_holds") != holding:
        problems.append(f"counts.main_holds is {counts.get('main_holds')} but {holding} main verdicts hold")
    if counts.get("cells") != len(data.get("profiles", [])):
        problems.append(
            f"counts.cells is {counts.get('cells')} but {len(data.get('profiles', []))} profiles are stored"
        )
    return problems


def _markdown_problems(report: LoadedReport) -> list[str]:
    """Where ``report.md`` disagrees with ``results.json``: the rows of the verdict table (main
    variant) and a profile table per stored profile."""
    problems = []
    main = [v for v in report.verdicts if v.variant == MAIN_VARIANT]
    rows = report.verdict_table()
    if len(rows) != len(main):
        problems.append(
            f"{REPORT_MD} has {len(rows)} verdict rows but {RESULTS_JSON} has {len(main)} main verdicts"
        )
    datasets = {p.get("dataset") for p in report.results.get("profiles", [])} - {None}
    headers, expected = verdict_rows(list(report.verdicts), datasets)
    columns = ("claim", "group", "result")
    in_md = Counter(tuple(r.get(k) for k in columns) for r in rows)
    in_json = Counter(tuple(row[headers.index(k)] for k in columns) for _, row in expected)
    for key in sorted(in_json - in_md):
        problems.append(
            f"verdict {key[0]} / {key[1]} (outcome {key[2]}) is in {RESULTS_JSON} but not in the "
            f"{REPORT_MD} table"
        )
    for key in sorted(in_md - in_json):
        problems.append(
            f"verdict {key[0]} / {key[1]} (outcome {key[2]}) is in the {REPORT_MD} table but not in "
            f"{RESULTS_JSON}"
        )
    for profile in report.results.get("profiles", []):
        if f"### {profile.get('cell_id')}" not in report.markdown:
            problems.append(
                f"profile of {profile.get('cell_id')} is in {RESULTS_JSON} but has no table in {REPORT_MD}"
            )
    return problems
