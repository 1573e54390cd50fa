"""Cases for tests/geometry/test_curvature.py: ground-truth manifolds and the bands they must meet.

Sample sizes are chosen so that the kNN neighbourhood (K = 3p) is small against the radius; the
residual bias of the quadratic fit on a sphere grows like (ε / r)², ε the neighbourhood radius.
"""

#: (dim, radius, n, ambient, tolerance band): median invariants on S^dim(radius).
SPHERE_CASES = [
    (1, 1.0, 2_000, 5, "low"),
    (2, 2.0, 10_000, 6, "low"),
    (2, 0.5, 10_000, 40, "low"),
    (3, 1.5, 20_000, 8, "low"),
    (4, 2.0, 20_000, 9, "high"),
    (5, 1.0, 40_000, 10, "high"),
]

#: (dim, n, ambient): flat patches where every |κ| must vanish.
FLAT_CASES = [(1, 500, 4), (2, 2_000, 7), (3, 4_000, 20)]

#: (name, A as nested lists (codimension 1: dim × dim; codimension 2: 2 × dim × dim), ambient):
#: curvatures at the apex must equal eig(A) (per normal direction).
PARABOLOID_CASES = [
    ("saddle", [[1.0, 0.0], [0.0, -0.5]], 5),
    ("elliptic", [[2.0, 0.3], [0.3, 0.7]], 3),
    ("3d-mixed", [[1.5, 0.2, 0.0], [0.2, -0.8, 0.1], [0.0, 0.1, 0.4]], 8),
]

#: (a, b, n, ambient): Clifford torus S¹(a) × S¹(b), codimension 2, flat (scalar curvature 0).
TORUS_CASES = [(1.0, 1.0, 20_000, 4), (1.0, 2.0, 20_000, 10)]

#: (sphere_dim, flat_dim, radius, n, ambient): cylinders S^k(r) × R^j.
CYLINDER_CASES = [(1, 1, 1.0, 10_000, 5), (2, 1, 1.5, 30_000, 6)]

#: The benchmark case scaled down: (n, K, D, dim, spread, noise), float32 against float64. The
#: noise directions sit at ~1/60 of the tangent singular values, inside float32 Gram resolution.
PRECISION_CASE = (4, 300, 2_048, 6, 0.2, 3e-3)

#: The benchmark's spectrum on a smaller, tighter patch: (n, K, D, dim, spread, noise), float32.
#: Started from the column sketch, the block Krylov iteration meets its float32 tolerance in this
#: many blocks; from a random block it needs one more (measured: 4).
WARM_START_CASE = (2, 511, 2_048, 10, 0.1, 3e-3)
WARM_START_ITERATIONS = 3

#: The benchmark's noisy patch scaled down: points of a dim-dimensional quadric with codim curved
#: normal directions (Hessians (A + Aᵀ)/2, A with N(0, curvature²) entries) in a random frame of
#: R^D, Gaussian offsets of the given spread, noise in every coordinate: (n, K, D, dim, codim,
#: curvature, spread, noise), float32 against float64. At the default Ritz residual (1e-4) the
#: Krylov route takes 4 blocks and errs 4.4e-6, against 2.3e-6 and 6.8e-6 for the float32 Gram
#: and SVD routes; at 1e-2 it stops after 3 and errs 2.8e-3.
KRYLOV_TOL_CASE = (2, 767, 4_096, 15, 32, 0.25, 0.2, 3e-3)

#: A patch without a gap after the tangent directions: a sphere S^4 fitted with dim = 8, as when
#: TwoNN's d exceeds the toggles of a perturbation neighbourhood: (n, K, D, true dim, fitted dim,
#: spread, noise). The last fitted "tangent" directions are noise, as strong as those after them.
NO_GAP_CASE = (2, 300, 2_048, 4, 8, 0.2, 3e-3)
#: Blocks the Krylov iteration runs on it before giving up: one, where the first block's Ritz values
#: show the cluster (CLUSTER_RATIO); three, where only the residual's stall from the third block on
#: can tell (STALL_FACTOR). The subspace iteration it replaced ran all ten iterations first.
NO_GAP_BLOCKS = {"cluster": 1, "stall": 3}

#: (dim, codim, noise): patches for the Krylov route, up to many curved normal directions with
#: noise in every coordinate (the benchmark's hard case, small).
KRYLOV_CASES = [(2, 1, 1e-4), (3, 12, 1e-3), (4, 30, 1e-3)]
