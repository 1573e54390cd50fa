"""From a stored profile to what the claims read: a cell's result and the curve of one curvature
statistic along its probes.

A :class:`CellResult` is one cell's profile (a frame of
:data:`crlm_bench.experiment.probing.PROFILE_COLUMNS` plus ``cell`` and ``test_accuracy``) with
the cell's names. A :class:`Curve` is one statistic along the latent probes in forward order, with
the input probe's value measured one way or the other (``knn``, the paper's, or ``perturbation``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from crlm_bench.experiment.cell import UNTRAINED, Cell
from crlm_bench.registry import Registry
from crlm_bench.replication.claims.statistics import curvature_gap, normalise
from crlm_bench.replication.claims.verdict import INPUT_ROWS, jsonable, variant_name

__all__ = [
    "STATISTICS",
    "CellResult",
    "Curve",
    "CurvatureStatistic",
    "ProfileColumns",
    "ProfileError",
    "check_variant",
    "curve_or_none",
    "final_trained",
    "profile_curve",
    "unique",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CurvatureStatistic:
    """A per-probe curvature column of a profile and its names (raw and normalised by its mean)."""

    name: str
    column: str
    label: str
    normalised_label: str
    description: str


STATISTICS: Registry[CurvatureStatistic] = Registry("curvature statistic")
STATISTICS.add(
    "mapc",
    CurvatureStatistic(
        "mapc",
        "mapc",
        "MAPC",
        "NMAPC",
        "mean absolute principal curvature (the paper's), diluted by the number of normal directions m",
    ),
)
STATISTICS.add(
    "sff",
    CurvatureStatistic(
        "sff",
        "sff_norm_median",
        "SFF",
        "NSFF",
        "median norm of the second fundamental form over the points (sff_norm_median), dilution-free",
    ),
)
STATISTICS.add(
    "undiluted",
    CurvatureStatistic(
        "undiluted",
        "mapc_undiluted",
        "m·MAPC",
        "N(m·MAPC)",
        "MAPC times the number of normal directions m: the mean over tangent directions of the summed "
        "absolute curvature of every normal direction, so a probe with few normals (the logits) is not "
        "favoured by the average over them",
    ),
)
STATISTICS.add(
    "dimensionless",
    CurvatureStatistic(
        "dimensionless",
        "mapc_dimensionless",
        "MAPC·r",
        "N(MAPC·r)",
        "each point's MAPC times its neighbourhood radius r (the median distance to its neighbours in "
        "the probe's space), averaged over the points: curvature in units of the neighbourhood's own "
        "size, comparable across layers and networks whose representations have different scales",
    ),
)


class ProfileError(ValueError):
    """A profile that cannot give the curve a claim needs (missing column, row or probes)."""


_REQUIRED_COLUMNS = ("probe", "depth", "relative_depth", "mapc")


@dataclass(frozen=True)
class CellResult:
    """One cell's profile with its names: what the claims read."""

    cell_id: str
    dataset: str
    model: str
    recipe: str
    seed: int
    epoch: int
    epochs: int
    test_accuracy: float
    profile: pd.DataFrame = field(compare=False, repr=False)
    #: the per-point values behind the profile's rows (``probing.POINT_COLUMNS``), None where the
    #: store has none (profiles of format 1, frames built by hand): then no interval can be formed
    points: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    #: the measurement preset that measured the profile ("" for the faithful default): results of
    #: another preset are demonstrations beside the claims, never part of a claim's group
    preset: str = ""
    #: the seeds a pooled result is the mean of (``intervals.pool``); empty for one seed as measured
    replicas: tuple[CellResult, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.profile, pd.DataFrame):
            raise TypeError(
                f"CellResult.profile must be a pandas DataFrame (a profile from "
                f"crlm_bench.experiment.probing.measure), got {type(self.profile).__name__}"
            )
        missing = [c for c in _REQUIRED_COLUMNS if c not in self.profile.columns]
        if missing:
            raise ValueError(
                f"the profile of {self.cell_id} lacks the columns {missing}; pass the frame written by "
                "the pipeline (probing.PROFILE_COLUMNS plus 'cell' and 'test_accuracy')"
            )

    @classmethod
    def from_profile(
        cls,
        cell: Any,
        frame: pd.DataFrame,
        *,
        test_accuracy: float | None = None,
        points: pd.DataFrame | None = None,
        preset: str = "",
    ) -> CellResult:
        """The result of ``cell`` (a Cell, anything with its attributes, or a cell id string).

        ``test_accuracy`` defaults to the frame's ``test_accuracy`` column (NaN without one);
        ``points`` are the profile's per-point values where stored; ``preset`` names the
        measurement preset ("" for the default).
        """
        if isinstance(cell, str):
            cell = Cell.parse(cell)
        try:
            t = cell.training
            names = (cell.id, t.dataset, t.model, t.recipe, int(t.seed), int(cell.at), int(t.epochs))
        except AttributeError as exc:
            raise TypeError(
                "CellResult.from_profile expects a Cell (or an object with .id, .at and .training."
                f"dataset/model/recipe/seed/epochs) or a cell id string; {exc}"
            ) from None
        if test_accuracy is None:
            test_accuracy = math.nan
            if "test_accuracy" in frame.columns:
                values = frame["test_accuracy"].dropna()
                if len(values):
                    test_accuracy = float(values.iloc[0])
        return cls(*names, float(test_accuracy), frame.copy(), points, preset)

    @property
    def trained(self) -> bool:
        return self.recipe != UNTRAINED

    @property
    def final(self) -> bool:
        """Whether this is the training run's last checkpoint (always true for untrained cells)."""
        return self.epoch == self.epochs

    @property
    def run(self) -> tuple[str, str, str, int, int]:
        """(dataset, model, recipe, seed, epochs): the training run this checkpoint belongs to."""
        return (self.dataset, self.model, self.recipe, self.seed, self.epochs)

    def curve(self, statistic: str = "mapc", input_row: str | None = "knn") -> Curve:
        return profile_curve(self.profile, statistic, input_row)

    def to_dict(self) -> dict[str, Any]:
        skip = ("profile", "points", "replicas")
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        out["profile"] = self.profile.to_dict("records")
        return jsonable(out)


