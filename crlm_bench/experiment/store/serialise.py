"""Checkpoints and tables in files: :func:`save_tensors` / :func:`load_tensors` (``torch.load`` with
``weights_only=True``, so nothing is ever unpickled) and :func:`save_frame` / :func:`load_frame`
(Parquet). Every write is atomic (:func:`crlm_bench.files.atomic_write`; a full disk raises
:class:`~crlm_bench.files.DiskFullError` naming the file); only regular files are read
(:func:`crlm_bench.files.open_regular`: a FIFO or device raises instead of blocking)."""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

from crlm_bench.files import atomic_write, open_regular


class UnsafeCheckpointError(ValueError):
    """A checkpoint holds objects other than tensors and plain containers; it is not unpickled."""


_SAFE_LEAVES = (str, bytes, int, float, complex, bool, type(None))


def _check_tensor_tree(obj: Any, where: str, seen: set[int]) -> None:
    import torch

    if isinstance(obj, _SAFE_LEAVES) or type(obj) in (
        torch.Tensor,
        torch.nn.Parameter,
        torch.Size,
        torch.dtype,
        torch.device,
    ):
        return
    if id(obj) in seen:
        return
    if type(obj) in (dict, OrderedDict):
        seen.add(id(obj))
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise UnsafeCheckpointError(
                    f"save_tensors: {where} has a key of type {type(k).__name__} ({k!r}); "
                    "use str or int keys so load_tensors (weights_only=True) can read it"
                )
            _check_tensor_tree(v, f"{where}[{k!r}]", seen)
        return
    if type(obj) in (list, tuple):
        seen.add(id(obj))
        for i, v in enumerate(obj):
            _check_tensor_tree(v, f"{where}[{i}]", seen)
        return
    kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
    raise UnsafeCheckpointError(
        f"save_tensors: {where} is a {kind}, which load_tensors (torch.load with weights_only=True) "
        "would refuse; store only tensors, numbers, strings, None and dict/list/tuple of them "
        "(convert numpy arrays with torch.from_numpy, objects to their state_dict())"
    )


def save_tensors(path: str | os.PathLike[str], obj: Any) -> None:
    """``torch.save(obj)`` to ``path`` atomically. ``obj`` may hold only tensors, numbers, strings,
    None and dict/list/tuple of them (a state dict, an optimizer state dict), so that
    :func:`load_tensors` can read it back without unpickling code; anything else is refused with
    :class:`UnsafeCheckpointError` before writing."""
    import torch

    _check_tensor_tree(obj, "obj", set())
    with atomic_write(path) as f:
        torch.save(obj, f)


def load_tensors(path: str | os.PathLike[str]) -> Any:
    """``torch.load(path, weights_only=True, map_location="cpu")``; a file holding arbitrary pickled
    objects is refused with :class:`UnsafeCheckpointError` (nothing in it is executed), and anything
    but a regular file with :class:`~crlm_bench.files.NotARegularFileError`."""
    import pickle

    import torch

    try:
        with open_regular(path) as f:
            return torch.load(f, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()
        detail = next((line for line in reversed(first) if line.strip()), "")
        raise UnsafeCheckpointError(
            f"refusing to load {path}: it contains objects other than tensors and plain containers, "
            f"and the store never unpickles arbitrary objects (torch.load weights_only=True said: "
            f"{detail.strip()}). Re-create it with crlm_bench.experiment.store.save_tensors from "
            "plain data (state_dict(), tensors, numbers, strings)."
        ) from error


def save_frame(path: str | os.PathLike[str], df: Any) -> None:
    """Write a pandas DataFrame to ``path`` as Parquet (pyarrow), atomically."""
    with atomic_write(path) as f:
        df.to_parquet(f, engine="pyarrow")


def load_frame(path: str | os.PathLike[str]) -> Any:
    """Read a Parquet file written by :func:`save_frame` into a pandas DataFrame."""
    import pandas as pd

    with open_regular(path) as f:
        return pd.read_parquet(f, engine="pyarrow")
