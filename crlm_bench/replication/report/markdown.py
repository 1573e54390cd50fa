"""The text of ``report.md``, in the order a reader wants it: the budget's caveat, one table of
verdicts for the main variant (with whether each verdict survives the robustness variants), the
figures, then one section per claim with its details, the thresholds, the provenance (which torch
threads computed each cell) and one profile table per cell.

Every table line is at most :data:`MAX_LINE` characters: cells are short, prose (explanations,
thresholds' reasons) goes below a table as a list, a wide table is split into several with the
same first column, and a cell still too long is cut with ``…`` (``results.json`` has it whole).

Tables are GitHub Markdown written by :mod:`tabulate`; :func:`uncell` undoes the escaping of
:func:`_cell` for :func:`crlm_bench.replication.report.results.verdict_table`, which reads the
verdict table back.

One module (about 650 lines, above the project's ~500): every section shares the table helpers
and the line limit, and a reader of the report finds its whole text in one place.
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
from crlm_bench.experiment.cell import AUGMENTED_POINTS, DEVIATIONS, MEASUREMENT_CHANGES, PRESETS
from crlm_bench.replication.attribution import attribution_variant, flips
from crlm_bench.replication.claims import (
    MAIN_VARIANT,
    PAPER_ORDER,
    ROBUSTNESS_VARIANTS,
    THRESHOLDS,
    VARIANTS,
    CellResult,
    Verdict,
    fmt,
    jsonable,
    ordered,
    summary,
)
from crlm_bench.replication.claims.verdict import OUTCOME_MARKS
from crlm_bench.replication.report.demonstration import latent_rows
from crlm_bench.replication.report.figures import figure_title
from crlm_bench.replication.report.provenance import NOT_RECORDED, budget_name, threads_summary

__all__ = [
    "FIGURES_HEADING",
    "HOLDS",
    "OUTCOME_MARKS",
    "MAX_LINE",
    "VERDICTS_HEADING",
    "VERDICT_HEADERS",
    "render_markdown",
    "robustness_label",
    "robustness_short",
    "short_group",
    "uncell",
    "verdict_rows",
]

VERDICTS_HEADING = "## Verdicts"
FIGURES_HEADING = "## Figures"
#: The verdict table's columns; ``paper`` is left out when no verdict has a paper value.
VERDICT_HEADERS = ["claim", "group", "measured", "needs", "paper", "result", "robust"]
HOLDS = {True: "✓", False: "✗"}
#: The longest line a table of ``report.md`` may have (about a screen).
MAX_LINE = 120

#: The longest table cell: two such cells still make a line of at most MAX_LINE.
_CLIP = (MAX_LINE - 7) // 2

#: Long words shortened in the verdict table's group column (said below the table).
_ABBREVIATIONS = {"no_regularization": "no_reg"}

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


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 1)] + "…"


def _width(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> int:
    """The length of the longest line of the table :func:`_table` would write (tabulate pads a
    header by two)."""
    widths = [len(h) + 2 for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    return 1 + sum(w + 3 for w in widths)


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str], *, clip: int = _CLIP) -> str:
    """A GitHub table; a cell longer than ``clip`` characters is cut with ``…``."""
    body = [[_clip(_cell(c), clip) for c in row] for row in rows]
    return tabulate(body, headers=list(headers), tablefmt="github", disable_numparse=True)


def _tables(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> list[str]:
    """One table, or several with the same first column when one would be wider than
    :data:`MAX_LINE` (as few as fit, their columns shared out evenly); each followed by a blank
    line."""
    body = [[_clip(_cell(c), _CLIP) for c in row] for row in rows]
    heads = [_clip(h, _CLIP) for h in headers]

    def fits(columns: Sequence[int]) -> bool:
        return _width([[r[i] for i in columns] for r in body], [heads[i] for i in columns]) <= MAX_LINE

    rest = list(range(1, len(heads)))
    chunks: list[list[int]] = []
    for n in range(1, len(rest) + 1):  # the fewest tables whose even shares all fit
        size = -(-len(rest) // n)
        chunks = [rest[i : i + size] for i in range(0, len(rest), size)]
        if all(fits([0, *chunk]) for chunk in chunks):
            break
    out: list[str] = []
    for chunk in chunks or [[]]:
        columns = [0, *chunk]
        out += [_table([[r[i] for i in columns] for r in body], [heads[i] for i in columns]), ""]
    return out


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


def _short_variants() -> dict[str, str]:
    """Robustness variant → its short name in the verdict table: the part that differs from the
    main variant (``sff``, ``pert``)."""
    main_statistic, _ = VARIANTS[0]
    shorter = {"undiluted": "undil", "dimensionless": "dimless"}
    out = {}
    for (statistic, input_row), name in zip(VARIANTS[1:], ROBUSTNESS_VARIANTS):
        out[name] = shorter.get(statistic, statistic) if statistic != main_statistic else input_row[:4]
    return out


SHORT_VARIANTS = _short_variants()


def robustness_label(verdict: Verdict, verdicts: Iterable[Verdict]) -> str:
    """Whether ``verdict``'s outcome (main variant) is the same under the robustness variants:
    ``yes``, ``no (sff/knn-input ?)`` with each differing outcome, or ``n/a`` when no robustness
    variant could be evaluated. Outcomes, not point verdicts: a variant whose interval straddles
    the bound does not confirm a verdict whose interval does not."""
    others = {v.variant: v for v in verdicts if v.key == verdict.key and v.variant in ROBUSTNESS_VARIANTS}
    if not others:
        return "n/a"
    differ = [
        f"{name} {OUTCOME_MARKS[others[name].outcome]}"
        for name in ROBUSTNESS_VARIANTS
        if name in others and others[name].outcome != verdict.outcome
    ]
    missing = [name for name in ROBUSTNESS_VARIANTS if name not in others]
    if differ:
        return f"no ({', '.join(differ)})"
    return "yes" + (f" (no {', '.join(missing)})" if missing else "")


def robustness_short(verdict: Verdict, verdicts: Iterable[Verdict]) -> str:
    """:func:`robustness_label` with the variants' short names (:data:`SHORT_VARIANTS`):
    ``yes``, ``no: sff ✗``, ``n/a``, and ``yes 3/4`` when only some robustness variants could
    be evaluated (a profile measured before a statistic existed)."""
    label = robustness_label(verdict, verdicts)
    if label.startswith("yes (no "):
        missing = label[len("yes (no ") : -1].split(", ")
        total = len(ROBUSTNESS_VARIANTS)
        return f"yes {total - len(missing)}/{total}"
    for name, short in SHORT_VARIANTS.items():
        label = label.replace(name, short)
    return re.sub(r"^no \((.*)\)$", r"no: \1", label).replace(", ", " ")


def short_group(group: str, datasets: Iterable[str]) -> str:
    """``group`` for the verdict table: without its dataset when the report has only one
    (``fashion-mnist-vgg6_narrow-baseline-s0-e8`` → ``vgg6_narrow-baseline-s0-e8``), a group that
    is the dataset itself kept, and ``no_regularization`` written ``no_reg``."""
    datasets = set(datasets)
    out = group
    if len(datasets) == 1:
        (dataset,) = datasets
        for sep in ("-", "/"):
            if group.startswith(dataset + sep):
                out = group[len(dataset) + 1 :]
                break
    for long, short in _ABBREVIATIONS.items():
        out = out.replace(long, short)
    return out


def _short_threshold(threshold: str) -> str:
    """The bound of a verdict's threshold text without its parenthesis: ``≥ 1``."""
    return threshold.split(" (")[0].split(" with ")[0]


