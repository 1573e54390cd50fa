"""Input checks shared by the estimators: every failure says what was wrong and what to do."""

from __future__ import annotations

import operator

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


def check_int(
    value, name: str, *, minimum: int | None = None, maximum: int | None = None, fix: str = ""
) -> int:
    """``value`` as a Python int: anything with ``__index__`` (int, ``numpy.int64``, a one-element
    integer tensor) is accepted; a bool, a float or anything else is a TypeError (``True`` is not a
    count, and a float would be truncated); outside ``[minimum, maximum]`` a ValueError."""
    hint = f"; {fix}" if fix else ""
    if isinstance(value, bool) or (isinstance(value, torch.Tensor) and value.dtype == torch.bool):
        raise TypeError(f"{name} must be an integer, got the bool {value!r}{hint}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__}){hint}") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = " and ".join(f"{op} {b}" for op, b in ((">=", minimum), ("<=", maximum)) if b is not None)
        raise ValueError(f"{name} must be an integer {bounds}, got {value}{hint}")
    return value


def check_indices(indices, n: int, name: str, device: torch.device) -> torch.Tensor:
    """``indices`` of rows of an ``n``-row array as a LongTensor ``(q,)`` on ``device``.

    Integer tensors, arrays and sequences are accepted. A boolean mask is refused rather than read
    as the indices 0 and 1 (pass ``mask.nonzero().squeeze(1)``), and so are floats, which would be
    truncated.
    """
    try:
        t = indices if isinstance(indices, torch.Tensor) else torch.as_tensor(indices)
    except Exception as exc:  # noqa: BLE001 - re-raised with context
        raise TypeError(f"{name} must be integer indices, got {type(indices).__name__}") from exc
    if t.dtype == torch.bool:
        raise TypeError(
            f"{name} is a boolean mask; pass the indices it selects, e.g. {name}=mask.nonzero().squeeze(1)"
        )
    if t.numel() == 0:
        t = t.to(torch.long)
    if t.is_floating_point() or t.is_complex():
        raise TypeError(f"{name} must be integer indices, got dtype {t.dtype}; floats are not truncated")
    t = t.to(device=device, dtype=torch.long).reshape(-1)
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= n):
        raise ValueError(f"{name} must index the {n} points (0 … {n - 1})")
    return t
