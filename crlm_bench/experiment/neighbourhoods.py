"""The paper's perturbation neighbourhoods of an image.

Each image is split per channel into its singular components, X_c = Σ_i s_ci u_ci v_ciᵀ. The
neighbours of the image zero a non-empty subset of its ``toggles`` smallest *nonzero* singular
values, the same positions in every channel: 2^toggles − 1 neighbours (1023 for the paper's 10).
The number of nonzero singular values is counted per image (smallest over its channels, with a
relative tolerance), not as the minimum over a batch. Pixels stay on the 0–255 scale and are not
clipped; normalise before forwarding.

:func:`released_neighbourhoods` is the released code's version, a named deviation
(``authors_neighbourhoods``): the SVD is of the *normalised* image in float32, a singular value
counts as nonzero above ``max(s) · max(shape) · eps`` of the whole batch, the rank is the smallest
over the batch (every image's reconstruction is truncated to it), and min(rank, toggles) values are
toggled.
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


def released_neighbourhoods(
    batch: torch.Tensor, toggles: int = 10, *, image: int | None = None
) -> torch.Tensor:
    """The released code's neighbours of a batch of *normalised* images ``(B, C, H, W)``:
    ``(B, 2^t − 1, C, H, W)`` in the batch's dtype, t = min(batch rank, ``toggles``); with
    ``image``, those of that image of the batch only, ``(1, 2^t − 1, C, H, W)`` (the rank is still
    the batch's).

    The batch rank is the smallest number of singular values above ``max(s) · max(B, C, H, W) ·
    eps`` over every image and channel (at least 1); every neighbour is rebuilt from that many
    components, so an image of higher rank also loses its others. Neighbour j zeroes the subset of
    the t smallest kept values given by the binary expansion of j (the same subsets as
    :func:`perturbation_neighbourhoods`, in the same order).
    """
    u, s, vh = torch.linalg.svd(_float_batch(batch), full_matrices=False)
    rank = _batch_rank(s, batch.shape)
    t = min(rank, toggles)
    keep = torch.ones(2**t - 1, rank, dtype=s.dtype, device=s.device)
    keep[:, rank - t :] = 1 - subset_masks(t, dtype=s.dtype, device=s.device).flip(-1)
    chosen = slice(None) if image is None else slice(image, image + 1)  # rebuild only what is asked
    u, s, vh = u[chosen, ..., :rank], s[chosen, ..., :rank], vh[chosen, ..., :rank, :]
    scaled = s[:, None] * keep[None, :, None, :]  # (B, M, C, rank)
    return torch.einsum("bchr,bmcr,bcrw->bmchw", u, scaled, vh)


def released_toggles(batch: torch.Tensor, toggles: int = 10) -> int:
    """t = min(batch rank, ``toggles``) of :func:`released_neighbourhoods`: it gives 2^t − 1 neighbours."""
    return min(_batch_rank(torch.linalg.svdvals(_float_batch(batch)), batch.shape), toggles)


def _float_batch(batch: torch.Tensor) -> torch.Tensor:
    if batch.ndim != 4 or not batch.is_floating_point():
        raise ValueError(f"batch must be a float tensor (B, C, H, W), got {batch.dtype} {tuple(batch.shape)}")
    return batch


def _batch_rank(s: torch.Tensor, shape: torch.Size) -> int:
    """The released code's rank of a batch: the fewest singular values above max(s)·max(shape)·eps."""
    tol = s.max() * max(shape) * torch.finfo(s.dtype).eps
    return max(int((s > tol).sum(-1).min()), 1)