def _paper_text(v: Verdict) -> str:
    return "—" if v.paper_value is None else f"≈{_fmt(v.paper_value)}"


def _in_paper_order(verdicts: Iterable[Verdict]) -> list[Verdict]:
    rank = {name: i for i, name in enumerate(PAPER_ORDER)}
    return sorted(verdicts, key=lambda v: rank.get(v.claim, len(rank)))


def _measured(v: Verdict) -> str:
    """The value and, where one was formed, its 95 % interval: ``0.185 [0.147, 0.216]``."""
    interval = v.interval_text()
    return _fmt(v.value) if interval == "—" else f"{_fmt(v.value)} {interval}"


def _marked(v: Verdict | None) -> str:
    """A table cell: the value and its outcome's mark (``0.664 ✗``), or ``—`` without a verdict."""
    return "—" if v is None else f"{_fmt(v.value)} {OUTCOME_MARKS[v.outcome]}"


def verdict_rows(
    verdicts: Sequence[Verdict], datasets: Iterable[str]
) -> tuple[list[str], list[tuple[Verdict, list[str]]]]:
    """The verdict table: its headers and, per main verdict in the paper's order, the verdict and
    its row (the ``paper`` column only when a verdict has a paper value)."""
    main = _in_paper_order(v for v in verdicts if v.variant == MAIN_VARIANT)
    datasets = set(datasets)
    with_paper = any(v.paper_value is not None for v in main)
    headers = [h for h in VERDICT_HEADERS if with_paper or h != "paper"]
    rows = []
    for v in main:
        row = {
            "claim": v.claim,
            "group": short_group(v.group, datasets),
            "measured": _measured(v),
            "needs": _short_threshold(v.threshold),
            "paper": _paper_text(v),
            "result": OUTCOME_MARKS[v.outcome],
            "robust": robustness_short(v, verdicts),
        }
        rows.append((v, [row[h] for h in headers]))
    return headers, rows


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
    caveat: str = "",
    computed: Mapping[str, Any] | None = None,
    demonstrations: Sequence[tuple[str, CellResult]] = (),
) -> str:
    """The text of ``report.md``; ``figures`` are the file names written (PNG and SVG), ``caveat``
    the budget's and ``computed`` the threads and device per cell
    (:func:`~crlm_bench.replication.report.provenance.computed_with`); ``demonstrations`` the
    (change, result) pairs of the attribution's demonstration cells."""
    computed = dict(computed or {})
    datasets = {r.dataset for r in results}
    lines = _header(
        verdicts, results, budget=budget, created=created, meta=meta, caveat=caveat, computed=computed
    )
    lines += _verdict_section(verdicts, datasets)
    lines += _attribution_section(verdicts, demonstrations, datasets)
    lines += _figure_section(figures)

    lines += [
        "## Claims",
        "",
        "Each claim's statistic per group under every variant: the main variant, the robustness "
        "variants and, for the seed-0 cells, each measurement change; beside each value its "
        "outcome (✓ holds, ✗ fails, ? inconclusive: the interval straddles the bound).",
        "",
    ]
    for claim in ordered(v.claim for v in verdicts):
        lines += _claim_section(claim, [v for v in verdicts if v.claim == claim], datasets)

    lines += ["## Thresholds", ""]
    lines += [f"- **{k}** {t.text}: {t.justification}." for k, t in THRESHOLDS.items()] + [""]

    lines += _provenance_section(results, meta=meta, computed=computed)

    lines += ["## Profiles", ""]
    for r in results:
        accuracy = f"test accuracy {_fmt(r.test_accuracy)} · epoch {r.epoch} of {r.epochs}"
        lines += [f"### {r.cell_id}", "", accuracy, ""]
        lines += [_profile_table(r), ""]
    return "\n".join(lines)


