"""The replication report: ``report.md`` (tables), ``results.json`` (everything, machine-readable)
and PNG figures, in one directory.

In the manner of lm-evaluation-harness: the JSON carries the verdicts, the profiles, the budget and
settings, the package and torch versions, the git commit and the hardware; the Markdown has one
table of verdicts for the main variant (with whether each verdict survives the robustness
variants), one section per claim, and one profile table per cell. :func:`check_report` checks that
the two agree.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.metadata
import json
import logging
import math
import os
import platform
import re
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

import crlm_bench
from crlm_bench.replication import paper
from crlm_bench.replication.claims import (
    MAIN_VARIANT,
    PAPER_ORDER,
    ROBUSTNESS_VARIANTS,
    THRESHOLDS,
    CellResult,
    Curve,
    ProfileError,
    Verdict,
    jsonable,
    profile_curve,
)

log = logging.getLogger(__name__)

__all__ = [
    "REPORT_MD",
    "RESULTS_JSON",
    "VERDICT_HEADERS",
    "LoadedReport",
    "write_report",
    "load_report",
    "check_report",
    "robustness_label",
    "render_markdown",
    "verdict_table",
]

REPORT_MD = "report.md"
RESULTS_JSON = "results.json"
RESULTS_FORMAT = 1
VERDICTS_HEADING = "## Verdicts"
VERDICT_HEADERS = ["claim", "group", "variant", "statistic", "measured", "threshold", "paper", "holds", "robust"]
HOLDS = {True: "✓", False: "✗"}

_CLAIM_TEXT = {
    "profile-shape": "Trained networks show a steep rise, a long plateau and a final rise of curvature.",
    "untrained-flattens": "Untrained networks do not: their last probe collapses.",
    "gap-tracks-accuracy": "The curvature gap between the last two probes follows test accuracy.",
    "id-not-curvature": "Intrinsic dimension does not track curvature.",
    "mixup-flattens": "Mixup gives flatter representations than the other regularisers.",
}


# ---------------------------------------------------------------------------------------------
# small helpers


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, (bool, np.bool_)):
        return HOLDS[bool(x)]
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        if math.isnan(x):
            return "n/a"
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        return f"{x:.3g}"
    return str(x)


def _cell(text: Any) -> str:
    """Markdown-table-safe text: pipes escaped, newlines flattened."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _uncell(text: str) -> str:
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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
            timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", commit) else None


def _torch_version() -> str | None:
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def _hardware() -> dict[str, Any]:
    out: dict[str, Any] = {
        "platform": platform.platform(), "machine": platform.machine(), "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "cuda_device": None,
    }  # fmt: skip
    try:
        import torch

        if torch.cuda.is_available():
            out["cuda_device"] = torch.cuda.get_device_name(0)
    except Exception as exc:  # never fail a report over the hardware description
        log.debug("no CUDA description: %s", exc)
    return out


def _budget(budget: Any) -> Any:
    if budget is None or isinstance(budget, (str, int, float, bool)):
        return budget
    if hasattr(budget, "to_dict"):
        return jsonable(budget.to_dict())
    if hasattr(budget, "name") and hasattr(budget, "cells"):  # a grid Budget: its names, not every setting
        runs = getattr(budget, "checkpoint_runs", ())
        return jsonable({
            "name": budget.name, "description": getattr(budget, "description", None),
            "cells": [getattr(c, "id", str(c)) for c in budget.cells],
            "checkpoint_runs": [[getattr(c, "id", str(c)) for c in run] for run in runs],
        })  # fmt: skip
    if dataclasses.is_dataclass(budget) and not isinstance(budget, type):
        return jsonable(dataclasses.asdict(budget))
    return str(budget)


def _budget_name(budget: Any) -> str:
    if budget is None:
        return "unspecified"
    if isinstance(budget, str):
        return budget
    return str(getattr(budget, "name", budget))


