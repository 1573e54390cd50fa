"""Exact power-of-two rescaling, which makes the estimators scale-free in floating point.

Every estimator here is scale-invariant (TwoNN, the PCA dimension, the kNN order) or scale-covariant
(a distance scales like s, a curvature like 1/s) in exact arithmetic, but squaring a coordinate of
1e20 overflows float32 and squaring 1e-30 underflows it. The estimators therefore work on x·2^-e,
with e chosen from the data so that the largest magnitude is about 1, and put the units back at the
end. Multiplying by a power of two is exact (while the result stays a normal number), so for s a
power of two the result for s·x is bit for bit that for x, rescaled; for any other s it differs by
rounding only.
"""

from __future__ import annotations

import torch

#: Half-precision dtypes that the estimators compute in float32 (their results are cast back).
HALF = (torch.float16, torch.bfloat16)

_BITS = {torch.float32: (torch.int32, 23, 127), torch.float64: (torch.int64, 52, 1023)}


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the estimators compute in: float32 for float16 and bfloat16, else ``dtype``."""
    return torch.float32 if dtype in HALF else dtype


def pow2(e: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Exactly 2**e (``e`` integer), built from its bits; e is clamped to the normal exponents."""
    int_dtype, mantissa, bias = _BITS[dtype]
    e = e.clamp(1 - bias, bias).to(int_dtype)
    return torch.bitwise_left_shift(e + bias, mantissa).view(dtype)


def exponent(maxabs: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """e (int64) with ``maxabs``·2^-e in [0.5, 1); 0 where ``maxabs`` is 0 or not finite.

    Clamped so that 2^-e is a normal number of ``dtype``; only inputs whose largest entry is
    subnormal end up above 1 after scaling, and they are still far from overflow.
    """
    bias = _BITS[dtype][2]
    _, e = torch.frexp(maxabs.to(dtype))
    e = torch.where((maxabs > 0) & torch.isfinite(maxabs), e.to(torch.int64), 0)
    return e.clamp(-bias, bias - 1)


def ldexp_(x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """x ← x·2^e in place (``e`` integer, broadcasting against x), as a product of powers of two
    that are each representable, so no factor overflows; exact while the result is normal."""
    bias = _BITS[x.dtype][2]
    while bool((e != 0).any()):
        step = e.clamp(1 - bias, bias)
        x.mul_(pow2(step, x.dtype))
        e = e - step
    return x


def restore(scaled: torch.Tensor, e: torch.Tensor, dtype: torch.dtype, what: str) -> torch.Tensor:
    """``scaled``·2^e in ``dtype`` (``e`` broadcasts against ``scaled``), or OverflowError.

    ``scaled`` is overwritten (it is a fresh result of the caller's). The product is exact while it
    is a normal number; a finite value that does not fit ``dtype`` is an error, one below its
    smallest normal number underflows towards 0 as IEEE arithmetic does.
    """
    had_inf = bool(torch.isinf(scaled).any())
    out = ldexp_(scaled, e).to(dtype)
    if not had_inf and bool(torch.isinf(out).any()):
        largest = torch.finfo(dtype).max
        raise OverflowError(
            f"{what} exceed the largest {dtype} ({largest:.3g}) in these units; pass the input in "
            "float64, or divide it by a constant first (curvatures scale like 1/length, distances "
            "like length)"
        )
    return out
