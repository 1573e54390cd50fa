"""Regressions between two replication runs: which verdicts changed from one ``results.json`` to the next.

A nightly run writes a report (:mod:`crlm_bench.replication.report`); :func:`compare` sets its
``results.json`` beside the previous night's and sorts the main variant's verdicts, matched by
``(claim, group, statistic)``:

- ``regressions``: held before, fail now (a nightly job fails on these);
- ``fixed``: failed before, hold now;
- ``new``: only in the current run; ``gone``: only in the previous one (a group that could not be
  formed, a claim or budget that changed);
- ``unchanged``: in both with the same outcome.

The main variant of each run is the one its document names (``variants.main``); the robustness
variants are ignored. A verdict that cannot be evaluated (its value null) fails, as in the report.
:meth:`Regression.markdown` is a summary for a GitHub job summary (``$GITHUB_STEP_SUMMARY``).

Only the JSON documents are read: no torch, no store.
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

__all__ = ["KNOWN_FORMATS", "Change", "Regression", "ResultsFileError", "compare", "load_results"]

#: ``format`` values of results.json this module reads (report.RESULTS_FORMAT).
KNOWN_FORMATS = (1,)
_HOLDS = {True: "✓", False: "✗", None: "—"}

Key = tuple[str, str, str]


class ResultsFileError(ValueError):
    """A results.json that is missing, not JSON, or not a crlm-bench results document."""


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
        return None if self.before is None else bool(self.before["holds"])

    @property
    def holds(self) -> bool | None:
        """Whether it holds in the current run (None: not there)."""
        return None if self.after is None else bool(self.after["holds"])

    @property
    def explanation(self) -> str:
        """The latest explanation of the verdict."""
        latest = self.after if self.after is not None else self.before
        return str(latest.get("explanation") or "")

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
            f"{status} · {len(self.fixed)} fixed · {len(self.new)} new · {len(self.gone)} gone · "
            f"{len(self.unchanged)} unchanged"
        )
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
        for title, changes in (("Regressions", self.regressions), ("Fixed", self.fixed)):
            if changes:
                lines += [f"### {title}", "", _table([_row(c) for c in changes], both), ""]
        if self.new:
            rows = [[c.claim, c.group, c.statistic, _verdict_text(c.after), c.explanation] for c in self.new]
            lines += ["### New", "", _table(rows, ["claim", "group", "statistic", "now", "explanation"]), ""]
        if self.gone:
            rows = [[c.claim, c.group, c.statistic, _verdict_text(c.before)] for c in self.gone]
            lines += ["### Gone", "", _table(rows, ["claim", "group", "statistic", "before"]), ""]
        return "\n".join(lines)


def compare(previous: Mapping[str, Any], current: Mapping[str, Any]) -> Regression:
    """Compare the main variant's verdicts of two results.json documents (see the module docstring).

    Raises :class:`ResultsFileError` if either is not a results document.
    """
    before = _main_verdicts(previous, "previous results")
    after = _main_verdicts(current, "current results")
    buckets: dict[str, list[Change]] = {
        name: [] for name in ("regressions", "fixed", "new", "gone", "unchanged")
    }
    for key in [*after, *(k for k in before if k not in after)]:  # the current run's order, then the gone
        change = Change(*key, before.get(key), after.get(key))
        if change.before is None:
            buckets["new"].append(change)
        elif change.after is None:
            buckets["gone"].append(change)
        elif change.held and not change.holds:
            buckets["regressions"].append(change)
        elif change.holds and not change.held:
            buckets["fixed"].append(change)
        else:
            buckets["unchanged"].append(change)
    return Regression(
        **{name: tuple(changes) for name, changes in buckets.items()}, previous=previous, current=current
    )


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
    return f"{_number(v.get('value'))} {_HOLDS[bool(v['holds'])]}"


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
