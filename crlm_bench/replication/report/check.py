"""The self-check of a written report: its files exist, ``results.json`` has every entry and
agrees with its own counts, and the verdict table and the profile tables of ``report.md`` agree
with it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from crlm_bench.replication.claims import MAIN_VARIANT
from crlm_bench.replication.report.markdown import HOLDS
from crlm_bench.replication.report.results import REPORT_MD, RESULTS_JSON, LoadedReport, load_report

__all__ = ["check_report"]

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
    problems += _count_problems(report)
    problems += _markdown_problems(report)
    return problems


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
    if counts.get("main_holds") != sum(v.holds for v in main):
        problems.append(
            f"counts.main_holds is {counts.get('main_holds')} but {sum(v.holds for v in main)} main "
            "verdicts hold"
        )
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
    columns = ("claim", "group", "variant", "statistic", "holds")
    in_md = Counter(tuple(r.get(k) for k in columns) for r in rows)
    in_json = Counter((v.claim, v.group, v.variant, v.statistic, HOLDS[v.holds]) for v in main)
    for key in sorted(in_json - in_md):
        problems.append(
            f"verdict {key[0]} / {key[1]} ({key[2]}, holds {key[4]}) is in {RESULTS_JSON} but not in "
            f"the {REPORT_MD} table"
        )
    for key in sorted(in_md - in_json):
        problems.append(
            f"verdict {key[0]} / {key[1]} ({key[2]}, holds {key[4]}) is in the {REPORT_MD} table but "
            f"not in {RESULTS_JSON}"
        )
    for profile in report.results.get("profiles", []):
        if f"### {profile.get('cell_id')}" not in report.markdown:
            problems.append(
                f"profile of {profile.get('cell_id')} is in {RESULTS_JSON} but has no table in {REPORT_MD}"
            )
    return problems