def _header(
    verdicts: Sequence[Verdict],
    results: Sequence[CellResult],
    *,
    budget: Any,
    created: str,
    meta: Mapping[str, Any],
    caveat: str,
    computed: Mapping[str, Any],
) -> list[str]:
    """The title, the budget's caveat, the provenance line and the count of holding verdicts."""
    main = [v for v in verdicts if v.variant == MAIN_VARIANT]
    holding = sum(v.outcome == "holds" for v in main)
    undecided = sum(v.outcome == "inconclusive" for v in main)
    commit = meta.get("git_commit")
    name = budget_name(budget)
    caveat = caveat or "no caveat is recorded for this budget; check its conditions before reading on."
    return [
        "# crlm_bench replication report: Kaufman & Azencot, ICML 2023",
        "",
        f"> **Budget {name}.** {caveat}",
        "",
        f"Budget: **{name}** · created {created} · crlm_bench {crlm_bench.__version__}"
        f" · commit {commit[:12] if commit else 'unknown'} · {len(results)} cells"
        f" · torch threads: {threads_summary(computed)}",
        "",
        f"{holding} of {len(main)} verdicts hold under the main variant ({MAIN_VARIANT})"
        + (f", {undecided} inconclusive" if undecided else "")
        + ": a verdict holds (fails) when the 95 % interval of its statistic lies wholly on the holding "
        "(failing) side of its bound, and is inconclusive when the interval straddles the bound.",
        "",
    ]


