"""Thresholds and verdicts: what a claim statistic must meet, and the record of whether it did.

A :class:`Threshold` is a bound with its reason; a :class:`Verdict` is one claim's statistic on one
group (a cell, a model, a dataset or a training run) under one evaluation variant. Both are
frozen and JSON-able (:func:`jsonable`), so a report can be written and read back unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "BOUND_RTOL",
    "OUTCOMES",
    "OUTCOME_MARKS",
    "INPUT_ROWS",
    "MAIN_VARIANT",
    "ROBUSTNESS_VARIANTS",
    "VARIANTS",
    "Threshold",
    "Verdict",
    "fmt",
    "jsonable",
    "variant_name",
]

#: How the input probe's neighbourhoods were built (profile column ``neighbourhood``).
INPUT_ROWS = ("knn", "perturbation")


def variant_name(statistic: str, input_row: str) -> str:
    """``"mapc/knn-input"``: the name of an evaluation variant."""
    return f"{statistic}/{input_row}-input"


#: (statistic, input row) of the main variant, then of the robustness variants.
VARIANTS: tuple[tuple[str, str], ...] = (
    ("mapc", "knn"),
    ("sff", "knn"),
    ("mapc", "perturbation"),
    ("undiluted", "knn"),
    ("dimensionless", "knn"),
)
MAIN_VARIANT = variant_name(*VARIANTS[0])
ROBUSTNESS_VARIANTS = tuple(variant_name(*v) for v in VARIANTS[1:])


#: The relative distance within which a statistic is on its threshold's bound. A statistic that
#: equals the bound in exact arithmetic can miss it by an ulp in floating point: Spearman's ρ of four
#: models with one neighbouring pair swapped is 0.8, computed as 0.7999999999999999, and Pearson's r
#: of five checkpoints with one swap is 0.9, computed as 0.8999999999999999; both must get the
#: verdict documented for the bound itself.
BOUND_RTOL = 1e-12


@dataclass(frozen=True)
class Threshold:
    """A bound a statistic must meet: ``value`` with ``comparison`` (``>=``, ``>``, ``<=``, ``<``)."""

    value: float
    comparison: str
    justification: str
    unit: str = ""

    _SYMBOLS = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}

    def __post_init__(self) -> None:
        if self.comparison not in self._SYMBOLS:
            raise ValueError(
                f"Threshold.comparison must be one of {', '.join(self._SYMBOLS)}, got {self.comparison!r}"
            )

    def check(self, x: float) -> bool:
        """Whether ``x`` meets the bound; NaN never does. A value within :data:`BOUND_RTOL` of the
        bound is on it: it meets ``>=`` and ``<=`` and fails ``>`` and ``<``."""
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return False
        if math.isclose(x, self.value, rel_tol=BOUND_RTOL):  # on the bound
            return self.comparison in (">=", "<=")
        return bool(x > self.value if self.comparison.startswith(">") else x < self.value)

    @property
    def text(self) -> str:
        return f"{self._SYMBOLS[self.comparison]} {self.value:g}{self.unit}"


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars as Python numbers, tuples as lists and NaN/±inf as None."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    return str(obj)


def fmt(x: Any) -> str:
    """A value for prose and tables: floats to three significant digits, ``n/a`` for None and NaN,
    ``∞`` for infinities; integers, booleans and other objects print as themselves."""
    if x is None:
        return "n/a"
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        if math.isnan(x):
            return "n/a"
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        return f"{x:.3g}"
    return str(x)


#: The three-valued verdicts, as ``Verdict.outcome`` spells them (see ``uncertainty.outcome``).
OUTCOMES = ("holds", "fails", "inconclusive")
#: The mark of each outcome in tables and on figures (inconclusive: the interval straddles the bound).
OUTCOME_MARKS = {"holds": "✓", "fails": "✗", "inconclusive": "?"}


@dataclass(frozen=True)
class Verdict:
    """Whether one claim holds for one group (a cell, model, dataset or training run).

    ``holds`` is the point verdict: the statistic as measured (``value``) against its threshold.
    ``outcome`` is the verdict with its uncertainty (:data:`OUTCOMES`): ``holds`` or ``fails``
    when the 95 % bootstrap ``interval`` ([low, high] of the statistic, over seeds and points) lies
    on one side of the threshold, ``inconclusive`` when it straddles it or is undefined. A verdict
    formed without an interval (``interval`` None) has the point verdict as its outcome.
    """

    claim: str
    group: str
    statistic: str
    value: float
    threshold: str
    threshold_value: float
    holds: bool
    explanation: str
    paper_value: float | None = None
    paper_source: str | None = None
    details: dict[str, Any] = field(default_factory=dict, hash=False)
    variant: str = MAIN_VARIANT
    outcome: str = ""
    interval: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not self.outcome:
            object.__setattr__(self, "outcome", "holds" if self.holds else "fails")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"Verdict.outcome must be one of {OUTCOMES}, got {self.outcome!r}")
        if self.interval is not None:
            low, high = (math.nan if v is None else float(v) for v in self.interval)
            object.__setattr__(self, "interval", (low, high))

    @property
    def inconclusive(self) -> bool:
        return self.outcome == "inconclusive"

    def interval_text(self) -> str:
        """``[low, high]`` of the statistic's 95 % interval, or "—" where none was formed."""
        if self.interval is None or all(math.isnan(x) for x in self.interval):
            return "—"
        return f"[{fmt(self.interval[0])}, {fmt(self.interval[1])}]"

    @property
    def key(self) -> tuple[str, str, str]:
        """(claim, group, statistic): the same test under every variant."""
        return (self.claim, self.group, self.statistic)

    @property
    def evaluable(self) -> bool:
        return not (isinstance(self.value, float) and math.isnan(self.value))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: NaN and infinities become None."""
        return jsonable({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"Verdict.from_dict: unknown keys {sorted(unknown)}; expected {sorted(names)}")
        data = dict(data)
        for key in ("value", "threshold_value"):
            data[key] = math.nan if data.get(key) is None else float(data[key])
        return cls(**data)
