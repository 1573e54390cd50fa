"""The paper's perturbation neighbourhoods of an image.

Each image is split per channel into its singular components, X_c = Σ_i s_ci u_ci v_ciᵀ. The
neighbours of the image zero a non-empty subset of its ``toggles`` smallest *nonzero* singular
values, the same positions in every channel: 2^toggles − 1 neighbours (1023 for the paper's 10).
The number of nonzero singular values is counted per image (smallest over its channels, with a
relative tolerance), not as the minimum over a batch. Pixels stay on the 0–255 scale and are not
clipped; normalise before forwarding.
"""

from __future__ import annotations

import torch

#: singular values at or below this fraction of a channel's largest count as zero
RANK_RTOL = 1e-9


def subset_masks(toggles: int, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """All non-empty subsets of ``toggles`` positions as 0/1 rows, ``(2^toggles − 1, toggles)``.

    Row j − 1 is the binary expansion of j (bit i set = zero the i-th smallest value).
    """
    if not 1 <= toggles <= 16:
        raise ValueError(f"toggles must be between 1 and 16, got {toggles}")
    codes = torch.arange(1, 2**toggles, device=device)
    bits = torch.arange(toggles, device=device)
    return ((codes[:, None] >> bits) & 1).to(dtype)


def image_ranks(images: torch.Tensor, rtol: float = RANK_RTOL) -> torch.Tensor:
    """Number of nonzero singular values of each image, smallest over its channels: ``(B,)``."""
    s = torch.linalg.svdvals(images.to(torch.float64))  # (B, C, min(H, W))
    nonzero = s > rtol * s[..., :1].clamp_min(torch.finfo(torch.float64).tiny)
    return nonzero.sum(-1).amin(-1)


def perturbation_neighbourhoods(
    images: torch.Tensor, toggles: int = 10, *, rtol: float = RANK_RTOL
) -> torch.Tensor:
    """Neighbours of every image: ``(B, C, H, W)`` 0–255 pixels → ``(B, 2^toggles − 1, C, H, W)``
    float64.

    Raises ValueError naming the images with fewer than ``toggles`` nonzero singular values in
    some channel (use :func:`image_ranks` to pick eligible images first).
    """
    if images.ndim != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)}")
    x = images.to(torch.float64)
    u, s, vh = torch.linalg.svd(x, full_matrices=False)  # (B,C,H,r) (B,C,r) (B,C,r,W)
    nonzero = s > rtol * s[..., :1].clamp_min(torch.finfo(torch.float64).tiny)
    ranks = nonzero.sum(-1).amin(-1)  # (B,)
    short = (ranks < toggles).nonzero().flatten().tolist()
    if short:
        raise ValueError(
            f"{len(short)} image(s) (batch positions {short[:10]}{'…' if len(short) > 10 else ''}) "
            f"have fewer than {toggles} nonzero singular values in some channel; choose images with "
            f"image_ranks(...) >= {toggles} or use fewer toggles"
        )
    # positions of the `toggles` smallest nonzero values: rank − toggles … rank − 1, per image
    pos = ranks[:, None] - toggles + torch.arange(toggles, device=x.device)  # (B, t), ascending position
    pos = pos.flip(-1)  # bit 0 = the smallest nonzero value
    b, c = x.shape[:2]
    idx = pos[:, None, :].expand(b, c, toggles)
    s_t = s.gather(-1, idx)  # (B, C, t)
    u_t = u.gather(-1, idx[:, :, None, :].expand(b, c, u.shape[-2], toggles))  # (B, C, H, t)
    v_t = vh.gather(-2, idx[..., None].expand(b, c, toggles, vh.shape[-1]))  # (B, C, t, W)
    components = torch.einsum("bcht,bct,bctw->btchw", u_t, s_t, v_t)  # (B, t, C, H, W)
    masks = subset_masks(toggles, device=x.device)  # (M, t)
    removed = torch.einsum("mt,btchw->bmchw", masks, components)
    return x[:, None] - removed
