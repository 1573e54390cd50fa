"""Test accuracy, and the checks a model must pass before it meets a data set.

:func:`evaluate` measures a model on a split of a registered data set; :func:`evaluate_tensors`
does so on images already on the device (the trainer's way, at every saved epoch). Both run in
float32 unless asked for bf16 autocast. :func:`check_compatible` compares the model's input
channels and outputs with the data set before any data is read.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from crlm_bench.vision import datasets as _datasets

__all__ = ["check_compatible", "evaluate", "evaluate_tensors", "resolve_device"]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a :class:`torch.device`; ``None`` means CUDA if available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _model_shape(model: nn.Module) -> tuple[int | None, int | None]:
    inner = getattr(model, "_orig_mod", model)
    in_ch = getattr(inner, "in_channels", None)
    classes = getattr(inner, "num_classes", None)
    if in_ch is None:
        first = next((m for m in inner.modules() if isinstance(m, nn.Conv2d)), None)
        in_ch = first.in_channels if first is not None else None
    if classes is None:
        last = [m for m in inner.modules() if isinstance(m, nn.Linear)]
        classes = last[-1].out_features if last else None
    return in_ch, classes


def check_compatible(model: nn.Module, dataset_name: str) -> None:
    """Raise ``ValueError`` if ``model``'s input channels or classes do not fit the data set."""
    info = _datasets.dataset_info(dataset_name)
    in_ch, classes = _model_shape(model)
    arch = getattr(getattr(model, "_orig_mod", model), "arch", type(model).__name__)
    problems = []
    if in_ch is not None and in_ch != info.in_channels:
        problems.append(
            f"it takes {in_ch}-channel input but {info.name} images have {info.in_channels} channel(s)"
        )
    if classes is not None and classes != info.num_classes:
        problems.append(f"it has {classes} outputs but {info.name} has {info.num_classes} classes")
    if problems:
        raise ValueError(
            f"model {arch!r} does not fit data set {info.name!r}: {'; '.join(problems)}. Build it with "
            f"crlm_bench.vision.models.build({arch!r}, num_classes={info.num_classes}, "
            f"in_channels={info.in_channels})."
        )


@torch.no_grad()
def evaluate_tensors(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    info: _datasets.DatasetInfo,
    *,
    batch_size: int = 1024,
    amp: bool = False,
    channels_last: bool = False,
) -> float:
    """Accuracy of ``model`` on ``uint8`` ``images`` ``(N, C, H, W)`` of data set ``info`` (normalised
    here) with labels ``targets``, on the images' device; the model's mode is restored after."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=images.device)
    try:
        for start in range(0, images.shape[0], batch_size):
            x = _datasets.normalize(images[start : start + batch_size], info)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(x)
            correct += (logits.argmax(1) == targets[start : start + batch_size]).sum()
    finally:
        model.train(was_training)
    return int(correct) / max(1, images.shape[0])


def evaluate(
    model: nn.Module,
    dataset_name: str,
    *,
    root: str | os.PathLike | None = None,
    batch_size: int = 1024,
    split: str = "test",
    device: str | torch.device | None = None,
    amp: bool = False,
    download: bool = False,
) -> float:
    """Accuracy of ``model`` on a split (default the test set, evaluation view) of a data set.

    The model is run on ``device`` (default: where its parameters are) in float32 unless ``amp``
    (bf16 autocast); it is left in the mode it was in. The trainer measures test accuracy the same
    way (float32, even when training in bf16).
    """
    check_compatible(model, dataset_name)
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    dev = torch.device(device)
    model.to(dev)
    ds = _datasets.load(dataset_name, split, root=root, download=download)
    images, targets = ds.images.to(dev), ds.targets.to(dev)
    return evaluate_tensors(
        model, images, targets, ds.info, batch_size=batch_size, amp=amp, channels_last=dev.type == "cuda"
    )
