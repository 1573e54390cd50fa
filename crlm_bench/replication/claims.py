"""The paper's claims as statistics over profiles, each with a threshold and a verdict.

A :class:`CellResult` is one cell's profile (a frame of :data:`crlm_bench.experiment.probing.PROFILE_COLUMNS`
plus ``cell`` and ``test_accuracy``) with the cell's names. A claim is a function registered in
:data:`CLAIMS`, ``(results, *, statistic="mapc", input_row="knn") -> list[Verdict]``: it groups the
results itself (per cell, per model, per dataset, per training run) and returns one
:class:`Verdict` per group it can form, silently none for the others.

Claims (DESIGN.md; thresholds in :data:`THRESHOLDS`, each with its reason):

- ``profile-shape`` — each trained network: a steep rise from the input to the first latent probe,
  a plateau over the latent probes before the last two, a final rise at the last probe.
- ``untrained-flattens`` — each model and dataset: at initialisation the last probe collapses
  against the trained network's, and does not rise over the penultimate.
- ``gap-tracks-accuracy`` — the curvature gap, N(last) − N(penultimate) with N the statistic over
  its mean over the probes (NMAPC for MAPC), follows test accuracy across models (Spearman) and
  along one training run (Pearson, positive slope).
- ``id-not-curvature`` — per dataset, intrinsic dimension does not track the curvature across the
  latent probes (median |Spearman| over the trained networks).
- ``mixup-flattens`` — each model and dataset: mixup's plateau is well below the baseline's and
  below every other regulariser's.

Only final checkpoints (``epoch == epochs``) enter the claims about trained networks, except the
along-training half of ``gap-tracks-accuracy``, which uses every checkpoint of a run.

Robustness: every claim can be evaluated with the curvature statistic ``"mapc"`` (the paper's) or
``"sff"`` (the median norm of the second fundamental form, ``sff_norm_median``, free of MAPC's
dilution by the number of normal directions), and with the input probe measured the paper's way
(``"knn"``) or with perturbation neighbourhoods like the latent probes (``"perturbation"``).
:func:`evaluate_all` returns the main variant (``mapc/knn-input``) and both robustness variants.
Claims that use no input row (``untrained-flattens``, ``id-not-curvature``, ``mixup-flattens``) give
the same verdict under both input rows by construction.

Paper values are attached to verdicts of the main variant only, where the dataset and model are the
paper's and the figure gives the number (:mod:`crlm_bench.replication.paper`).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _stats

from crlm_bench.registry import Registry
from crlm_bench.replication import paper

log = logging.getLogger(__name__)

__all__ = [
    "UNTRAINED",
    "INPUT_ROWS",
    "MAIN_VARIANT",
    "VARIANTS",
    "ROBUSTNESS_VARIANTS",
    "PAPER_ORDER",
    "CurvatureStatistic",
    "STATISTICS",
    "Threshold",
    "THRESHOLDS",
    "ProfileError",
    "CellResult",
    "Curve",
    "Verdict",
    "CLAIMS",
    "profile_curve",
    "spearman",
    "pearson",
    "slope",
    "ratio",
    "span",
    "median",
    "normalise",
    "curvature_gap",
    "shape_statistics",
    "variant_name",
    "evaluate",
    "evaluate_all",
    "jsonable",
]

UNTRAINED = "untrained"  # the recipe of a network at its initialisation (cell.RECIPES)

#: How the input probe's neighbourhoods were built (profile column ``neighbourhood``).
INPUT_ROWS = ("knn", "perturbation")


def variant_name(statistic: str, input_row: str) -> str:
    """``"mapc/knn-input"``: the name of an evaluation variant."""
    return f"{statistic}/{input_row}-input"


#: (statistic, input row) of the main variant, then of the robustness variants.
VARIANTS: tuple[tuple[str, str], ...] = (("mapc", "knn"), ("sff", "knn"), ("mapc", "perturbation"))
MAIN_VARIANT = variant_name(*VARIANTS[0])
ROBUSTNESS_VARIANTS = tuple(variant_name(*v) for v in VARIANTS[1:])

#: The claims in the paper's order (DESIGN.md); evaluate_all follows it.
PAPER_ORDER = (
    "profile-shape", "untrained-flattens", "gap-tracks-accuracy", "id-not-curvature", "mixup-flattens",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# curvature statistics


@dataclass(frozen=True)
class CurvatureStatistic:
    """A per-probe curvature column of a profile and its names (raw and normalised by its mean)."""

    name: str
    column: str
    label: str
    normalised_label: str
    description: str


STATISTICS: Registry[CurvatureStatistic] = Registry("curvature statistic")
STATISTICS.add("mapc", CurvatureStatistic(
    "mapc", "mapc", "MAPC", "NMAPC",
    "mean absolute principal curvature (the paper's), diluted by the number of normal directions m",
))  # fmt: skip
STATISTICS.add("sff", CurvatureStatistic(
    "sff", "sff_norm_median", "SFF", "NSFF",
    "median norm of the second fundamental form over the points (sff_norm_median), dilution-free",
))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# thresholds


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
        """Whether ``x`` meets the bound; NaN never does."""
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return False
        return {
            ">=": x >= self.value, ">": x > self.value, "<=": x <= self.value, "<": x < self.value,
        }[self.comparison]  # fmt: skip

    @property
    def text(self) -> str:
        return f"{self._SYMBOLS[self.comparison]} {self.value:g}{self.unit}"


#: Every threshold of the claims, in one place, each with its reason.
THRESHOLDS: dict[str, Threshold] = {
    "profile-shape/rise": Threshold(10, ">=", (
        "the paper's first latent probe is ≥ 90× its input (plateau ≥ 0.015 against 1.6e-4); ten "
        "times leaves an order of magnitude for small networks and budgets"), "×"),
    "profile-shape/plateau-span": Threshold(20, "<=", (
        "the six networks' plateaus lie in one band of 0.015–0.25 (≈ 17×); a single network's spans "
        "less (ResNet18: 5.5×)"), "×"),
    "profile-shape/final-rise": Threshold(5, ">=", (
        "the paper's last probe is 14× (ResNet18) to 42× (VGG16) its penultimate; 5× still "
        "separates a rise from noise"), "×"),
    "profile-shape/margin": Threshold(1, ">=", (
        "the worst of rise/10, 20/span and final-rise/5: ≥ 1 exactly when all three bounds hold")),
    "untrained-flattens/last-collapse": Threshold(0.01, "<=", (
        "at initialisation the paper's last probe is ≤ 1e-10 against ≈ 2–4 trained (≤ 1e-10 "
        "relative); a hundredth is lenient by eight orders and still a collapse")),
    "untrained-flattens/final-ratio": Threshold(1, "<", (
        "no final rise: the untrained last probe lies below the penultimate, as in every untrained "
        "network of figure mapc_rand_n_reg")),
    "gap-tracks-accuracy/across-models": Threshold(0.8, ">=", (
        "the paper's points give Spearman 0.94 (CIFAR-10) and 1.0 (CIFAR-100); 0.8 still demands "
        "a strong monotone relation")),
    "gap-tracks-accuracy/min-models": Threshold(3, ">=", (
        "a rank correlation of two points is ±1 by construction")),
    "gap-tracks-accuracy/along-training": Threshold(0.9, ">=", (
        "the paper's checkpoints give Pearson 0.97–0.99 per model; 0.9 allows noisier small-budget "
        "profiles")),
    "gap-tracks-accuracy/min-checkpoints": Threshold(5, ">=", (
        "a Pearson r of fewer points is too easily high (the paper has 8–9 per model)")),
    "gap-tracks-accuracy/slope": Threshold(0, ">", (
        "the gap must grow with accuracy (the paper's slopes are 0.33–1.41 gap per accuracy point)")),
    "id-not-curvature/median-abs-rho": Threshold(0.5, "<", (
        "the paper finds no relation between ID and curvature; a median |ρ| below 0.5 rules out "
        "more than a moderate monotone relation")),
    "mixup-flattens/ratio-to-baseline": Threshold(0.5, "<=", (
        "the paper's mixup plateau (≈ 0.003–0.015) is ≈ 0.12× the baseline's (≈ 0.03–0.1); half "
        "leaves room for smaller networks")),
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# results and curves


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
    def from_profile(cls, cell: Any, frame: pd.DataFrame, *, test_accuracy: float | None = None) -> CellResult:
        """The result of ``cell`` (a Cell, anything with its attributes, or a cell id string).

        ``test_accuracy`` defaults to the frame's ``test_accuracy`` column (NaN without one).
        """
        if isinstance(cell, str):
            from crlm_bench.experiment.cell import Cell

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
        return cls(*names, float(test_accuracy), frame.copy())

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
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "profile"}
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
            raise ProfileError("this curve was built without an input row; pass input_row='knn' or 'perturbation'")
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
    stat = STATISTICS.get(statistic)
    if input_row is not None:
        _check_choice("input row", input_row, INPUT_ROWS)
    if stat.column not in profile.columns:
        raise ProfileError(f"the profile has no column {stat.column!r} for the statistic {statistic!r}")
    frame = profile.sort_values("depth", kind="stable")
    latent = frame[frame["depth"] > 0]
    if len(latent) < 2:
        raise ProfileError(f"the profile has {len(latent)} latent probes; the claims need at least two")
    input_value = None
    if input_row is not None:
        inputs = frame[frame["depth"] == 0]
        if "neighbourhood" in inputs.columns:
            inputs = inputs[inputs["neighbourhood"] == input_row]
        if inputs.empty:
            raise ProfileError(
                f"the profile has no input row measured with {input_row!r} neighbourhoods; "
                "profile with Measurement(input_probe='both') to evaluate this variant"
            )
        input_value = float(inputs[stat.column].iloc[0])
    ids = latent["id_mean"] if "id_mean" in latent.columns else pd.Series(np.nan, index=latent.index)
    return Curve(
        statistic, input_row, input_value,
        tuple(str(p) for p in latent["probe"]),
        tuple(float(x) for x in latent["relative_depth"]),
        tuple(float(x) for x in latent[stat.column]),
        tuple(float(x) for x in ids),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# statistics: small pure functions


def _finite_pairs(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"expected two 1-d sequences of one length, got shapes {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def _constant(a: np.ndarray) -> bool:
    return bool(np.all(a == a[0]))


def _correlation(test: Callable[..., Any], x: Sequence[float], y: Sequence[float]) -> float:
    """``test(x, y).statistic`` over the finite pairs; NaN with fewer than 3 pairs or a constant side."""
    x, y = _finite_pairs(x, y)
    if len(x) < 3 or _constant(x) or _constant(y):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(test(x, y).statistic)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's ρ over the finite pairs; NaN with fewer than 3 pairs or a constant side."""
    return _correlation(_stats.spearmanr, x, y)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's r over the finite pairs; NaN with fewer than 3 pairs or a constant side."""
    return _correlation(_stats.pearsonr, x, y)


def slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of ``y`` on ``x`` over the finite pairs; NaN if ``x`` is constant."""
    x, y = _finite_pairs(x, y)
    if len(x) < 2 or _constant(x):
        return math.nan
    return float(_stats.linregress(x, y).slope)


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` with 0/0 = NaN and x/0 = ±inf."""
    if denominator == 0:
        return math.nan if numerator == 0 else math.copysign(math.inf, numerator)
    return float(numerator) / float(denominator)


def span(values: Sequence[float]) -> float:
    """max/min of positive values (1 for one value); inf if the minimum is ≤ 0, NaN if empty."""
    if len(values) == 0:
        return math.nan
    low, high = min(values), max(values)
    return math.inf if low <= 0 else high / low


def median(values: Iterable[float]) -> float:
    """The median of the finite values; NaN if there are none."""
    a = np.asarray(list(values), dtype=float)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else math.nan


def normalise(values: Sequence[float]) -> tuple[float, ...]:
    """Each value over the mean of all (NMAPC from MAPC, input included)."""
    mean = float(np.mean(values))
    return tuple(ratio(v, mean) for v in values)


def curvature_gap(values: Sequence[float]) -> float:
    """N(last) − N(penultimate), N the values over their mean: the paper's NMAPC gap."""
    n = normalise(values)
    return n[-1] - n[-2]


