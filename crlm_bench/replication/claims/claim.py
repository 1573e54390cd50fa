"""What a claim is: a statistic over cell results, its thresholds with their reasons, the group of
cells it is judged on, and its prose; and the registry of claims.

Each claim of the paper is one module of this package that builds one :class:`Claim` (two for
gap-tracks-accuracy, whose across-models and along-training parts are judged on different groups)
and registers it in :data:`CLAIMS`. A claim object is called like a function,
``claim(results, statistic="mapc", input_row="knn") -> list[Verdict]``: it groups the results
itself (per cell, per model, per dataset or per training run) and returns one verdict per group it
can form, silently none for the others.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crlm_bench.registry import Registry
from crlm_bench.replication.claims.curves import CellResult, check_variant, unique
from crlm_bench.replication.claims.intervals import Bound, pool, with_intervals
from crlm_bench.replication.claims.verdict import Threshold, Verdict

__all__ = ["CLAIMS", "GROUP_KINDS", "Claim", "Measure", "register"]

#: ``measure(results, statistic, input_row, variant)``: the verdicts of one claim for one variant,
#: from results already made unique by cell id.
Measure = Callable[[Sequence[CellResult], str, str, str], list[Verdict]]

#: The kinds of group a claim is judged on (the claim tests' fixtures, formed in replication.grid).
GROUP_KINDS = ("trained_cell", "model_pair", "dataset_models", "checkpoint_run", "recipe_set")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, or one part of it, as the harness tests it.

    ``name`` is the registry name (``"gap-across-models"``); ``paper_claim`` the paper's claim the
    verdicts are filed under (``"gap-tracks-accuracy"``, the verdicts' ``claim``); ``summary`` its
    one-sentence statement for reports; ``statistic`` what the verdict measures; ``group_kind``
    the group it is judged on (:data:`GROUP_KINDS`); ``thresholds`` its bounds by short name;
    ``bounds`` the statistics its outcome is judged on with their intervals (the first is the
    verdict's value; see :mod:`.intervals`).
    """

    name: str
    paper_claim: str
    summary: str
    statistic: str
    group_kind: str
    thresholds: Mapping[str, Threshold]
    measure: Measure
    bounds: tuple[Bound, ...] = field(default=())
    #: what a verdict gains once, on the measured data but not in each resample of its interval
    #: (a permutation p-value): ``annotate(verdict) -> verdict``
    annotate: Callable[[Verdict], Verdict] | None = None

    def __post_init__(self) -> None:
        if self.group_kind not in GROUP_KINDS:
            raise ValueError(f"claim {self.name!r}: group_kind must be one of {GROUP_KINDS}")

    def __call__(
        self,
        results: Sequence[CellResult],
        *,
        statistic: str = "mapc",
        input_row: str = "knn",
        intervals: bool = True,
    ) -> list[Verdict]:
        """The verdicts on ``results`` (seeds of one network pooled), each with its interval and
        outcome where the results carry per-point values (``intervals=False``: point verdicts)."""
        variant = check_variant(statistic, input_row)
        pooled = pool(unique(results))
        verdicts = self.measure(pooled, statistic, input_row, variant)
        if self.annotate is not None:
            verdicts = [self.annotate(v) for v in verdicts]
        if not intervals:
            return verdicts
        return with_intervals(self.bounds, self.measure, pooled, verdicts, statistic, input_row, variant)

    def verdict(
        self,
        *,
        group: str,
        value: float,
        threshold: str,
        threshold_value: float,
        holds: bool,
        explanation: str,
        variant: str,
        details: Mapping[str, Any],
        paper: tuple[float | None, str | None, Mapping[str, Any]] = (None, None, {}),
    ) -> Verdict:
        """This claim's verdict on ``group``: filed under its paper claim with its statistic.

        ``paper`` is (value, source, details) of the paper's side where the paper gives one; its
        details are added after the measured ones.
        """
        paper_value, paper_source, paper_details = paper
        return Verdict(
            claim=self.paper_claim,
            group=group,
            statistic=self.statistic,
            value=value,
            threshold=threshold,
            threshold_value=threshold_value,
            holds=holds,
            explanation=explanation,
            paper_value=paper_value,
            paper_source=paper_source,
            details={**details, **paper_details},
            variant=variant,
        )

    def threshold_keys(self) -> dict[str, Threshold]:
        """The thresholds under their report names, ``"<paper claim>/<short name>"``."""
        return {f"{self.paper_claim}/{k}": t for k, t in self.thresholds.items()}

    @property
    def where(self) -> str:
        """``file:line`` of the statistic's code, relative to the package's parent directory."""
        fn = inspect.unwrap(self.measure)
        path = Path(inspect.getsourcefile(fn) or "?")
        root = Path(__file__).resolve().parents[3]
        try:
            shown = path.resolve().relative_to(root)
        except ValueError:
            shown = path
        return f"{os.fspath(shown)}:{inspect.getsourcelines(fn)[1]}"


CLAIMS: Registry[Claim] = Registry("claim")


def register(claim: Claim) -> Claim:
    """Add ``claim`` to :data:`CLAIMS` under its name and return it."""
    return CLAIMS.add(claim.name, claim)