def _verdict_section(verdicts: Sequence[Verdict], datasets: set[str]) -> list[str]:
    """The verdict table of the main variant, and below it what its short cells stand for."""
    lines = [VERDICTS_HEADING, ""]
    headers, rows = verdict_rows(verdicts, datasets)
    if not rows:
        return [*lines, "(no verdicts: no claim could form a group)", ""]
    body = [row for _, row in rows]
    whole = _table(body, headers, clip=MAX_LINE)  # read back whole: no cut
    if max(len(line) for line in whole.splitlines()) <= MAX_LINE or "robust" not in headers:
        lines += [whole, ""]
    else:  # too wide for a screen: the robustness in a second table, row for row the same verdicts
        keep = [i for i, h in enumerate(headers) if h != "robust"]
        aside = [headers.index(h) for h in ("claim", "group", "robust")]
        for columns in (keep, aside):
            picked = [[row[i] for i in columns] for row in body]
            lines += [_table(picked, [headers[i] for i in columns], clip=MAX_LINE), ""]
    notes = []
    if len(datasets) == 1:
        notes.append(f"All groups are on **{next(iter(datasets))}**; the table leaves the dataset out.")
    abbreviated = [
        f"{s} = {long}" for long, s in _ABBREVIATIONS.items() if any(long in v.group for v, _ in rows)
    ]
    if abbreviated:
        notes.append("In the group column " + ", ".join(abbreviated) + ".")
    short = ", ".join(f"**{s}** = {name}" for name, s in SHORT_VARIANTS.items())
    notes.append(
        "*measured*: the statistic under the main variant and, in brackets, its 95 % interval (a "
        "percentile bootstrap over seeds and points; — where the profiles keep no per-point values); "
        "*needs*: its bound; *result*: the outcome, ✓ holds, ✗ fails, ? inconclusive (the interval "
        "straddles the bound); *robust*: whether the "
        f"outcome is the same under the robustness variants ({short}); `no: sff ?` names the one that "
        "differs and its outcome."
    )
    if "paper" in headers:
        notes.append(
            "*paper*: read from the paper's figures (±10 % on MAPC, ±0.05 on gaps): approximate, never exact."
        )
    lines += [" ".join(notes), ""]
    lines += ["Statistics and full thresholds:", ""]
    seen: dict[tuple[str, str], str] = {}
    for v, _ in rows:
        seen.setdefault((v.claim, v.statistic), v.threshold)
    lines += [
        f"- **{claim}**: {statistic}; holds when {threshold}."
        for (claim, statistic), threshold in seen.items()
    ]
    return [*lines, ""]


ATTRIBUTION_HEADING = "## Attribution"


def _attribution_section(
    verdicts: Sequence[Verdict], demonstrations: Sequence[tuple[str, CellResult]], datasets: set[str]
) -> list[str]:
    """Which measurement choice decides each verdict: the seed-0 verdicts under the default and
    under each change beside the main one, the changes that turn them, then each demonstration
    cell's probes under every measurement (m, radius, MAPC, MAPC · r, the audit's flag)."""
    variants = sorted({v.variant for v in verdicts} - {MAIN_VARIANT, *ROBUSTNESS_VARIANTS})
    if not variants and not demonstrations:
        return []
    lines = [ATTRIBUTION_HEADING, ""]
    if variants:
        default = attribution_variant("")
        variants = [default, *sorted((v for v in variants if v != default), key=_change_order)]
        lines += [
            "Each claim evaluated again on its seed-0 cells, measured the faithful way "
            "(*default*) and under each change the budget names, one at a time, so that a change is "
            "compared with the same seed measured the default way (every column but *main* is "
            "seed 0). *turned by* lists the changes whose outcome differs from the seed-0 "
            "default's. The evaluation variants (‖II‖, undiluted, dimensionless, perturbation "
            "input) are in the verdict table's *robust* column and in each claim's section below.",
            "",
        ]
        same = defaultdict(dict)
        for v in verdicts:
            same[v.key][v.variant] = v
        rows = []
        for v in _in_paper_order(v for v in verdicts if v.variant == MAIN_VARIANT):
            found = same[v.key]
            if not any(name in found for name in variants):
                continue
            cells = [_marked(found.get(n)) for n in variants]
            turned = ", ".join(flips(v, verdicts)) or ("none" if default in found else "—")
            rows.append(
                [
                    f"{v.claim} · {short_group(v.group, datasets)}",
                    _marked(v),
                    *cells,
                    turned,
                ]
            )
        names = [_change_name(v) for v in variants]
        lines += _tables(rows, ["claim · group", "main", *names, "turned by"])
        lines += [
            "*main*: the verdict table's value and outcome (every seed pooled); the changes: "
            + "; ".join(f"**{_change_name(name)}**: {_change_text(name)}" for name in variants[1:])
            + ".",
            "",
        ]
    by_cell: dict[str, list[tuple[str, CellResult]]] = defaultdict(list)
    for change, r in demonstrations:
        by_cell[r.cell_id].append((change, r))
    for cell_id, measured in by_cell.items():
        lines += _demonstration(cell_id, measured)
    return lines