def shape_statistics(input_value: float, latent: Sequence[float]) -> dict[str, float]:
    """The three shape ratios of a profile and their margin.

    ``rise`` = first latent / input, ``plateau_span`` = max/min over the latent probes before the
    last two, ``final_rise`` = last / penultimate, ``margin`` = min(rise/10, 20/span, final/5) with
    the thresholds of :data:`THRESHOLDS` (≥ 1 exactly when all three hold).
    """
    rise = ratio(latent[0], input_value)
    plateau_span = span(latent[:-2])
    final_rise = ratio(latent[-1], latent[-2])
    parts = (
        rise / THRESHOLDS["profile-shape/rise"].value,
        ratio(THRESHOLDS["profile-shape/plateau-span"].value, plateau_span),
        final_rise / THRESHOLDS["profile-shape/final-rise"].value,
    )
    margin = math.nan if any(math.isnan(p) for p in parts) else min(parts)
    return {"rise": rise, "plateau_span": plateau_span, "final_rise": final_rise, "margin": margin}


# ---------------------------------------------------------------------------------------------
# verdicts


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


@dataclass(frozen=True)
class Verdict:
    """Whether one claim holds for one group (a cell, model, dataset or training run)."""

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


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.3g}"


def _mean(values: Iterable[float]) -> float:
    a = np.asarray(list(values), dtype=float)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else math.nan