def robustness_label(verdict: Verdict, verdicts: Iterable[Verdict]) -> str:
    """Whether ``verdict`` (main variant) is the same under the robustness variants: ``yes``,
    ``no (sff/knn-input ✗)``, or ``n/a`` when no robustness variant could be evaluated."""
    others = {v.variant: v for v in verdicts if v.key == verdict.key and v.variant in ROBUSTNESS_VARIANTS}
    if not others:
        return "n/a"
    differ = [f"{name} {HOLDS[others[name].holds]}" for name in ROBUSTNESS_VARIANTS
              if name in others and others[name].holds != verdict.holds]  # fmt: skip
    missing = [name for name in ROBUSTNESS_VARIANTS if name not in others]
    if differ:
        return f"no ({', '.join(differ)})"
    return "yes" + (f" (no {', '.join(missing)})" if missing else "")


def _claim_order(verdicts: Iterable[Verdict]) -> list[str]:
    names = list(dict.fromkeys(v.claim for v in verdicts))
    return [n for n in PAPER_ORDER if n in names] + [n for n in names if n not in PAPER_ORDER]


def _paper_text(v: Verdict) -> str:
    return "—" if v.paper_value is None else f"≈{_fmt(v.paper_value)}"


# ---------------------------------------------------------------------------------------------
# markdown


def render_markdown(verdicts: Sequence[Verdict], results: Sequence[CellResult], *, budget: Any,
                    created: str, meta: Mapping[str, Any], figures: Sequence[str]) -> str:
    """The text of ``report.md``."""
    main = [v for v in verdicts if v.variant == MAIN_VARIANT]
    holding = sum(v.holds for v in main)
    commit = meta.get("git_commit")
    lines = [
        "# crlm_bench replication report: Kaufman & Azencot, ICML 2023",
        "",
        f"Budget: **{_budget_name(budget)}** · created {created} · crlm_bench {crlm_bench.__version__}"
        f" · commit {commit[:12] if commit else 'unknown'} · {len(results)} cells",
        "",
        f"{holding} of {len(main)} verdicts hold under the main variant ({MAIN_VARIANT}). "
        f"*robust*: the verdict is the same under {' and '.join(ROBUSTNESS_VARIANTS)}. Paper values were "
        "read from the paper's figures (±10 % on MAPC, ±0.05 on gaps); they are approximate, never exact.",
        "",
        VERDICTS_HEADING,
        "",
    ]
    rows = [
        [v.claim, v.group, v.variant, v.statistic, _fmt(v.value), v.threshold, _paper_text(v), HOLDS[v.holds],
         robustness_label(v, verdicts)]
        for v in main
    ]  # fmt: skip
    lines += [_table(rows, VERDICT_HEADERS) if rows else "(no verdicts: no claim could form a group)", ""]

    lines += ["## Claims", ""]
    for claim in _claim_order(verdicts):
        these = [v for v in verdicts if v.claim == claim]
        lines += [f"### {claim}", "", _CLAIM_TEXT.get(claim, ""), ""]
        variants = list(dict.fromkeys([MAIN_VARIANT, *ROBUSTNESS_VARIANTS, *(v.variant for v in these)]))
        by_key: dict[tuple, dict[str, Verdict]] = defaultdict(dict)
        for v in these:
            by_key[v.key][v.variant] = v
        rows = []
        for key, per_variant in by_key.items():
            first = per_variant.get(MAIN_VARIANT) or next(iter(per_variant.values()))
            cells = [f"{_fmt(per_variant[n].value)} {HOLDS[per_variant[n].holds]}" if n in per_variant else "—"
                     for n in variants]  # fmt: skip
            rows.append([key[1], key[2], *cells, first.explanation])
        lines += [_table(rows, ["group", "statistic", *variants, "explanation"]), ""]
        sources = sorted({v.paper_source for v in these if v.paper_source})
        if sources:
            lines += ["Paper values: " + "; ".join(sources) + ".", ""]
        lines += _details_sections(claim, [v for v in these if v.variant == MAIN_VARIANT and v.details])

    lines += ["## Thresholds", ""]
    lines += [_table([[k, t.text, t.justification] for k, t in THRESHOLDS.items()], ["threshold", "bound", "why"]), ""]

    lines += ["## Profiles", ""]
    for r in results:
        lines += [f"### {r.cell_id}", "", f"test accuracy {_fmt(r.test_accuracy)} · epoch {r.epoch} of {r.epochs}", ""]
        lines += [_profile_table(r), ""]

    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{name}]({name})" for name in figures] + [""]
    return "\n".join(lines)


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
        rows.append([
            name, _fmt(float(row["relative_depth"])), _fmt(row.get("d")), _fmt(float(row["mapc"])),
            _fmt(row.get("nmapc")), _fmt(row.get("sff_norm_median")),
        ])  # fmt: skip
    return _table(rows, ["probe", "relative depth", "d", "MAPC", "NMAPC", "sff_norm_median"])


