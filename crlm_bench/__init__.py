"""crlm_bench: a replication harness for Kaufman & Azencot, *Data Representations' Study of Latent
Image Manifolds* (ICML 2023).

Layers, imports pointing down only: ``geometry`` (math on tensors) → ``vision`` (data, models,
training) → ``experiment`` (cells, store, probing) → ``replication`` (grid, claims, reports) →
faces (``pytest_plugin``, ``cli``).
"""

__version__ = "0.1.0"