def _curve_or_none(result: CellResult, statistic: str, input_row: str | None) -> Curve | None:
    try:
        return result.curve(statistic, input_row)
    except ProfileError as exc:
        log.debug("%s skipped for %s: %s", result.cell_id, variant_name(statistic, str(input_row)), exc)
        return None


def _unique(results: Iterable[CellResult]) -> list[CellResult]:
    """The results with the first of each cell id (ids name the network, not the measurement)."""
    seen: dict[str, CellResult] = {}
    for r in results:
        if r.cell_id in seen:
            log.warning(
                "two results share the cell id %s (cells differing only in measurement or overrides); the claims "
                "use the first: evaluate one budget at a time", r.cell_id,
            )  # fmt: skip
            continue
        seen[r.cell_id] = r
    return list(seen.values())


def _final_trained(results: Iterable[CellResult]) -> list[CellResult]:
    return [r for r in results if r.trained and r.final]


def _check_variant(statistic: str, input_row: str) -> str:
    STATISTICS.get(statistic)
    _check_choice("input row", input_row, INPUT_ROWS)
    return variant_name(statistic, input_row)


ClaimFunction = Callable[..., list[Verdict]]
CLAIMS: Registry[ClaimFunction] = Registry("claim")


@CLAIMS.register("profile-shape")
def profile_shape(
    results: Sequence[CellResult], *, statistic: str = "mapc", input_row: str = "knn"
) -> list[Verdict]:
    """Each trained network (final checkpoint): steep rise, plateau, final rise."""
    variant = _check_variant(statistic, input_row)
    results = _unique(results)
    label = STATISTICS.get(statistic).label
    th = {k: THRESHOLDS[f"profile-shape/{k}"] for k in ("rise", "plateau-span", "final-rise", "margin")}
    verdicts = []
    for r in _final_trained(results):
        curve = _curve_or_none(r, statistic, input_row)
        if curve is None:
            continue
        s = shape_statistics(curve.input_value, curve.values)
        passed = {
            "rise": th["rise"].check(s["rise"]),
            "plateau_span": th["plateau-span"].check(s["plateau_span"]),
            "final_rise": th["final-rise"].check(s["final_rise"]),
        }
        holds = all(passed.values())
        if not curve.plateau:
            explanation = (
                f"{r.cell_id} has only {len(curve.values)} latent probes, so no plateau before the last "
                "two: not evaluable."
            )
        else:
            explanation = (
                f"{label} rises {_fmt(s['rise'])}× from the input to the first latent probe "
                f"({th['rise'].text}), spans {_fmt(s['plateau_span'])}× over the plateau "
                f"({th['plateau-span'].text}) and rises {_fmt(s['final_rise'])}× at the last probe "
                f"({th['final-rise'].text}): the paper's shape {'holds' if holds else 'fails'}."
            )
        details = {
            **{k: s[k] for k in ("rise", "plateau_span", "final_rise")},
            **{f"{k}_holds": v for k, v in passed.items()},
            "input": curve.input_value, "first_latent": curve.first_latent,
            "plateau_min": min(curve.plateau, default=math.nan),
            "plateau_max": max(curve.plateau, default=math.nan),
            "penultimate": curve.penultimate, "last": curve.last, "latent_probes": len(curve.values),
            "test_accuracy": r.test_accuracy,
        }  # fmt: skip
        paper_value = paper_source = None
        prof = paper.paper_profile(r.dataset, r.model) if r.recipe == "baseline" else None
        if variant == MAIN_VARIANT and prof is not None:
            ps = {"rise": prof.rise, "plateau_span": prof.plateau_span, "final_rise": prof.final_rise}
            paper_value = min(
                ps["rise"] / th["rise"].value, th["plateau-span"].value / ps["plateau_span"],
                ps["final_rise"] / th["final-rise"].value,
            )  # fmt: skip
            paper_source = paper.source("common_mapc", "computed from values read from")
            if not prof.read_per_probe:
                paper_source += " (plateau from the band shared by the six networks: a lower bound)"
            details.update({f"paper_{k}": v for k, v in ps.items()})
        verdicts.append(Verdict(
            "profile-shape", r.cell_id, "shape margin min(rise/10, 20/span, final rise/5)", s["margin"],
            f"{th['margin'].text} (rise {th['rise'].text}, span {th['plateau-span'].text}, "
            f"final rise {th['final-rise'].text})",
            th["margin"].value, holds, explanation, paper_value, paper_source, details, variant,
        ))  # fmt: skip
    return verdicts


