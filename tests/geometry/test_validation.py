"""Integer arguments of the geometry API: integer-likes accepted, bools, floats and masks refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crlm_bench.geometry import curvature_invariants, knn, manifolds, n_coefficients, principal_curvatures

X = torch.randn(12, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
PATCH = manifolds.sphere_patches(2, 12, 2, 1.0, ambient=5, seed=0)
PTS, NBS = PATCH.points, PATCH.neighbours
G = torch.Generator().manual_seed(0)

#: Every integer parameter of the geometry API, as a call taking the value.
INTEGER_PARAMETERS = {
    "knn.k": lambda v: knn(X, v),
    "knn.block_bytes": lambda v: knn(X, 2, block_bytes=v),
    "principal_curvatures.dim": lambda v: principal_curvatures(PTS, NBS, v),
    "curvature_invariants.dim": lambda v: curvature_invariants(PTS, NBS, v),
    "curvature_invariants.max_iter": lambda v: curvature_invariants(PTS, NBS, 2, max_iter=v),
    "n_coefficients.dim": lambda v: n_coefficients(v),
    "haar_orthogonal.size": lambda v: manifolds.haar_orthogonal(v, G),
    "sphere.n": lambda v: manifolds.sphere(v, 2),
    "sphere.dim": lambda v: manifolds.sphere(10, v),
    "sphere.ambient": lambda v: manifolds.sphere(10, 1, ambient=v),
    "sphere.seed": lambda v: manifolds.sphere(10, 2, seed=v),
    "cylinder.sphere_dim": lambda v: manifolds.cylinder(10, v, 1),
    "cylinder.flat_dim": lambda v: manifolds.cylinder(10, 1, v),
    "sphere_patches.k": lambda v: manifolds.sphere_patches(2, v, 2, ambient=5),
}
NAMES = list(INTEGER_PARAMETERS)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [True, False, 2.0, 2.5, "2", torch.tensor(True), np.float64(2.0)], ids=repr)
def test_non_integers_are_a_type_error(name, bad):
    with pytest.raises(TypeError, match=r"must be an integer"):
        INTEGER_PARAMETERS[name](bad)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("wrap", [np.int64, np.int32, torch.tensor], ids=["np.int64", "np.int32", "tensor"])
def test_integer_likes_are_accepted(name, wrap):
    """numpy and torch integers mean what the Python int means (here 2, or 4 for a size)."""
    value = 4 if name in ("knn.block_bytes", "haar_orthogonal.size", "sphere.ambient") else 2
    got, want = INTEGER_PARAMETERS[name](wrap(value)), INTEGER_PARAMETERS[name](value)
    if name.startswith("curvature_invariants"):
        got, want = got.sff_norm, want.sff_norm
    elif name.startswith(("sphere", "cylinder")):
        got, want = got.points, want.points
    elif name == "haar_orthogonal.size":
        got, want = got.shape, want.shape
    assert torch.equal(torch.as_tensor(got), torch.as_tensor(want))


@pytest.mark.parametrize(
    "name,value", [("knn.k", 0), ("knn.k", 12), ("knn.block_bytes", 0), ("curvature_invariants.max_iter", 0)]
)
def test_out_of_range_integers_are_a_value_error(name, value):
    with pytest.raises(ValueError, match=r"must be an integer (>=|<=)"):
        INTEGER_PARAMETERS[name](value)


def test_rows_accepts_integer_indices_of_any_kind():
    want = knn(X, 3)[[4, 0, 11]]
    for rows in ([4, 0, 11], np.array([4, 0, 11]), torch.tensor([4, 0, 11], dtype=torch.int32)):
        torch.testing.assert_close(knn(X, 3, rows=rows), want)
    assert knn(X, 3, rows=[]).shape == (0, 3)


@pytest.mark.parametrize(
    "rows,match",
    [
        (torch.arange(12) % 2 == 0, r"boolean mask; pass the indices it selects"),
        (np.ones(12, dtype=bool), r"boolean mask"),
        (torch.tensor([1.0, 2.7]), r"integer indices, got dtype torch.float32; floats are not truncated"),
        ([0.5], r"integer indices"),
    ],
    ids=["torch-mask", "numpy-mask", "float-tensor", "float-list"],
)
def test_rows_refuses_masks_and_floats(rows, match):
    with pytest.raises(TypeError, match=match):
        knn(X, 3, rows=rows)