def _change_name(variant: str) -> str:
    """An attribution variant's change alone (``s0 authors`` → ``authors``)."""
    return variant.split(" ", 1)[1]


def _change_order(variant: str) -> tuple[int, str]:
    """Changes in :data:`MEASUREMENT_CHANGES` order (the precision, the deviations, the presets)."""
    name = _change_name(variant)
    return (
        MEASUREMENT_CHANGES.index(name) if name in MEASUREMENT_CHANGES else len(MEASUREMENT_CHANGES),
        name,
    )


def _change_text(variant: str) -> str:
    """What an attribution variant's change does, for the table's caption."""
    change = _change_name(variant)
    if change in PRESETS:
        return "the preset " + ", ".join(
            f"{k} {v}" if k != "deviations" else ", ".join(v) for k, v in PRESETS[change].items()
        )
    if change == "float32":
        return "the curvature fits in float32 instead of float64 (the released code's precision)"
    if change == AUGMENTED_POINTS:
        return "the points and TwoNN samples from the augmented training images, as the released code"
    return DEVIATIONS.get(change, change)


def _demonstration(cell_id: str, measured: Sequence[tuple[str, CellResult]]) -> list[str]:
    """One demonstration cell: per probe its m, then MAPC under each measurement, then the radius
    and MAPC · r under each; a value whose fit the audit flags unresolved is marked †."""
    names = [change or "default" for change, _ in measured]
    frames = [latent_rows(r).set_index("probe") for _, r in measured]
    base = frames[0]

    def value(frame, probe, column: str) -> str:
        if column not in frame or probe not in frame.index:
            return "—"
        text = _fmt(float(frame.at[probe, column]))
        flagged = "unresolved" in frame and bool(frame.at[probe, "unresolved"]) and column != "radius"
        return text + (" †" if flagged else "")

    curvature, scale = [], []
    for probe in base.index:
        m = _fmt(base.at[probe, "m"]) if "m" in base else "—"
        depth = _fmt(float(base.at[probe, "relative_depth"]))
        curvature.append([str(probe), depth, m, *(value(f, probe, "mapc") for f in frames)])
        scale.append(
            [
                str(probe),
                *(value(f, probe, "radius") for f in frames),
                *(value(f, probe, "mapc_dimensionless") for f in frames),
            ]
        )
    lines = [
        f"### Demonstration: {cell_id} under each measurement",
        "",
        "A network no claim tests, measured to show a mechanism on real data: MAPC under each "
        "measurement, then the neighbourhood radius r (the median distance to a point's neighbours "
        "at the probe) and the dimensionless MAPC · r. m is the number of normal directions MAPC is "
        "averaged over (default measurement); † marks a value whose fit the numerical audit flags "
        "unresolved (the quadratic terms are below what the fit's precision resolves).",
        "",
    ]
    lines += _tables(curvature, ["probe", "depth", "m", *(f"MAPC {n}" for n in names)])
    lines += _tables(scale, ["probe", *(f"r {n}" for n in names), *(f"MAPC·r {n}" for n in names)])
    return lines


def _figure_section(figures: Sequence[str]) -> list[str]:
    """Each PNG with its title, and a link to its SVG twin."""
    pngs = [f for f in figures if f.endswith(".png")]
    if not pngs:
        return []
    lines = [
        FIGURES_HEADING,
        "",
        "Each figure is also an SVG beside its PNG; verdicts and thresholds are on it.",
        "",
    ]
    for name in pngs:
        svg = name[: -len(".png")] + ".svg"
        lines += [f"### {figure_title(name)}", "", f"![{name}]({name})", ""]
        if svg in figures:
            lines += [f"[{svg}]({svg})", ""]
    return lines