@CLAIMS.register("untrained-flattens")
def untrained_flattens(
    results: Sequence[CellResult], *, statistic: str = "mapc", input_row: str = "knn"
) -> list[Verdict]:
    """Each model and dataset: the untrained last probe collapses against the trained baseline's."""
    variant = _check_variant(statistic, input_row)
    results = _unique(results)
    label = STATISTICS.get(statistic).label
    collapse_th, final_th = THRESHOLDS["untrained-flattens/last-collapse"], THRESHOLDS["untrained-flattens/final-ratio"]
    baselines: dict[tuple[str, str], dict[int, CellResult]] = defaultdict(dict)
    for r in _final_trained(results):
        if r.recipe == "baseline":
            baselines[(r.dataset, r.model)].setdefault(r.seed, r)
    untrained = [r for r in results if not r.trained]
    seeds_per_pair: dict[tuple[str, str], set[int]] = defaultdict(set)
    for u in untrained:
        seeds_per_pair[(u.dataset, u.model)].add(u.seed)
    verdicts = []
    for u in untrained:
        pair = (u.dataset, u.model)
        if not baselines.get(pair):
            continue
        t = baselines[pair].get(u.seed) or baselines[pair][min(baselines[pair])]
        cu, ct = _curve_or_none(u, statistic, None), _curve_or_none(t, statistic, None)
        if cu is None or ct is None:
            continue
        collapse = ratio(cu.last, ct.last)
        final_ratio = ratio(cu.last, cu.penultimate)
        passed = {"collapse": collapse_th.check(collapse), "final_ratio": final_th.check(final_ratio)}
        holds = all(passed.values())
        group = f"{u.dataset}/{u.model}" + (f"/s{u.seed}" if len(seeds_per_pair[pair]) > 1 else "")
        explanation = (
            f"At initialisation the last probe's {label} is {_fmt(cu.last)}, {_fmt(collapse)}× the trained "
            f"network's {_fmt(ct.last)} ({collapse_th.text}), and {_fmt(final_ratio)}× the untrained "
            f"penultimate ({final_th.text}): {'holds' if holds else 'fails'}."
        )
        details = {
            "untrained_cell": u.cell_id, "trained_cell": t.cell_id,
            "untrained_last": cu.last, "untrained_penultimate": cu.penultimate, "trained_last": ct.last,
            "trained_penultimate": ct.penultimate, "collapse": collapse, "final_ratio": final_ratio,
            "collapse_holds": passed["collapse"], "final_ratio_holds": passed["final_ratio"],
            "untrained_plateau_median": median(cu.plateau), "trained_plateau_median": median(ct.plateau),
        }  # fmt: skip
        paper_value = paper_source = None
        pu, pt = paper.UNTRAINED_LAST_PROBE.get(pair), paper.paper_profile(*pair)
        if variant == MAIN_VARIANT and pu is not None and pt is not None:
            paper_value = ratio(pu.value, pt.last)
            paper_source = (
                "computed from values read from the paper's figures mapc_rand_n_reg (untrained last "
                "probe) and common_mapc (trained last probe)"
            )
        verdicts.append(Verdict(
            "untrained-flattens", group, "untrained/trained last-probe ratio", collapse,
            f"{collapse_th.text} (and untrained last/penultimate {final_th.text})", collapse_th.value,
            holds, explanation, paper_value, paper_source, details, variant,
        ))  # fmt: skip
    return verdicts


def _not_evaluable_reason(n: int, needed: int, singular: str, plural: str) -> str:
    return f"only {n} {singular if n == 1 else plural} (needs ≥ {needed})"


