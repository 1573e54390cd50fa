"""Cases for tests/geometry/test_intrinsic_dimension.py: (shape, dimension, ambient D)."""

#: Uniform balls B^d and spheres S^d embedded in R^D, n = 5000 (issue 2).
TWONN_CASES = [
    ("ball", 1, 3),
    ("ball", 2, 10),
    ("ball", 3, 50),
    ("ball", 4, 100),
    ("ball", 6, 20),
    ("ball", 8, 100),
    ("ball", 10, 100),
    ("sphere", 1, 4),
    ("sphere", 2, 20),
    ("sphere", 4, 100),
    ("sphere", 5, 30),
    ("sphere", 7, 64),
    ("sphere", 10, 100),
]
#: (rank, D, n): data on a linear subspace; the PCA dimension at 90 % must not exceed the rank.
PCA_CASES = [(1, 10, 500), (3, 20, 1000), (8, 200, 300)]