def _claim_section(claim: str, verdicts: Sequence[Verdict], datasets: set[str]) -> list[str]:
    """One claim: its prose, per statistic a row per group with the value under every variant and
    the explanations below, the paper's sources and the main variant's details."""
    lines = [f"### {claim}", "", summary(claim), ""]
    variants = list(dict.fromkeys([MAIN_VARIANT, *ROBUSTNESS_VARIANTS, *(v.variant for v in verdicts)]))
    by_key: dict[tuple, dict[str, Verdict]] = defaultdict(dict)
    for v in verdicts:
        by_key[v.key][v.variant] = v
    for statistic in dict.fromkeys(key[2] for key in by_key):
        keys = [key for key in by_key if key[2] == statistic]
        first = next(iter(by_key[keys[0]].values()))
        lines += [f"Statistic: {statistic}; holds when {first.threshold}.", ""]
        rows, explained = [], []
        for key in keys:
            per_variant = by_key[key]
            cells = [_marked(per_variant.get(n)) for n in variants]
            rows.append([short_group(key[1], datasets), *cells])
            main = per_variant.get(MAIN_VARIANT) or next(iter(per_variant.values()))
            explained.append(f"- {key[1]}: {main.explanation}")
        lines += _tables(rows, ["group", *variants])
        lines += [*explained, ""]
    sources = sorted({v.paper_source for v in verdicts if v.paper_source})
    if sources:
        lines += ["Paper values: " + "; ".join(sources) + ".", ""]
    lines += _details_sections(
        claim, [v for v in verdicts if v.variant == MAIN_VARIANT and v.details], datasets
    )
    return lines


def _details_sections(claim: str, verdicts: Sequence[Verdict], datasets: set[str]) -> list[str]:
    """The main variant's details: one table (a row per group, split when wide) per statistic when
    the details are flat, a boolean ``x_holds`` shown as a mark beside ``x``; else one
    figure/value table per verdict."""
    lines: list[str] = []
    for statistic in dict.fromkeys(v.statistic for v in verdicts):
        these = [v for v in verdicts if v.statistic == statistic]
        if all(not isinstance(x, (Mapping, list, tuple)) for v in these for x in v.details.values()):
            keys = list(dict.fromkeys(k for v in these for k in v.details))
            marked = {k for k in keys if f"{k}_holds" in keys}
            keys = [k for k in keys if not (k.endswith("_holds") and k[: -len("_holds")] in marked)]
            rows = []
            for v in these:
                row = [short_group(v.group, datasets)]
                for k in keys:
                    text = _fmt(v.details.get(k))
                    if k in marked and v.details.get(f"{k}_holds") is not None:
                        text += f" {_fmt(v.details[f'{k}_holds'])}"
                    row.append(text)
                rows.append(row)
            lines += [f"#### {claim}: details ({statistic})", ""]
            lines += _tables(rows, ["group", *keys])
            continue
        for v in these:
            lines += [f"#### {claim} · {v.group}: details", ""]
            lines += [_table([[k, _fmt(x)] for k, x in _flatten(v.details)], ["figure", "value"]), ""]
    return lines


def _provenance_section(
    results: Sequence[CellResult], *, meta: Mapping[str, Any], computed: Mapping[str, Any]
) -> list[str]:
    """Versions, hardware, and the torch threads and device that trained and profiled each cell."""
    hardware = meta.get("hardware") or {}
    lines = [
        "## Provenance",
        "",
        f"- crlm_bench {crlm_bench.__version__}, torch {meta.get('torch_version') or 'unknown'}, "
        f"commit {meta.get('git_commit') or 'unknown'}",
        f"- hardware: {hardware.get('platform', 'unknown')}, {hardware.get('cpu_count', '?')} CPUs, "
        f"Python {hardware.get('python', '?')}, CUDA device {hardware.get('cuda_device') or 'none'} "
        "(of the process that wrote this report)",
        f"- torch threads that computed the cells: {threads_summary(dict(computed))}",
        "",
    ]

    def text(entry: Mapping[str, Any]) -> str:
        threads, device = entry.get("threads", NOT_RECORDED), entry.get("device", NOT_RECORDED)
        if threads == NOT_RECORDED and device == NOT_RECORDED:
            return NOT_RECORDED
        return f"{threads} thread{'s' if threads != 1 else ''} on {device}"

    rows = [
        [r.cell_id, text(computed[r.cell_id]["training"]), text(computed[r.cell_id]["profile"])]
        for r in results
        if r.cell_id in computed
    ]
    if rows and all(row[1] == row[2] == NOT_RECORDED for row in rows):
        lines += [
            f"The store records no thread count or device for any of the {len(rows)} cells: they were "
            "computed before crlm_bench recorded them (results.json says so per cell).",
            "",
        ]
    elif rows:
        lines += _tables(rows, ["cell", "trained with", "profiled with"])
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
                _fmt(row.get("m")),
                _fmt(float(row["mapc"])),
                _fmt(row.get("nmapc")),
                _fmt(row.get("sff_norm_median")),
            ]
        )
    return _table(rows, ["probe", "relative depth", "d", "m", "MAPC", "NMAPC", "sff_norm_median"])