@CLAIMS.register("gap-tracks-accuracy")
def gap_tracks_accuracy(
    results: Sequence[CellResult], *, statistic: str = "mapc", input_row: str = "knn"
) -> list[Verdict]:
    """The curvature gap follows accuracy: across a dataset's baseline models and along a run."""
    variant = _check_variant(statistic, input_row)
    results = _unique(results)
    nlabel = STATISTICS.get(statistic).normalised_label
    return [
        *_gap_across_models(results, statistic, input_row, variant, nlabel),
        *_gap_along_training(results, statistic, input_row, variant, nlabel),
    ]


def _gap_across_models(results, statistic, input_row, variant, nlabel) -> list[Verdict]:
    th, min_th = THRESHOLDS["gap-tracks-accuracy/across-models"], THRESHOLDS["gap-tracks-accuracy/min-models"]
    per_dataset: dict[str, dict[str, list[tuple[float, float, str]]]] = defaultdict(lambda: defaultdict(list))
    for r in _final_trained(results):
        if r.recipe != "baseline":
            continue
        curve = _curve_or_none(r, statistic, input_row)
        if curve is None or not math.isfinite(r.test_accuracy):
            continue
        per_dataset[r.dataset][r.model].append((curve.gap, r.test_accuracy, r.cell_id))
    verdicts = []
    for dataset, models in sorted(per_dataset.items()):
        names = sorted(models)
        gaps = [_mean(g for g, _, _ in models[m]) for m in names]
        accs = [_mean(a for _, a, _ in models[m]) for m in names]
        rho = spearman(gaps, accs) if len(names) >= min_th.value else math.nan
        holds = th.check(rho)
        if len(names) < min_th.value:
            explanation = (
                "Not evaluable: "
                + _not_evaluable_reason(len(names), int(min_th.value), "trained baseline model", "trained baseline models")
                + f" on {dataset}; train more models to test the claim."
            )
        elif math.isnan(rho):
            explanation = (
                f"Not evaluable: the gaps or the accuracies of the {len(names)} models on {dataset} are all equal."
            )
        else:
            explanation = (
                f"Across {len(names)} baseline models on {dataset}, Spearman ρ between the {nlabel} gap "
                f"and test accuracy is {_fmt(rho)} ({th.text}): {'holds' if holds else 'fails'}."
            )
        details = {
            "models": {
                m: {"gap": g, "accuracy": a, "cells": [c for _, _, c in models[m]]}
                for m, g, a in zip(names, gaps, accs)
            },
            "n_models": len(names), "pearson": pearson(gaps, accs) if len(names) >= min_th.value else math.nan,
        }  # fmt: skip
        paper_value = paper_source = None
        corr = paper.GAP_ACCURACY_CORRELATION.get(dataset)
        if variant == MAIN_VARIANT and corr and all(paper.is_paper_cell(dataset, m) for m in names):
            paper_value, paper_source = corr["spearman"].value, corr["spearman"].source
            details["paper_pearson"] = corr["pearson"].value
            details["paper_points"] = {
                m: {"gap": p.gap, "accuracy_percent": p.accuracy_percent}
                for m in names if (p := paper.paper_point(dataset, m)) is not None
            }  # fmt: skip
        verdicts.append(Verdict(
            "gap-tracks-accuracy", dataset, "Spearman ρ(gap, accuracy) across models", rho,
            f"{th.text} (over ≥ {int(min_th.value)} models)", th.value, holds, explanation,
            paper_value, paper_source, details, variant,
        ))  # fmt: skip
    return verdicts


