"""The rotation-invariant curvature statistics of a point sample, as one frozen record."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Invariants:
    """Per-point curvature invariants of a ``dim``-dimensional submanifold of R^D, each ``(n,)``.

    With II the second fundamental form and H^α its matrix in normal direction α:

    - ``sff_norm``: ‖II‖_F = sqrt(Σ_α ‖H^α‖²_F).
    - ``mean_curvature``: ‖trace II‖ / dim = sqrt(Σ_α (tr H^α)²) / dim (norm of the mean
      curvature vector).
    - ``scalar_curvature``: the Gauss equation, Σ_α (tr H^α)² − ‖H^α‖²_F.

    None depends on the choice of orthonormal basis of the normal space, nor on how many normal
    directions were fitted (directions with H^α = 0 add nothing), unlike MAPC.
    """

    sff_norm: torch.Tensor
    mean_curvature: torch.Tensor
    scalar_curvature: torch.Tensor

    @classmethod
    def from_hessians(cls, hessians: torch.Tensor) -> Invariants:
        """Invariants from Hessians ``(n, m, dim, dim)`` (symmetric in the last two axes)."""
        dim = hessians.shape[-1]
        traces = torch.diagonal(hessians, dim1=-2, dim2=-1).sum(-1)  # (n, m)
        frob2 = hessians.square().sum((-2, -1))  # (n, m)
        tr2 = traces.square().sum(-1)  # (n,)
        return cls(
            sff_norm=frob2.sum(-1).sqrt(),
            mean_curvature=tr2.sqrt() / dim,
            scalar_curvature=tr2 - frob2.sum(-1),
        )

    def median(self) -> dict[str, float]:
        return {
            k: float(getattr(self, k).median()) for k in ("sff_norm", "mean_curvature", "scalar_curvature")
        }

    def mean(self) -> dict[str, float]:
        return {k: float(getattr(self, k).mean()) for k in ("sff_norm", "mean_curvature", "scalar_curvature")}
