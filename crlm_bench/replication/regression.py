"""Regressions between two replication runs: which verdicts changed from one ``results.json`` to the next.

A nightly run writes a report (:mod:`crlm_bench.replication.report`); :func:`compare` sets its
``results.json`` beside the previous night's and sorts the main variant's verdicts, matched by
``(claim, group, statistic)``:

- ``regressions``: held before, fail now (a nightly job fails on these);
- ``warnings``: held before, inconclusive now (the data no longer decide: a warning, not a failure);
- ``fixed``: did not hold before, hold now;
- ``shifted``: another change of outcome, between fails and inconclusive;
- ``new``: only in the current run; ``gone``: only in the previous one (a group that could not be
  formed, a claim or budget that changed);
- ``unchanged``: in both with the same outcome.

A verdict's outcome is its ``outcome`` (holds, fails or inconclusive); documents written before
outcomes existed give holds or fails from ``holds``.
- ``drift`` (only with a ``tolerance``): unchanged in outcome, but its value moved by more than
  ``tolerance`` times the previous value (a relative change; a value that became or stopped being
  null drifts by any tolerance). Drift never makes a run fail.

Every verdict in both runs also has its value before and after, and their difference
(:attr:`Change.delta`, :attr:`Change.relative_change`); :meth:`Regression.markdown` lists them all.

The main variant of each run is the one its document names (``variants.main``); the robustness
variants are ignored. A verdict that cannot be evaluated (its value null) fails, as in the report.
:meth:`Regression.markdown` is a summary for a GitHub job summary (``$GITHUB_STEP_SUMMARY``).

A history keeps one line per run (:func:`history_entry`: date, commit, budget and every main
verdict's value and outcome) in a JSON-lines file (:func:`append_history`, :func:`read_history`);
:func:`history_markdown` shows the last runs side by side, so that a trend is visible.

Only the JSON documents are read: no torch, no store.

One module (about 580 lines, above the project's ~500): comparison, its Markdown and the history
read the same JSON documents with the same matching rule.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

log = logging.getLogger(__name__)

__all__ = [
    "KNOWN_FORMATS",
    "Change",
    "HistoryFileError",
    "Regression",
    "ResultsFileError",
    "append_history",
    "compare",
    "history_entry",
    "history_markdown",
    "load_results",
    "read_history",
]

#: ``format`` values of results.json this module reads (report.RESULTS_FORMAT).
KNOWN_FORMATS = (1,)
_HOLDS = {True: "✓", False: "✗", None: "—"}
_MARKS = {"holds": "✓", "fails": "✗", "inconclusive": "?"}

Key = tuple[str, str, str]


class ResultsFileError(ValueError):
    """A results.json that is missing, not JSON, or not a crlm-bench results document."""


class HistoryFileError(ValueError):
    """A history file that is missing or cannot be read or written."""


# ---------------------------------------------------------------------------------------------
# reading


def load_results(path: str | Path) -> dict[str, Any]:
    """The results document at ``path`` (a report's ``results.json``), checked enough to compare.

    Raises :class:`ResultsFileError` naming the file and what is wrong with it.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsFileError(
            f"{path}: no such file; give the results.json of a report (pytest claims/ --report DIR, or "
            "crlm-bench report --out DIR, writes DIR/results.json)"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ResultsFileError(f"{path}: cannot be read ({error})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ResultsFileError(f"{path}: not valid JSON ({error}); is it a complete results.json?") from None
    _main_verdicts(data, str(path))  # validate now, with the file's name in the message
    return data


def _main_variant(data: Any, where: str) -> str:
    if not isinstance(data, Mapping):
        raise ResultsFileError(
            f"{where}: expected a JSON object (a report's results.json), got {type(data).__name__}"
        )
    fmt = data.get("format")
    if fmt is not None and fmt not in KNOWN_FORMATS:
        raise ResultsFileError(
            f"{where}: results format {fmt!r} is not one this crlm_bench reads "
            f"({', '.join(map(str, KNOWN_FORMATS))}); "
            "compare it with the crlm_bench version that wrote it"
        )
    variants = data.get("variants")
    main = variants.get("main") if isinstance(variants, Mapping) else None
    if not isinstance(main, str) or not main:
        raise ResultsFileError(
            f"{where}: no variants.main entry; this is not a crlm-bench results.json (written by "
            "crlm_bench.replication.report.write_report)"
        )
    if not isinstance(data.get("verdicts"), list):
        raise ResultsFileError(f"{where}: no 'verdicts' list; this is not a crlm-bench results.json")
    return main


def _main_verdicts(data: Any, where: str) -> dict[Key, dict[str, Any]]:
    """The main variant's verdicts by (claim, group, statistic). Should one key occur twice (a
    group evaluated twice in a session), it holds only if every occurrence holds."""
    main = _main_variant(data, where)
    out: dict[Key, dict[str, Any]] = {}
    for i, v in enumerate(data["verdicts"]):
        if not isinstance(v, Mapping):
            raise ResultsFileError(f"{where}: verdicts[{i}] is not an object")
        fields = {name: v.get(name) for name in ("claim", "group", "statistic", "variant")}
        bad = [name for name, value in fields.items() if not isinstance(value, str)]
        if bad or not isinstance(v.get("holds"), bool):
            what = ", ".join(bad + ([] if isinstance(v.get("holds"), bool) else ["holds"]))
            raise ResultsFileError(f"{where}: verdicts[{i}] lacks a valid {what}")
        if v["variant"] != main:
            continue
        key = (v["claim"], v["group"], v["statistic"])
        if key in out:
            log.warning("%s: verdict %s [%s] (%s) occurs twice; it holds only if both hold", where, *key)
            if out[key]["holds"] and not v["holds"]:
                out[key] = dict(v)
            continue
        out[key] = dict(v)
    return out


# ---------------------------------------------------------------------------------------------
# comparing


@dataclass(frozen=True)
class Change:
    """One verdict in either run: ``before`` and ``after`` are its JSON objects (None where absent)."""

    claim: str
    group: str
    statistic: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None

    @property
    def key(self) -> Key:
        return (self.claim, self.group, self.statistic)

    @property
    def held(self) -> bool | None:
        """Whether it held in the previous run (None: not there)."""
        return None if self.before is None else _outcome(self.before) == "holds"

    @property
    def holds(self) -> bool | None:
        """Whether it holds in the current run (None: not there)."""
        return None if self.after is None else _outcome(self.after) == "holds"

    @property
    def outcome_before(self) -> str | None:
        """Its outcome in the previous run (None: not there)."""
        return None if self.before is None else _outcome(self.before)

    @property
    def outcome_after(self) -> str | None:
        """Its outcome in the current run (None: not there)."""
        return None if self.after is None else _outcome(self.after)

    @property
    def explanation(self) -> str:
        """The latest explanation of the verdict."""
        latest = self.after if self.after is not None else self.before
        return str(latest.get("explanation") or "")

    @property
    def value_before(self) -> float:
        """The previous run's value (NaN where absent or null)."""
        return _float(self.before)

    @property
    def value_after(self) -> float:
        """The current run's value (NaN where absent or null)."""
        return _float(self.after)

    @property
    def delta(self) -> float:
        """Current value minus previous value (NaN where either is NaN)."""
        return self.value_after - self.value_before

    @property
    def relative_change(self) -> float:
        """``|delta| / |previous value|``: 0 when both values are equal (both NaN included), ∞ when
        the previous value is 0 and the current is not, or when exactly one of them is NaN."""
        before, after = self.value_before, self.value_after
        if math.isnan(before) or math.isnan(after):
            return 0.0 if math.isnan(before) and math.isnan(after) else math.inf
        if after == before:
            return 0.0
        return math.inf if before == 0 else abs(after - before) / abs(before)

    def __str__(self) -> str:
        return f"{self.claim} [{self.group}] ({self.statistic})"


@dataclass(frozen=True)
class Regression:
    """The comparison of a previous run with the current one (see the module docstring)."""

    regressions: tuple[Change, ...]
    fixed: tuple[Change, ...]
    new: tuple[Change, ...]
    gone: tuple[Change, ...]
    unchanged: tuple[Change, ...]
    previous: Mapping[str, Any]
    current: Mapping[str, Any]
    matched: tuple[Change, ...] = ()  # every verdict in both runs, in the current run's order
    drift: tuple[Change, ...] = ()
    tolerance: float | None = None
    warnings: tuple[Change, ...] = ()
    shifted: tuple[Change, ...] = ()

    @property
    def failed(self) -> bool:
        """True when a verdict that held before fails now."""
        return bool(self.regressions)

    @property
    def budgets(self) -> tuple[Any, Any]:
        """The budget names of the previous and the current run."""
        return _budget_name(self.previous), _budget_name(self.current)

    def markdown(self, *, previous_label: str = "previous", current_label: str = "current") -> str:
        """A Markdown summary: the counts, then one table per kind of change."""
        status = (
            f"**{len(self.regressions)} regression{'s' if len(self.regressions) != 1 else ''}** "
            "(held before, fail now)"
            if self.failed
            else "**No regressions**"
        )
        counts = (
            f"{status} · {len(self.warnings)} warning{'s' if len(self.warnings) != 1 else ''} (held before, "
            f"inconclusive now) · {len(self.fixed)} fixed · {len(self.shifted)} between fails and "
            f"inconclusive · {len(self.new)} new · {len(self.gone)} gone · {len(self.unchanged)} unchanged"
        )
        if self.tolerance is not None:
            counts += f" · {len(self.drift)} drift (value moved by more than {_percent(self.tolerance)})"
        lines = [
            "## Replication: changes since the previous run",
            "",
            f"- previous: {_describe(self.previous, previous_label)}",
            f"- current: {_describe(self.current, current_label)}",
            "",
            counts,
            "",
        ]
        before, after = self.budgets
        if before != after:
            lines += [
                f"> Budgets differ ({before} → {after}): groups of one grid are new or gone in the other.",
                "",
            ]
        main_before, main_after = self.previous["variants"]["main"], self.current["variants"]["main"]
        if main_before != main_after:
            lines += [
                f"> Main variants differ ({main_before} → {main_after}); "
                "each run's own main variant is compared.",
                "",
            ]
        both = ["claim", "group", "statistic", "before", "now", "explanation"]
        kinds = (
            ("Regressions", self.regressions),
            ("Warnings: inconclusive now", self.warnings),
            ("Fixed", self.fixed),
            ("Between fails and inconclusive", self.shifted),
        )
        for title, changes in kinds:
            if changes:
                lines += [f"### {title}", "", _table([_row(c) for c in changes], both), ""]
        if self.new:
            rows = [[c.claim, c.group, c.statistic, _verdict_text(c.after), c.explanation] for c in self.new]
            lines += ["### New", "", _table(rows, ["claim", "group", "statistic", "now", "explanation"]), ""]
        if self.gone:
            rows = [[c.claim, c.group, c.statistic, _verdict_text(c.before)] for c in self.gone]
            lines += ["### Gone", "", _table(rows, ["claim", "group", "statistic", "before"]), ""]
        if self.drift:
            lines += [
                f"### Drift (same outcome, value moved by more than {_percent(self.tolerance)})",
                "",
                _table([_delta_row(c) for c in self.drift], _DELTA_HEADERS),
                "",
            ]
        if self.matched:
            flags = {id(c): "regression" for c in self.regressions}
            flags.update({id(c): "fixed" for c in self.fixed})
            flags.update({id(c): "warning" for c in self.warnings})
            flags.update({id(c): "shifted" for c in self.shifted})
            flags.update({id(c): "drift" for c in self.drift})
            rows = [[*_delta_row(c), flags.get(id(c), "")] for c in self.matched]
            lines += ["### Values", "", _table(rows, [*_DELTA_HEADERS, "change"]), ""]
        return "\n".join(lines)


def compare(
    previous: Mapping[str, Any], current: Mapping[str, Any], *, tolerance: float | None = None
) -> Regression:
    """Compare the main variant's verdicts of two results.json documents (see the module docstring).

    With ``tolerance`` (a relative change, e.g. 0.05), verdicts of the same outcome whose value
    moved by more than that are listed as ``drift``. Raises :class:`ResultsFileError` if either is
    not a results document, and :class:`ValueError` for a negative or NaN ``tolerance``.
    """
    if tolerance is not None and not tolerance >= 0:
        raise ValueError(f"tolerance must be a relative change >= 0 (e.g. 0.05 for 5 %), got {tolerance}")
    before = _main_verdicts(previous, "previous results")
    after = _main_verdicts(current, "current results")
    buckets: dict[str, list[Change]] = {
        name: []
        for name in (
            "regressions",
            "warnings",
            "fixed",
            "shifted",
            "new",
            "gone",
            "unchanged",
            "matched",
            "drift",
        )
    }
    for key in [*after, *(k for k in before if k not in after)]:  # the current run's order, then the gone
        change = Change(*key, before.get(key), after.get(key))
        if change.before is None:
            buckets["new"].append(change)
            continue
        if change.after is None:
            buckets["gone"].append(change)
            continue
        buckets["matched"].append(change)
        was, now = change.outcome_before, change.outcome_after
        if was == "holds" and now == "fails":
            buckets["regressions"].append(change)
        elif was == "holds" and now == "inconclusive":
            buckets["warnings"].append(change)
        elif now == "holds" and was != "holds":
            buckets["fixed"].append(change)
        elif was != now:
            buckets["shifted"].append(change)
        else:
            buckets["unchanged"].append(change)
            if tolerance is not None and change.relative_change > tolerance:
                buckets["drift"].append(change)
    return Regression(
        **{name: tuple(changes) for name, changes in buckets.items()},
        previous=previous,
        current=current,
        tolerance=tolerance,
    )


# ---------------------------------------------------------------------------------------------
# history


def history_entry(data: Mapping[str, Any]) -> dict[str, Any]:
    """One run of a history: when, which commit and budget, how many of the main variant's
    verdicts hold, and each one's value and outcome. Raises :class:`ResultsFileError` if ``data``
    is not a results document."""
    verdicts = _main_verdicts(data, "results")
    return {
        "created": data.get("created"),
        "git_commit": data.get("git_commit"),
        "budget": _budget_name(data),
        "main": data["variants"]["main"],
        "held": sum(_outcome(v) == "holds" for v in verdicts.values()),
        "verdicts": [
            [*key, None if math.isnan(_float(v)) else _float(v), bool(v["holds"])]
            for key, v in verdicts.items()
        ],
    }


def append_history(path: str | Path, data: Mapping[str, Any]) -> dict[str, Any]:
    """Append the :func:`history_entry` of ``data`` to the JSON-lines file ``path`` (created if
    missing) in one write, and return it. Raises :class:`HistoryFileError` if it cannot be written."""
    entry = history_entry(data)
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
    except OSError as error:
        raise HistoryFileError(f"{path}: cannot append to it ({error})") from None
    return entry


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """The runs of the history file ``path``, oldest first. A line that is not a history entry (a
    write cut short) is skipped with a warning naming it. Raises :class:`HistoryFileError` if the
    file is missing or unreadable."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise HistoryFileError(
            f"{path}: no such history; start one with crlm-bench history {path} --add RESULTS.json"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise HistoryFileError(f"{path}: cannot be read ({error})") from None
    runs = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            ok = isinstance(entry, dict) and all(
                isinstance(v, list) and len(v) == 5 for v in entry.get("verdicts", None)
            )
        except (json.JSONDecodeError, TypeError):
            ok = False
        if not ok:
            log.warning("%s:%d: not a history entry, skipped", path, number)
            continue
        runs.append(entry)
    return runs


def history_markdown(runs: Sequence[Mapping[str, Any]], *, last: int = 10) -> str:
    """The last ``last`` runs side by side: one row per run (date, commit, budget, verdicts
    held), then each verdict's value and outcome in each of those runs (— where it was not
    formed), newest run last."""
    shown = list(runs)[-last:] if last > 0 else []
    lines = [f"## Replication history: the last {len(shown)} of {len(runs)} runs", ""]
    if not shown:
        return "\n".join(lines)
    rows = [
        [
            i,
            r.get("created") or "unknown",
            str(r.get("git_commit") or "unknown")[:12],
            r.get("budget") or "unknown",
            f"{r.get('held', 0)} of {len(r['verdicts'])}",
        ]
        for i, r in enumerate(shown, 1)
    ]
    lines += [_table(rows, ["run", "created", "commit", "budget", "main verdicts held"]), ""]
    values: dict[Key, list[str]] = {}
    for i, r in enumerate(shown):
        for claim, group, statistic, value, holds in r["verdicts"]:
            cells = values.setdefault((claim, group, statistic), [_HOLDS[None]] * len(shown))
            cells[i] = f"{_number(value)} {_HOLDS[bool(holds)]}"
    rows = [[*key, *cells] for key, cells in values.items()]
    headers = ["claim", "group", "statistic", *(f"run {i}" for i in range(1, len(shown) + 1))]
    lines += [_table(rows, headers), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# formatting


def _budget_name(data: Mapping[str, Any]) -> Any:
    budget = data.get("budget")
    if isinstance(budget, Mapping):
        return budget.get("name")
    return budget


def _describe(data: Mapping[str, Any], label: str) -> str:
    main = data["variants"]["main"]
    verdicts = [v for v in data["verdicts"] if v.get("variant") == main]
    commit = data.get("git_commit")
    parts = [
        f"`{label}`",
        f"budget {_budget_name(data) or 'unknown'}",
        f"created {data.get('created') or 'unknown'}",
        f"commit {commit[:12] if isinstance(commit, str) else 'unknown'}",
        f"{sum(bool(v.get('holds')) for v in verdicts)} of {len(verdicts)} verdicts hold ({main})",
    ]
    return " · ".join(parts)


def _number(x: Any) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, float) and math.isnan(x):
        return "n/a"
    return f"{x:.3g}"


def _verdict_text(v: Mapping[str, Any] | None) -> str:
    if v is None:
        return _HOLDS[None]
    return f"{_number(v.get('value'))} {_MARKS[_outcome(v)]}"


def _outcome(v: Mapping[str, Any]) -> str:
    """holds, fails or inconclusive (from ``holds`` in documents written before outcomes)."""
    found = v.get("outcome")
    if found in _MARKS:
        return str(found)
    return "holds" if v.get("holds") else "fails"


_DELTA_HEADERS = ["claim", "group", "statistic", "before", "now", "Δ", "Δ relative"]


def _float(v: Mapping[str, Any] | None) -> float:
    """A verdict's value as a float: NaN where the verdict or its value is absent or not a number."""
    x = None if v is None else v.get("value")
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return math.nan
    return float(x)


def _percent(x: float | None) -> str:
    if x is None or math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "∞"
    return f"{100 * x:.3g} %"


def _signed(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.3g}"


def _delta_row(c: Change) -> list[str]:
    relative = "n/a" if math.isnan(c.delta) else _percent(c.relative_change)
    return [
        c.claim,
        c.group,
        c.statistic,
        _verdict_text(c.before),
        _verdict_text(c.after),
        _signed(c.delta),
        relative,
    ]


def _row(c: Change) -> list[str]:
    return [c.claim, c.group, c.statistic, _verdict_text(c.before), _verdict_text(c.after), c.explanation]


def _cell(text: Any) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    return tabulate(
        [[_cell(x) for x in row] for row in rows],
        headers=list(headers),
        tablefmt="github",
        disable_numparse=True,
    )