# ---------------------------------------------------------------------------------------------
# figures


def _curve(r: CellResult) -> Curve | None:
    for input_row in ("knn", "perturbation", None):
        try:
            return profile_curve(r.profile, "mapc", input_row)
        except ProfileError:
            continue
    return None


def _xy(curve: Curve) -> tuple[list[float], list[float]]:
    xs, ys = list(curve.relative_depth), list(curve.values)
    if curve.input_value is not None:
        xs, ys = [0.0, *xs], [curve.input_value, *ys]
    return xs, [y if y > 0 else math.nan for y in ys]  # log axis: zeros leave a gap


def _new_figure(n_panels: int = 1):
    from matplotlib.figure import Figure  # no pyplot: no global state, no interactive backend

    cols = min(n_panels, 3)
    rows = math.ceil(n_panels / cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _profile_axes(ax, title: str) -> None:
    ax.set_yscale("log")
    ax.set_xlabel("relative depth")
    ax.set_ylabel("MAPC")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="major", alpha=0.3)


def _first_per(results: Iterable[CellResult], key) -> dict:
    out: dict = {}
    for r in sorted(results, key=lambda r: (r.seed, r.cell_id)):
        out.setdefault(key(r), r)
    return out


def _figures(directory: Path, results: Sequence[CellResult]) -> dict[str, Path]:
    written: dict[str, Path] = {}
    final = [r for r in results if r.final]
    curves = {r.cell_id: _curve(r) for r in final}
    final = [r for r in final if curves[r.cell_id] is not None]
    for dataset in sorted({r.dataset for r in final}):
        here = [r for r in final if r.dataset == dataset]
        baseline = _first_per((r for r in here if r.recipe == "baseline"), lambda r: r.model)
        untrained = _first_per((r for r in here if not r.trained), lambda r: r.model)
        trained = _first_per((r for r in here if r.trained), lambda r: (r.model, r.recipe))

        if baseline:  # MAPC against relative depth, one line per model
            fig, (ax,) = _new_figure()
            for model, r in sorted(baseline.items()):
                ax.plot(*_xy(curves[r.cell_id]), marker="o", ms=3, label=model)
            _profile_axes(ax, f"{dataset}: trained baseline profiles")
            ax.legend(fontsize=7)
            written[f"profiles_{_slug(dataset)}.png"] = _save(fig, directory / f"profiles_{_slug(dataset)}.png")

        pairs = sorted(m for m in untrained if m in baseline)
        if pairs:  # trained against untrained
            fig, axes = _new_figure(len(pairs))
            for ax, model in zip(axes, pairs):
                ax.plot(*_xy(curves[baseline[model].cell_id]), marker="o", ms=3, label="trained")
                ax.plot(*_xy(curves[untrained[model].cell_id]), marker="s", ms=3, label="untrained")
                _profile_axes(ax, f"{dataset}/{model}")
                ax.legend(fontsize=7)
            written[f"untrained_{_slug(dataset)}.png"] = _save(fig, directory / f"untrained_{_slug(dataset)}.png")

        by_model = defaultdict(dict)
        for (model, recipe), r in trained.items():
            by_model[model][recipe] = r
        models = sorted(m for m, recipes in by_model.items() if len(recipes) >= 2)
        if models:  # recipes per model
            fig, axes = _new_figure(len(models))
            for ax, model in zip(axes, models):
                for recipe, r in sorted(by_model[model].items()):
                    ax.plot(*_xy(curves[r.cell_id]), marker="o", ms=3, label=recipe)
                _profile_axes(ax, f"{dataset}/{model}: recipes")
                ax.legend(fontsize=7)
            written[f"recipes_{_slug(dataset)}.png"] = _save(fig, directory / f"recipes_{_slug(dataset)}.png")

        points = []
        for model, r in sorted(baseline.items()):
            c = curves[r.cell_id]
            if c.input_value is not None and math.isfinite(r.test_accuracy):
                points.append((model, 100 * r.test_accuracy, c.gap))
        if points:  # gap against accuracy, the paper's points beside
            fig, (ax,) = _new_figure()
            ax.scatter([p[1] for p in points], [p[2] for p in points], label="this run", zorder=3)
            for model, x, y in points:
                ax.annotate(model, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
            theirs = paper.paper_points(dataset)
            if theirs:
                ax.scatter([p.accuracy_percent for p in theirs], [p.gap for p in theirs], marker="x",
                           label="paper (read from figure acc_vs_mapc_ngap)")  # fmt: skip
                for p in theirs:
                    ax.annotate(p.model, (p.accuracy_percent, p.gap), fontsize=6, color="gray",
                                xytext=(3, -8), textcoords="offset points")  # fmt: skip
            ax.set_xlabel("test accuracy (%)")
            ax.set_ylabel("NMAPC gap (last − penultimate)")
            ax.set_title(f"{dataset}: curvature gap against accuracy", fontsize=9)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7)
            written[f"gap_accuracy_{_slug(dataset)}.png"] = _save(fig, directory / f"gap_accuracy_{_slug(dataset)}.png")
    return written


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=100)
    return path


