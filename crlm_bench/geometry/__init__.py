"""Geometry layer: pure functions on tensors — intrinsic dimension, neighbours, curvature.

Knows no images, models, files or pytest. Device and dtype follow the input.
"""

from .curvature import (
    UnderdeterminedFitWarning,
    curvature_invariants,
    mapc,
    n_coefficients,
    principal_curvatures,
)
from .intrinsic_dimension import DuplicatePointsWarning, pca_dimension, twonn
from .invariants import Invariants
from .neighbours import knn

__all__ = [
    "DuplicatePointsWarning",
    "Invariants",
    "UnderdeterminedFitWarning",
    "curvature_invariants",
    "knn",
    "mapc",
    "n_coefficients",
    "pca_dimension",
    "principal_curvatures",
    "twonn",
]
