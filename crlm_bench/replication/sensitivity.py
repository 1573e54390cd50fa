"""How much the verdicts depend on the measurement's size: the budget re-measured under a few
settings (points × toggles), each claim's outcome under each, and a stability table.

A setting replaces the points and the toggles of every cell's measurement and nothing else, so the
training runs are the budget's own (read from the store) and only the profiles are measured again;
the budget's own setting is one of them when it is in the grid. The table gives, per claim test
(claim, group, statistic), its outcome under each setting and the fraction of settings under
which it holds; per claim, the fraction over all its tests and settings. An inconclusive outcome
is not a hold.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from crlm_bench.experiment.cell import Cell
from crlm_bench.experiment.pipeline import Context, ensure_profile
from crlm_bench.experiment.store import Store
from crlm_bench.replication.budgets import Budget
from crlm_bench.replication.claims import MAIN_VARIANT, PAPER_ORDER, Verdict
from crlm_bench.replication.grid import evaluate_budget
from crlm_bench.replication.session import StoredResults

__all__ = [
    "DEFAULT_POINTS",
    "DEFAULT_TOGGLES",
    "Setting",
    "Stability",
    "at_setting",
    "measure_settings",
    "stability",
]

#: the issue's grid: 100 and 300 points, 5 and 7 toggles (31 and 127 neighbours)
DEFAULT_POINTS = (100, 300)
DEFAULT_TOGGLES = (5, 7)
_MARK = {"holds": "✓", "fails": "✗", "inconclusive": "?"}


@dataclass(frozen=True)
class Setting:
    """One measurement size: points measured and toggles (2^toggles − 1 neighbours)."""

    points: int
    toggles: int

    @property
    def label(self) -> str:
        return f"{self.points} pts, {self.toggles} toggles"


def settings_grid(
    points: Sequence[int] = DEFAULT_POINTS, toggles: Sequence[int] = DEFAULT_TOGGLES
) -> list[Setting]:
    """Every combination, points outermost."""
    return [Setting(p, t) for p in points for t in toggles]


def _cell_at(cell: Cell, setting: Setting) -> Cell:
    m = dataclasses.replace(cell.measurement, points=setting.points, toggles=setting.toggles)
    return dataclasses.replace(cell, measurement=m)


def at_setting(budget: Budget, setting: Setting) -> Budget:
    """``budget`` with every claim cell measured at ``setting`` (its training runs unchanged),
    without its attribution: the stability of the verdicts is asked of the default measurement."""
    return dataclasses.replace(
        budget,
        cells=tuple(_cell_at(c, setting) for c in budget.cells),
        checkpoint_runs=tuple(tuple(_cell_at(c, setting) for c in run) for run in budget.checkpoint_runs),
        changes=(),
        demonstrations=(),
        demonstration_changes=(),
    )


def measure_settings(
    budget: Budget,
    store: Store,
    settings: Sequence[Setting],
    ctx: Context | None = None,
    *,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[Setting, list[Verdict]]:
    """The verdicts of ``budget`` under each setting; profiles missing from ``store`` are measured
    (and their training runs trained, if missing) first."""
    ctx = Context() if ctx is None else ctx
    out = {}
    for i, setting in enumerate(settings, 1):
        b = at_setting(budget, setting)
        cells = b.claim_cells()
        for j, cell in enumerate(cells, 1):
            progress(f"setting {i}/{len(settings)} ({setting.label}): cell {j}/{len(cells)} {cell.id}")
            ensure_profile(cell, store, ctx)
        verdicts, skipped = evaluate_budget(b, StoredResults(store))
        if skipped:  # every cell was just ensured: a group left out is a bug, not a missing cell
            raise RuntimeError(f"groups left out at {setting.label}: {', '.join(skipped)}")
        out[setting] = verdicts
    return out


@dataclass(frozen=True)
class Stability:
    """Per claim test, its outcome under each setting; see :func:`stability`."""

    settings: tuple[Setting, ...]
    #: (claim, group, statistic) → outcome per setting (None: no verdict under that setting)
    tests: dict[tuple[str, str, str], tuple[str | None, ...]]

    def fraction(self, key: tuple[str, str, str]) -> float:
        """The fraction of settings under which the test holds."""
        outcomes = self.tests[key]
        return sum(o == "holds" for o in outcomes) / len(outcomes)

    def per_claim(self) -> dict[str, float]:
        """Per claim, the fraction of (test, setting) pairs that hold, in the paper's order."""
        out: dict[str, list[str | None]] = {}
        for (claim, _, _), outcomes in self.tests.items():
            out.setdefault(claim, []).extend(outcomes)
        rank = {c: i for i, c in enumerate(PAPER_ORDER)}
        return {
            c: sum(o == "holds" for o in v) / len(v)
            for c, v in sorted(out.items(), key=lambda kv: rank.get(kv[0], 99))
        }

    def markdown(self) -> str:
        labels = [s.label for s in self.settings]
        rows = [
            [
                claim,
                group,
                *(_MARK.get(o, "—") for o in outcomes),
                f"{self.fraction((claim, group, stat)):.0%}",
            ]
            for (claim, group, stat), outcomes in self.tests.items()
        ]
        summary = [[claim, f"{f:.0%}"] for claim, f in self.per_claim().items()]
        return "\n".join(
            [
                "# Sensitivity of the verdicts to the measurement's size",
                "",
                f"Main variant ({MAIN_VARIANT}); ✓ holds, ✗ fails, ? inconclusive (95 % interval across the "
                "bound), — no verdict. An inconclusive outcome does not count as a hold.",
                "",
                "## Per claim: fraction of (test, setting) pairs that hold",
                "",
                tabulate(summary, headers=["claim", "holds"], tablefmt="github", disable_numparse=True),
                "",
                "## Per test",
                "",
                tabulate(
                    rows,
                    headers=["claim", "group", *labels, "holds"],
                    tablefmt="github",
                    disable_numparse=True,
                ),
                "",
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": MAIN_VARIANT,
            "settings": [dataclasses.asdict(s) for s in self.settings],
            "per_claim": self.per_claim(),
            "tests": [
                {
                    "claim": claim,
                    "group": group,
                    "statistic": stat,
                    "outcomes": list(outcomes),
                    "fraction_holding": self.fraction((claim, group, stat)),
                }
                for (claim, group, stat), outcomes in self.tests.items()
            ],
        }

    def write(self, directory: str | Path) -> Path:
        """``sensitivity.md`` and ``sensitivity.json`` in ``directory`` (created); returns the first."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "sensitivity.json").write_text(
            json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"
        )
        path = directory / "sensitivity.md"
        path.write_text(self.markdown(), encoding="utf-8")
        return path


def stability(per_setting: dict[Setting, list[Verdict]]) -> Stability:
    """The outcomes of the main variant's verdicts, test by test, across the settings."""
    settings = tuple(per_setting)
    keys: dict[tuple[str, str, str], None] = {}
    found: dict[tuple[Setting, tuple[str, str, str]], str] = {}
    for setting, verdicts in per_setting.items():
        for v in verdicts:
            if v.variant != MAIN_VARIANT:
                continue
            keys.setdefault(v.key, None)
            found[(setting, v.key)] = v.outcome
    rank = {c: i for i, c in enumerate(PAPER_ORDER)}
    ordered = sorted(keys, key=lambda k: rank.get(k[0], len(rank)))
    return Stability(settings, {k: tuple(found.get((s, k)) for s in settings) for k in ordered})
