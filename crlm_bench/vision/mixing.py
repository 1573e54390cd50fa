"""Mixup (Zhang et al. 2018) and manifold mixup (Verma et al. 2019).

Per batch, λ ~ Beta(α, α) and a random permutation π of the batch; the input (mixup) or the hidden
state at one mixing point (manifold mixup, :class:`HiddenMixer`) becomes λ·h + (1−λ)·h[π], and the
loss λ·CE(out, y) + (1−λ)·CE(out, y[π]) (:func:`mixed_cross_entropy`). The trainer
(:mod:`crlm_bench.vision.training`) draws λ, π and the mixing point from its seeded generator.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from scipy.special import betaincinv
from torch import nn

__all__ = ["HiddenMixer", "mix", "mixed_cross_entropy", "sample_lambda"]


def sample_lambda(alpha: float, generator: torch.Generator | None = None) -> float:
    """Draw λ ~ Beta(α, α) by inverse transform of one uniform from ``generator``.

    Uses only the torch generator (so its state alone determines training), via the regularised
    incomplete beta function's inverse; the trainer does the same for all steps of an epoch at once.
    """
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    u = float(torch.rand((), generator=generator, dtype=torch.float64))
    return float(betaincinv(alpha, alpha, u))


def mix(x: torch.Tensor, lam: float, perm: torch.Tensor) -> torch.Tensor:
    """``λ·x + (1−λ)·x[perm]`` along the batch dimension."""
    return lam * x + (1.0 - lam) * x[perm]


def mixed_cross_entropy(
    logits: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, lam: float
) -> torch.Tensor:
    """``λ·CE(logits, y_a) + (1−λ)·CE(logits, y_b)`` (mean over the batch)."""
    return lam * F.cross_entropy(logits, y_a) + (1.0 - lam) * F.cross_entropy(logits, y_b)


class HiddenMixer:
    """Forward hooks that mix the output of one chosen module (manifold mixup), armed per batch.

    ``arm(target, lam, perm)`` before a forward pass mixes ``target``'s output with :func:`mix`;
    ``arm(None, 1.0, None)`` after it disarms; ``close()`` removes the hooks.
    """

    def __init__(self, modules: Iterable[nn.Module]):
        self.target: nn.Module | None = None
        self.lam, self.perm = 1.0, None
        self.handles = [m.register_forward_hook(self._hook) for m in modules]

    def _hook(self, module: nn.Module, inputs, output):
        if module is self.target:
            return mix(output, self.lam, self.perm)
        return None

    def arm(self, target: nn.Module | None, lam: float, perm: torch.Tensor | None) -> None:
        self.target, self.lam, self.perm = target, lam, perm

    def close(self) -> None:
        for h in self.handles:
            h.remove()
