"""crlm_bench: a replication harness for Kaufman & Azencot, *Data Representations' Study of Latent
Image Manifolds* (ICML 2023).

Layers, imports pointing down only (``docs/design.md``; enforced by the import-linter contracts in
``pyproject.toml``): ground floor (``files``, ``registry``) → ``geometry`` (math on tensors) →
``vision`` (data, models, training) → ``experiment`` (cells, store, probing) → ``replication``
(budgets, grid, claims, reports) → ``workers`` (xdist) → faces (``pytest_plugin``, ``cli``).
"""

__version__ = "0.1.0"