# ---------------------------------------------------------------------------------------------
# write, load, check


def write_report(directory: str | Path, verdicts: Sequence[Verdict], results: Sequence[CellResult], *,
                 budget: Any, settings: Mapping[str, Any], extra_meta: Mapping[str, Any] | None = None,
                 figures: bool = True) -> dict[str, Path]:
    """Write ``report.md``, ``results.json`` and the figures into ``directory`` (created if needed).

    Returns file name → path. A figure whose data is absent (no untrained cells, a single recipe,
    no baseline) is skipped. ``figures=False`` skips all of them.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    verdicts, results = list(verdicts), list(results)
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    meta = {
        "crlm_bench_version": crlm_bench.__version__,
        "torch_version": _torch_version(),
        "git_commit": _git_commit(),
        "hardware": _hardware(),
    }
    written = _figures(directory, results) if figures else {}
    main = [v for v in verdicts if v.variant == MAIN_VARIANT]
    data = {
        "format": RESULTS_FORMAT,
        "created": created,
        **meta,
        "budget": _budget(budget),
        "settings": jsonable(dict(settings)),
        "extra": jsonable(dict(extra_meta or {})),
        "variants": {"main": MAIN_VARIANT, "robustness": list(ROBUSTNESS_VARIANTS)},
        "counts": {
            "verdicts": len(verdicts), "main": len(main), "main_holds": sum(v.holds for v in main),
            "cells": len(results),
        },  # fmt: skip
        "thresholds": {k: {"value": t.value, "comparison": t.comparison, "text": t.text,
                           "justification": t.justification} for k, t in THRESHOLDS.items()},  # fmt: skip
        "verdicts": [v.to_dict() for v in verdicts],
        "profiles": [r.to_dict() for r in results],
        "figures": sorted(written),
    }
    json_path = directory / RESULTS_JSON
    json_path.write_text(json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False), encoding="utf-8")
    md_path = directory / REPORT_MD
    md_path.write_text(
        render_markdown(verdicts, results, budget=budget, created=created, meta=meta, figures=sorted(written)),
        encoding="utf-8",
    )
    log.info("report written to %s (%d verdicts, %d figures)", directory, len(verdicts), len(written))
    return {REPORT_MD: md_path, RESULTS_JSON: json_path, **written}


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
    """Read a report written by :func:`write_report`."""
    directory = Path(directory)
    md, js = directory / REPORT_MD, directory / RESULTS_JSON
    for path in (md, js):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing; write the report with crlm_bench.replication.report.write_report"
            )
    data = json.loads(js.read_text(encoding="utf-8"))
    return LoadedReport(
        directory, md.read_text(encoding="utf-8"), data,
        tuple(Verdict.from_dict(v) for v in data.get("verdicts", [])),
        tuple(directory / name for name in data.get("figures", [])),
    )  # fmt: skip


def verdict_table(markdown: str) -> list[dict[str, str]]:
    """The rows of the verdict table of a ``report.md`` as dicts keyed by :data:`VERDICT_HEADERS`."""
    lines = markdown.splitlines()
    try:
        start = lines.index(VERDICTS_HEADING)
    except ValueError:
        return []
    table = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            table.append(line)
        elif table or line.startswith("#"):
            break
    rows = []
    for line in table[2:]:  # header and separator
        cells = [_uncell(c) for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        rows.append(dict(zip(VERDICT_HEADERS, cells)))
    return rows


def check_report(directory: str | Path) -> list[str]:
    """Problems with a written report; [] when its files exist and ``report.md`` agrees with
    ``results.json``."""
    directory = Path(directory)
    problems = [f"{name} is missing from {directory}" for name in (REPORT_MD, RESULTS_JSON)
                if not (directory / name).is_file()]  # fmt: skip
    if problems:
        return problems
    try:
        report = load_report(directory)
    except (ValueError, TypeError, KeyError) as exc:
        return [f"{RESULTS_JSON} cannot be read back: {exc}"]
    data = report.results
    for key in ("created", "budget", "settings", "crlm_bench_version", "torch_version", "git_commit", "hardware",
                "verdicts", "profiles", "counts", "figures"):  # fmt: skip
        if key not in data:
            problems.append(f"{RESULTS_JSON} has no {key!r} entry")
    for path in report.figures:
        if not path.is_file():
            problems.append(f"figure {path.name} is listed in {RESULTS_JSON} but missing")
    main = [v for v in report.verdicts if v.variant == MAIN_VARIANT]
    counts = data.get("counts", {})
    if counts.get("verdicts") != len(report.verdicts):
        problems.append(
            f"counts.verdicts is {counts.get('verdicts')} but {RESULTS_JSON} holds {len(report.verdicts)} verdicts"
        )
    if counts.get("main") != len(main):
        problems.append(f"counts.main is {counts.get('main')} but {len(main)} verdicts are of the main variant")
    if counts.get("main_holds") != sum(v.holds for v in main):
        problems.append(
            f"counts.main_holds is {counts.get('main_holds')} but {sum(v.holds for v in main)} main verdicts hold"
        )
    if counts.get("cells") != len(data.get("profiles", [])):
        problems.append(
            f"counts.cells is {counts.get('cells')} but {len(data.get('profiles', []))} profiles are stored"
        )

    rows = report.verdict_table()
    if len(rows) != len(main):
        problems.append(f"{REPORT_MD} has {len(rows)} verdict rows but {RESULTS_JSON} has {len(main)} main verdicts")
    in_md = Counter(tuple(r.get(k) for k in ("claim", "group", "variant", "statistic", "holds")) for r in rows)
    in_json = Counter((v.claim, v.group, v.variant, v.statistic, HOLDS[v.holds]) for v in main)
    for key in sorted(in_json - in_md):
        problems.append(
            f"verdict {key[0]} / {key[1]} ({key[2]}, holds {key[4]}) is in {RESULTS_JSON} but not in the {REPORT_MD} table"
        )
    for key in sorted(in_md - in_json):
        problems.append(
            f"verdict {key[0]} / {key[1]} ({key[2]}, holds {key[4]}) is in the {REPORT_MD} table but not in {RESULTS_JSON}"
        )
    for profile in data.get("profiles", []):
        if f"### {profile.get('cell_id')}" not in report.markdown:
            problems.append(f"profile of {profile.get('cell_id')} is in {RESULTS_JSON} but has no table in {REPORT_MD}")
    return problems
