"""Constructed profiles for tests/replication: each claim statistic, once where it must hold and once
where it must fail, and cases where a robustness variant must change the verdict.

A profile is given by its latent MAPC values in forward order (the last two are the penultimate and
the last probe); :func:`make_profile` adds the input rows and the other columns. Unless a case says
otherwise the SFF column equals MAPC and the perturbation input row equals the kNN one, so every
variant agrees; a robustness case changes exactly one of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from crlm_bench.replication.claims import CellResult

# ResNet18 on CIFAR-10 as read from the paper's figure common_mapc (input 1.6e-4).
PAPER_LIKE = [0.062, 0.081, 0.0385, 0.040, 0.075, 0.128, 0.212, 0.117, 0.218, 3.01]
PAPER_INPUT = 1.6e-4


def make_profile(
    latent: Sequence[float],
    *,
    input_knn: float = PAPER_INPUT,
    input_perturbation: float | None = None,
    sff: Sequence[float] | None = None,
    sff_input: float | None = None,
    ids: Sequence[float] | None = None,
    accuracy: float = 0.9,
    cell: str = "constructed",
) -> pd.DataFrame:
    """A profile frame: kNN and perturbation input rows (depth 0), then one row per latent probe."""
    n = len(latent)
    input_perturbation = input_knn if input_perturbation is None else input_perturbation
    sff = list(latent) if sff is None else list(sff)
    sff_input = input_knn if sff_input is None else sff_input
    ids = [5.0 + i for i in range(n)] if ids is None else list(ids)
    rows = []
    for neighbourhood, value in (("knn", input_knn), ("perturbation", input_perturbation)):
        rows.append(
            dict(
                probe="input",
                neighbourhood=neighbourhood,
                depth=0,
                relative_depth=0.0,
                id_mean=20.0,
                d=20,
                m=40,
                mapc=value,
                sff_norm_median=sff_input,
            )
        )
    for i, value in enumerate(latent):
        probe = "linear" if i == n - 1 else "avgpool" if i == n - 2 else f"block{i}"
        rows.append(
            dict(
                probe=probe,
                neighbourhood="perturbation",
                depth=i + 1,
                relative_depth=(i + 1) / n,
                id_mean=ids[i],
                d=round(ids[i]),
                m=30,
                mapc=value,
                sff_norm_median=sff[i],
            )
        )
    frame = pd.DataFrame(rows)
    frame["total_depth"] = n
    chosen = frame[(frame["depth"] > 0) | (frame["neighbourhood"] == "knn")]
    frame["nmapc"] = frame["mapc"] / chosen["mapc"].mean()
    frame.insert(0, "cell", cell)
    frame["test_accuracy"] = accuracy
    return frame


def make_result(
    latent: Sequence[float],
    *,
    dataset: str = "fashion-mnist",
    model: str = "resnet8_narrow",
    recipe: str = "baseline",
    seed: int = 0,
    epoch: int | None = None,
    epochs: int | None = None,
    accuracy: float = 0.9,
    **profile_kw,
) -> CellResult:
    """A CellResult of a constructed profile; untrained cells get epochs 0."""
    epochs = (0 if recipe == "untrained" else 10) if epochs is None else epochs
    epoch = epochs if epoch is None else epoch
    at = f"{epoch}" if epoch == epochs else f"{epoch}of{epochs}"
    cell_id = f"{dataset}-{model}-{recipe}-s{seed}-e{at}"
    frame = make_profile(latent, accuracy=accuracy, cell=cell_id, **profile_kw)
    return CellResult(cell_id, dataset, model, recipe, seed, epoch, epochs, accuracy, frame)


def plateau_then(plateau: float, penultimate: float, last: float, n_plateau: int = 6) -> list[float]:
    return [plateau] * n_plateau + [penultimate, last]


# ---------------------------------------------------------------------------------------------
# profile-shape: (name, latent, profile keywords, {variant: expected holds})

MAIN, SFF, PERT = "mapc/knn-input", "sff/knn-input", "mapc/perturbation-input"

PROFILE_SHAPE_CASES = [
    ("paper-like", PAPER_LIKE, {}, {MAIN: True, SFF: True, PERT: True}),
    ("flat", [0.05] * 10, {"input_knn": 0.05}, {MAIN: False}),
    ("no-steep-rise", PAPER_LIKE, {"input_knn": 0.01}, {MAIN: False}),
    ("wide-plateau", [0.001, 0.5, 0.01, 0.1, 0.2, 0.3, 0.5, 5.0], {"input_knn": 1e-5}, {MAIN: False}),
    ("no-final-rise", PAPER_LIKE[:-1] + [0.3], {}, {MAIN: False}),
    # robustness: SFF is flat where MAPC has the paper's shape
    ("sff-flat", PAPER_LIKE, {"sff": [0.05] * 10, "sff_input": 0.05}, {MAIN: True, SFF: False, PERT: True}),
    # robustness: measured with perturbations the input is as curved as the first latent probe
    (
        "perturbation-input-curved",
        PAPER_LIKE,
        {"input_perturbation": 0.05},
        {MAIN: True, SFF: True, PERT: False},
    ),
]

# ---------------------------------------------------------------------------------------------
# untrained-flattens: (name, trained latent, untrained latent, untrained keywords, {variant: holds})

UNTRAINED_COLLAPSE = [0.3, 0.4, 0.35, 0.5, 0.45, 0.4, 0.35, 0.3, 0.2, 1e-10]

UNTRAINED_CASES = [
    ("last-probe-collapses", PAPER_LIKE, UNTRAINED_COLLAPSE, {}, {MAIN: True, SFF: True, PERT: True}),
    ("like-trained", PAPER_LIKE, PAPER_LIKE, {}, {MAIN: False}),
    ("collapsed-but-rising", PAPER_LIKE, UNTRAINED_COLLAPSE[:-2] + [1e-5, 1e-3], {}, {MAIN: False}),
    ("sff-does-not-collapse", PAPER_LIKE, UNTRAINED_COLLAPSE, {"sff": PAPER_LIKE}, {MAIN: True, SFF: False, PERT: True}),
]  # fmt: skip

# ---------------------------------------------------------------------------------------------
# gap-tracks-accuracy across models: (name, [(model, accuracy, last MAPC, keywords)], {variant: holds})
# The gap grows with the last probe's value at a fixed plateau and penultimate.

_MODELS = ("resnet8_narrow", "resnet14_narrow", "vgg6_narrow", "vgg11_narrow")

GAP_MODEL_CASES = [
    ("monotone", [(m, a, last, {}) for m, a, last in zip(_MODELS, (0.80, 0.85, 0.88, 0.92), (1.0, 2.0, 3.0, 4.0))],
     {MAIN: True, SFF: True, PERT: True}),
    ("anti-correlated", [(m, a, last, {}) for m, a, last in zip(_MODELS, (0.92, 0.88, 0.85, 0.80), (1.0, 2.0, 3.0, 4.0))],
     {MAIN: False}),
    # robustness: the SFF gaps run the other way
    ("sff-reversed", [(m, a, last, {"sff": plateau_then(0.05, 0.1, sl)})
                      for m, a, last, sl in zip(_MODELS, (0.80, 0.85, 0.88, 0.92), (1.0, 2.0, 3.0, 4.0), (4.0, 3.0, 2.0, 1.0))],
     {MAIN: True, SFF: False, PERT: True}),
    # robustness: perturbation input rows so large that they dominate the mean and reverse the gaps
    ("perturbation-input-dominates", [(m, a, last, {"input_perturbation": pin})
                                      for m, a, last, pin in zip(_MODELS, (0.80, 0.85, 0.88, 0.92), (1.0, 2.0, 3.0, 4.0),
                                                                 (10.0, 100.0, 1000.0, 10000.0))],
     {MAIN: True, SFF: True, PERT: False}),
]  # fmt: skip

#: two models only: the across-models verdict is "not evaluable" and does not hold.
GAP_TOO_FEW_MODELS = [(m, a, last, {}) for m, a, last in zip(_MODELS[:2], (0.80, 0.85), (1.0, 2.0))]

# gap-tracks-accuracy along training: (name, [(epoch, accuracy, last MAPC)], expected holds)
GAP_TRAINING_CASES = [
    ("rising-together", [(e, 0.5 + 0.07 * i, 1.0 + 0.2 * i) for i, e in enumerate((2, 4, 6, 8, 10, 12))], True),
    ("unrelated", [(e, 0.5 + 0.07 * i, last) for i, (e, last) in
                   enumerate(zip((2, 4, 6, 8, 10, 12), (3.0, 1.0, 3.5, 1.2, 2.8, 1.1)))], False),
    ("falling", [(e, 0.5 + 0.07 * i, 4.0 - 0.5 * i) for i, e in enumerate((2, 4, 6, 8, 10, 12))], False),
]  # fmt: skip
#: three checkpoints only: not evaluable.
GAP_TRAINING_TOO_FEW = [(e, 0.5 + 0.1 * i, 1.0 + i) for i, e in enumerate((4, 8, 12))]

# ---------------------------------------------------------------------------------------------
# id-not-curvature: (name, [(latent, ids, keywords)] for the trained networks, {variant: holds})

_CURVED = [0.05, 0.08, 0.11, 0.15, 0.2, 0.26, 0.3, 3.0]
_UNRELATED_IDS = [9.0, 4.0, 12.0, 6.0, 3.0, 11.0, 8.0, 5.0]  # Spearman with _CURVED: -1/7

ID_CASES = [
    ("id-tracks-mapc", [(_CURVED, [100 * x for x in _CURVED], {}), (_CURVED, [2 + x for x in _CURVED], {})],
     {MAIN: False, SFF: False, PERT: False}),
    ("unrelated", [(_CURVED, _UNRELATED_IDS, {}), (_CURVED, list(reversed(_UNRELATED_IDS)), {})],
     {MAIN: True, SFF: True, PERT: True}),
    # robustness: ID tracks SFF but not MAPC
    ("id-tracks-sff", [(_CURVED, _UNRELATED_IDS, {"sff": [x / 10 for x in _UNRELATED_IDS]})],
     {MAIN: True, SFF: False, PERT: True}),
]  # fmt: skip

# ---------------------------------------------------------------------------------------------
# mixup-flattens: (name, {recipe: plateau MAPC}, {recipe: plateau SFF}, {variant: holds})

MIXUP_CASES = [
    ("mixup-halved", {"baseline": 0.1, "mixup": 0.02, "manifold_mixup": 0.15, "no_regularization": 0.05}, {},
     {MAIN: True, SFF: True, PERT: True}),
    ("mixup-not-halved", {"baseline": 0.1, "mixup": 0.08, "manifold_mixup": 0.15, "no_regularization": 0.2}, {},
     {MAIN: False}),
    ("another-recipe-flatter", {"baseline": 0.1, "mixup": 0.04, "manifold_mixup": 0.15, "no_regularization": 0.03}, {},
     {MAIN: False}),
    ("baseline-and-mixup-only", {"baseline": 0.1, "mixup": 0.02}, {}, {MAIN: True}),
    # robustness: mixup's SFF plateau equals the baseline's
    ("sff-not-flatter", {"baseline": 0.1, "mixup": 0.02}, {"baseline": 0.1, "mixup": 0.1},
     {MAIN: True, SFF: False, PERT: True}),
]  # fmt: skip


def mixup_results(plateaus: dict[str, float], sff_plateaus: dict[str, float]) -> list[CellResult]:
    out = []
    for recipe, value in plateaus.items():
        kw = {}
        if recipe in sff_plateaus:
            kw["sff"] = plateau_then(sff_plateaus[recipe], 0.2, 3.0)
        out.append(make_result(plateau_then(value, 0.2, 3.0), recipe=recipe, **kw))
    return out


def is_nan(x: float | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


# ---------------------------------------------------------------------------------------------
# thresholds: the verdict of a statistic exactly at each bound (the README's "holds when" column)

AT_THRESHOLD = {
    "profile-shape/rise": True,  # ≥ 10×
    "profile-shape/plateau-span": True,  # ≤ 20×
    "profile-shape/final-rise": True,  # ≥ 5×
    "profile-shape/margin": True,  # ≥ 1
    "untrained-flattens/last-collapse": True,  # ≤ 0.01
    "untrained-flattens/final-ratio": False,  # < 1: an untrained last probe equal to the penultimate fails
    "gap-tracks-accuracy/across-models": True,  # ≥ 0.8
    "gap-tracks-accuracy/min-models": True,  # ≥ 3 models
    "gap-tracks-accuracy/along-training": True,  # ≥ 0.9
    "gap-tracks-accuracy/min-checkpoints": True,  # ≥ 5 checkpoints
    "gap-tracks-accuracy/slope": False,  # > 0: a gap that does not grow fails
    "id-not-curvature/median-abs-rho": False,  # < 0.5
    "mixup-flattens/ratio-to-baseline": True,  # ≤ 0.5
    "mixup-flattens/below-others": False,  # > 1: another regulariser level with mixup fails
}

#: latent values whose shape statistics sit exactly on the bounds with an input of 1: rise 10/1,
#: plateau span 200/10, final rise 1000/200.
ON_THE_BOUNDS = [10.0, 200.0, 200.0, 1000.0]
