"""Input checks shared by the estimators: every failure says what was wrong and what to do."""

from __future__ import annotations

import torch


def as_float_tensor(x, name: str) -> torch.Tensor:
    """Return ``x`` as a floating tensor (integers become float32); reject non-numeric input."""
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except Exception as exc:  # noqa: BLE001 - re-raised with context
            raise TypeError(
                f"{name} must be a tensor or array-like of numbers, got {type(x).__name__}"
            ) from exc
    if x.is_complex():
        raise TypeError(f"{name} must be real, got dtype {x.dtype}")
    if not x.is_floating_point():
        x = x.to(torch.float32)
    return x


def check_points(points, name: str = "points", min_points: int = 3) -> torch.Tensor:
    """Check a ``(n, D)`` point cloud: 2-D, at least ``min_points`` rows, finite."""
    points = as_float_tensor(points, name)
    if points.ndim != 2:
        raise ValueError(
            f"{name} must have shape (n, D), got {tuple(points.shape)}; flatten each sample first"
        )
    if points.shape[0] < min_points:
        raise ValueError(f"{name} has {points.shape[0]} rows; at least {min_points} are needed")
    if points.shape[1] < 1:
        raise ValueError(f"{name} has no features (shape {tuple(points.shape)})")
    check_finite(points, name)
    return points


def check_finite(x: torch.Tensor, name: str) -> None:
    if x.numel() == 0 or bool(torch.isfinite(x.sum())):
        return  # a finite sum means every entry is finite (one cheap pass); else look closer
    bad = ~torch.isfinite(x)
    if bool(bad.any()):  # (the sum may also overflow with finite entries: then nothing is raised)
        rows = bad.reshape(bad.shape[0], -1).any(dim=1)
        raise ValueError(
            f"{name} contains NaN or Inf in {int(rows.sum())} of {x.shape[0]} rows "
            f"(first at row {int(rows.nonzero()[0, 0])}); drop or repair those rows before estimating"
        )