def _gap_along_training(results, statistic, input_row, variant, nlabel) -> list[Verdict]:
    th = THRESHOLDS["gap-tracks-accuracy/along-training"]
    min_th, slope_th = THRESHOLDS["gap-tracks-accuracy/min-checkpoints"], THRESHOLDS["gap-tracks-accuracy/slope"]
    runs: dict[tuple, dict[int, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        if not r.trained:
            continue
        curve = _curve_or_none(r, statistic, input_row)
        if curve is None or not math.isfinite(r.test_accuracy):
            continue
        runs[r.run][r.epoch].append((curve.gap, r.test_accuracy))
    verdicts = []
    for run, by_epoch in sorted(runs.items()):
        if len(by_epoch) < 2:  # a single checkpoint: no group along training
            continue
        dataset, model, recipe, seed, epochs = run
        epochs_sorted = sorted(by_epoch)
        gaps = [_mean(g for g, _ in by_epoch[e]) for e in epochs_sorted]
        accs = [_mean(a for _, a in by_epoch[e]) for e in epochs_sorted]
        enough = len(epochs_sorted) >= min_th.value
        r_value = pearson(accs, gaps) if enough else math.nan
        gap_slope = slope([100 * a for a in accs], gaps) if enough else math.nan
        holds = th.check(r_value) and slope_th.check(gap_slope)
        group = f"{dataset}/{model}/{recipe}/s{seed}"
        if not enough:
            explanation = (
                "Not evaluable: "
                + _not_evaluable_reason(len(epochs_sorted), int(min_th.value), "checkpoint", "checkpoints")
                + f" of {group}; save more epochs (Training.save_at)."
            )
        elif math.isnan(r_value):
            explanation = f"Not evaluable: the gaps or the accuracies of the checkpoints of {group} are all equal."
        else:
            explanation = (
                f"Along {len(epochs_sorted)} checkpoints of {group}, Pearson r between the {nlabel} gap and "
                f"test accuracy is {_fmt(r_value)} ({th.text}) with slope {_fmt(gap_slope)} per accuracy "
                f"point ({slope_th.text}): {'holds' if holds else 'fails'}."
            )
        details = {
            "checkpoints": {str(e): {"gap": g, "accuracy": a} for e, g, a in zip(epochs_sorted, gaps, accs)},
            "n_checkpoints": len(epochs_sorted), "slope_per_accuracy_point": gap_slope,
            "slope_holds": slope_th.check(gap_slope), "epochs": epochs,
        }  # fmt: skip
        paper_value = paper_source = None
        if variant == MAIN_VARIANT and (dataset, recipe) == ("cifar10", "baseline") and model in paper.CHECKPOINT_SLOPE:
            low, high = paper.CHECKPOINT_PEARSON_RANGE
            paper_value = 0.5 * (low.value + high.value)
            paper_source = f"{low.source}; range {low.value:g}–{high.value:g} over the models, middle shown"
            details["paper_slope_per_accuracy_point"] = paper.CHECKPOINT_SLOPE[model].value
        verdicts.append(Verdict(
            "gap-tracks-accuracy", group, "Pearson r(gap, accuracy) along training", r_value,
            f"{th.text} with slope {slope_th.text} (over ≥ {int(min_th.value)} checkpoints)", th.value,
            holds, explanation, paper_value, paper_source, details, variant,
        ))  # fmt: skip
    return verdicts


@CLAIMS.register("id-not-curvature")
def id_not_curvature(
    results: Sequence[CellResult], *, statistic: str = "mapc", input_row: str = "knn"
) -> list[Verdict]:
    """Per dataset: intrinsic dimension does not track curvature across the latent probes."""
    variant = _check_variant(statistic, input_row)
    results = _unique(results)
    label = STATISTICS.get(statistic).label
    th = THRESHOLDS["id-not-curvature/median-abs-rho"]
    per_dataset: dict[str, dict[str, float]] = defaultdict(dict)
    for r in _final_trained(results):
        curve = _curve_or_none(r, statistic, None)
        if curve is None:
            continue
        per_dataset[r.dataset][r.cell_id] = spearman(curve.ids, curve.values)
    verdicts = []
    for dataset, rhos in sorted(per_dataset.items()):
        finite = {c: abs(v) for c, v in rhos.items() if math.isfinite(v)}
        value = median(finite.values())
        holds = th.check(value)
        if not finite:
            explanation = (
                f"Not evaluable: no trained network on {dataset} has ≥ 3 latent probes with varying ID and {label}."
            )
        else:
            explanation = (
                f"Over {len(finite)} trained networks on {dataset}, the median |Spearman ρ| between ID and "
                f"{label} across the latent probes is {_fmt(value)} ({th.text}): {'holds' if holds else 'fails'}."
            )
        details = {"rho": rhos, "n_cells": len(finite), "max_abs_rho": max(finite.values(), default=math.nan)}
        verdicts.append(Verdict(
            "id-not-curvature", dataset, "median abs Spearman ρ(ID, curvature) over networks", value, th.text,
            th.value, holds, explanation, None, None, details, variant,
        ))  # fmt: skip
    return verdicts


_OTHER_REGULARISERS = ("no_regularization", "manifold_mixup")


@CLAIMS.register("mixup-flattens")
def mixup_flattens(
    results: Sequence[CellResult], *, statistic: str = "mapc", input_row: str = "knn"
) -> list[Verdict]:
    """Each model and dataset: mixup's plateau is below half the baseline's and every other recipe's."""
    variant = _check_variant(statistic, input_row)
    results = _unique(results)
    label = STATISTICS.get(statistic).label
    th = THRESHOLDS["mixup-flattens/ratio-to-baseline"]
    plateaus: dict[tuple[str, str], dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in _final_trained(results):
        curve = _curve_or_none(r, statistic, None)
        if curve is None or not curve.plateau:
            continue
        plateaus[(r.dataset, r.model)][r.recipe][r.cell_id] = median(curve.plateau)
    verdicts = []
    for (dataset, model), recipes in sorted(plateaus.items()):
        if "baseline" not in recipes or "mixup" not in recipes:
            continue
        typical = {recipe: _mean(cells.values()) for recipe, cells in sorted(recipes.items())}
        to_baseline = {recipe: ratio(v, typical["baseline"]) for recipe, v in typical.items()}
        value = to_baseline["mixup"]
        others = [o for o in _OTHER_REGULARISERS if o in typical]
        below = {o: typical["mixup"] < typical[o] for o in others}
        holds = th.check(value) and all(below.values())
        others_text = (
            "; " + ", ".join(f"{o} {_fmt(to_baseline[o])}×" for o in others) if others else "; no other regulariser"
        )
        explanation = (
            f"Mixup's median plateau {label} on {dataset}/{model} is {_fmt(value)}× the baseline's ({th.text})"
            f"{others_text}: {'holds' if holds else 'fails'}"
            + ("" if all(below.values()) else f" (mixup not below {', '.join(o for o, b in below.items() if not b)})")
            + "."
        )
        details = {
            "plateau_median": typical, "ratio_to_baseline": to_baseline, "below_other_recipes": below,
            "cells": {recipe: sorted(cells) for recipe, cells in recipes.items()},
        }
        if "manifold_mixup" in to_baseline:
            details["manifold_mixup_ratio_to_baseline"] = to_baseline["manifold_mixup"]
        paper_value = paper_source = None
        regs = paper.REGULARISERS.get((dataset, model))
        if variant == MAIN_VARIANT and regs:
            paper_value = regs["mixup"].plateau_typical / regs["baseline"].plateau_typical
            paper_source = paper.source("mapc_reg", "computed from the plateau ranges (geometric middles) read from")
            details["paper_ratio_to_baseline"] = {
                k: v.plateau_typical / regs["baseline"].plateau_typical for k, v in regs.items()
            }
        verdicts.append(Verdict(
            "mixup-flattens", f"{dataset}/{model}", "mixup/baseline median plateau ratio", value,
            f"{th.text} (and below {', '.join(_OTHER_REGULARISERS)} where present)", th.value, holds,
            explanation, paper_value, paper_source, details, variant,
        ))  # fmt: skip
    return verdicts


# ---------------------------------------------------------------------------------------------
# all claims


def _claim_names(claims: Iterable[str] | None) -> list[str]:
    if claims is not None:
        names = list(claims)
        for name in names:
            CLAIMS.get(name)  # raises with the known names
        return names
    ordered = [n for n in PAPER_ORDER if n in CLAIMS]
    return ordered + [n for n in CLAIMS.names() if n not in ordered]


def evaluate(results: Sequence[CellResult], *, statistic: str = "mapc", input_row: str = "knn",
             claims: Iterable[str] | None = None) -> list[Verdict]:
    """Every claim's verdicts (or those of ``claims``) for one variant."""
    results = _unique(results)
    return [
        v for name in _claim_names(claims)
        for v in CLAIMS.get(name)(results, statistic=statistic, input_row=input_row)
    ]  # fmt: skip


def evaluate_all(results: Sequence[CellResult], *, claims: Iterable[str] | None = None,
                 variants: Sequence[tuple[str, str]] = VARIANTS) -> list[Verdict]:
    """Every claim's verdicts under the main variant and the robustness variants, claim by claim."""
    results = _unique(results)
    names = _claim_names(claims)
    out = []
    for name in names:
        for statistic, input_row in variants:
            out.extend(CLAIMS.get(name)(results, statistic=statistic, input_row=input_row))
    return out