@dataclass(frozen=True)
class Curve:
    """One statistic along a network's probes: the chosen input row (if any) and the latent probes
    in forward order."""

    statistic: str
    input_row: str | None
    input_value: float | None
    probes: tuple[str, ...]  # latent probes
    relative_depth: tuple[float, ...]
    values: tuple[float, ...]
    ids: tuple[float, ...]

    @property
    def first_latent(self) -> float:
        return self.values[0]

    @property
    def last(self) -> float:
        return self.values[-1]

    @property
    def penultimate(self) -> float:
        return self.values[-2]

    @property
    def plateau(self) -> tuple[float, ...]:
        """The latent probes before the last two."""
        return self.values[:-2]

    def with_input(self) -> tuple[float, ...]:
        if self.input_value is None:
            raise ProfileError(
                "this curve was built without an input row; pass input_row='knn' or 'perturbation'"
            )
        return (self.input_value, *self.values)

    @property
    def normalised(self) -> tuple[float, ...]:
        """The statistic over its mean over all probes, input included (NMAPC for MAPC)."""
        return normalise(self.with_input())[1:]

    @property
    def gap(self) -> float:
        return curvature_gap(self.with_input())


def _check_choice(what: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; use one of {', '.join(map(repr, choices))}")


def profile_curve(profile: pd.DataFrame, statistic: str = "mapc", input_row: str | None = "knn") -> Curve:
    """The curve of ``statistic`` (a name in :data:`STATISTICS`) along ``profile``'s probes.

    ``input_row`` picks the input probe's row by its ``neighbourhood`` (``"knn"``, the paper's, or
    ``"perturbation"``); ``None`` builds the latent curve only. Raises :class:`ProfileError` when
    that row, the statistic's column, or two latent probes are missing.
    """
    return ProfileColumns.of(profile).curve(statistic, input_row)


@dataclass(frozen=True)
class ProfileColumns:
    """The columns of a profile that curves read, as numpy arrays in the frame's row order.

    Read once from a frame (:meth:`of`), they give every curve of it (:meth:`curve`); the
    bootstrap of a verdict builds thousands of curves from one profile whose statistic column
    alone changes per resample (:meth:`with_values`), without a frame each time.
    """

    depth: np.ndarray
    probe: np.ndarray
    relative_depth: np.ndarray
    neighbourhood: np.ndarray | None
    values: dict[str, np.ndarray]  # the statistics' columns and ``id_mean``, where the frame has them

    @classmethod
    def of(cls, profile: pd.DataFrame) -> ProfileColumns:
        names = {s.column for s in STATISTICS.values()} | {"id_mean"}
        return cls(
            depth=profile["depth"].to_numpy(),
            probe=profile["probe"].to_numpy(),
            relative_depth=profile["relative_depth"].to_numpy(dtype=float),
            neighbourhood=profile["neighbourhood"].to_numpy() if "neighbourhood" in profile.columns else None,
            values={c: profile[c].to_numpy(dtype=float) for c in profile.columns if c in names},
        )

    def with_values(self, values: dict[str, np.ndarray]) -> ProfileColumns:
        """These columns with ``values`` (column → one value per row) in place of theirs."""
        return replace(self, values={**self.values, **values})

    def curve(self, statistic: str = "mapc", input_row: str | None = "knn") -> Curve:
        """The curve of ``statistic`` along these probes (see :func:`profile_curve`)."""
        stat = STATISTICS.get(statistic)
        if input_row is not None:
            _check_choice("input row", input_row, INPUT_ROWS)
        if stat.column not in self.values:
            raise ProfileError(f"the profile has no column {stat.column!r} for the statistic {statistic!r}")
        depth = self.depth
        order = np.argsort(depth, kind="stable")
        latent = order[depth[order] > 0]
        if len(latent) < 2:
            raise ProfileError(f"the profile has {len(latent)} latent probes; the claims need at least two")
        values = self.values[stat.column]
        input_value = None
        if input_row is not None:
            inputs = order[depth[order] == 0]
            if self.neighbourhood is not None:
                inputs = inputs[self.neighbourhood[inputs] == input_row]
            if len(inputs) == 0:
                raise ProfileError(
                    f"the profile has no input row measured with {input_row!r} neighbourhoods; "
                    "profile with Measurement(input_probe='both') to evaluate this variant"
                )
            input_value = float(values[inputs[0]])
        ids = self.values.get("id_mean")
        return Curve(
            statistic=statistic,
            input_row=input_row,
            input_value=input_value,
            probes=tuple(str(p) for p in self.probe[latent]),
            relative_depth=tuple(float(x) for x in self.relative_depth[latent]),
            values=tuple(float(x) for x in values[latent]),
            ids=tuple(math.nan for _ in latent) if ids is None else tuple(float(x) for x in ids[latent]),
        )


def check_variant(statistic: str, input_row: str) -> str:
    """The variant's name; raises for an unknown statistic or input row."""
    STATISTICS.get(statistic)
    _check_choice("input row", input_row, INPUT_ROWS)
    return variant_name(statistic, input_row)


def curve_or_none(result: CellResult, statistic: str, input_row: str | None) -> Curve | None:
    """The result's curve, or None (logged) when its profile cannot give it."""
    try:
        return result.curve(statistic, input_row)
    except ProfileError as exc:
        log.debug("%s skipped for %s: %s", result.cell_id, variant_name(statistic, str(input_row)), exc)
        return None


def unique(results: Iterable[CellResult]) -> list[CellResult]:
    """The results with the first of each cell id (ids name the network, not the measurement)."""
    seen: dict[str, CellResult] = {}
    for r in results:
        if r.cell_id in seen:
            log.warning(
                "two results share the cell id %s (cells differing only in measurement or overrides); "
                "the claims use the first: evaluate one budget at a time",
                r.cell_id,
            )
            continue
        seen[r.cell_id] = r
    return list(seen.values())


def final_trained(results: Iterable[CellResult]) -> list[CellResult]:
    """The final checkpoints of trained networks: what every claim about trained networks reads."""
    return [r for r in results if r.trained and r.final]
