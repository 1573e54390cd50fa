"""Writers of small data-set files in the genuine on-disk formats, for tests.

CIFAR (Krizhevsky 2009, "python version"): each batch file is a pickle of a dict with ``data``, a
``(n, 3072)`` uint8 array whose rows are the R, G and B planes (32×32, row-major) of one image, and
``labels`` (CIFAR-10) or ``fine_labels`` and ``coarse_labels`` (CIFAR-100), plus ``filenames``;
a meta pickle holds ``label_names`` (``batches.meta``) or ``fine_label_names`` (``meta``).
torchvision checks each file's md5 against constants in its source; :func:`patch_md5s` points
those constants at the files written here.

Fashion-MNIST / MNIST IDX: magic ``0x00000803`` (images, 3 dims) or ``0x00000801`` (labels), big-endian
uint32 sizes, then uint8 data.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np

CIFAR10_FILES = {
    "train": [f"data_batch_{i}" for i in range(1, 6)],
    "test": ["test_batch"],
    "meta": "batches.meta",
}
CIFAR100_FILES = {"train": ["train"], "test": ["test"], "meta": "meta"}


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def cifar_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random images (n, 32, 32, 3) uint8, HWC, and their (n, 3072) CIFAR rows."""
    rng = np.random.default_rng(seed)
    hwc = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    rows = hwc.transpose(0, 3, 1, 2).reshape(n, 3072)  # R plane, G plane, B plane
    return hwc, rows


def write_cifar(root: Path, kind: str, n_per_file: int = 6, seed: int = 0) -> dict:
    """Write a small CIFAR-10 (``kind="cifar10"``) or CIFAR-100 (``"cifar100"``) under ``root``.

    Returns ``{"folder": Path, "images": {split: (N, 32, 32, 3)}, "labels": {split: [..]},
    "md5": {filename: md5}}``.
    """
    ten = kind == "cifar10"
    files = CIFAR10_FILES if ten else CIFAR100_FILES
    folder = root / ("cifar-10-batches-py" if ten else "cifar-100-python")
    folder.mkdir(parents=True, exist_ok=True)
    n_classes = 10 if ten else 100
    out = {"folder": folder, "images": {}, "labels": {}, "md5": {}}
    counter = seed
    for split in ("train", "test"):
        all_imgs, all_labels = [], []
        for fname in files[split]:
            counter += 1
            hwc, rows = cifar_images(n_per_file, counter)
            labels = [int(x) for x in np.random.default_rng(counter).integers(0, n_classes, n_per_file)]
            entry = {
                "batch_label": fname,
                "data": rows,
                "filenames": [f"img{i}.png" for i in range(n_per_file)],
            }
            if ten:
                entry["labels"] = labels
            else:
                entry["fine_labels"] = labels
                entry["coarse_labels"] = [lab // 5 for lab in labels]
            with open(folder / fname, "wb") as f:
                pickle.dump(entry, f, protocol=2)
            out["md5"][fname] = _md5(folder / fname)
            all_imgs.append(hwc)
            all_labels += labels
        out["images"][split] = np.concatenate(all_imgs)
        out["labels"][split] = all_labels
    if ten:
        meta = {"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": n_per_file}
    else:
        meta = {
            "fine_label_names": [f"fine{i}" for i in range(100)],
            "coarse_label_names": [f"c{i}" for i in range(20)],
        }
    with open(folder / files["meta"], "wb") as f:
        pickle.dump(meta, f, protocol=2)
    out["md5"][files["meta"]] = _md5(folder / files["meta"])
    return out


def patch_md5s(monkeypatch, kind: str, md5: dict) -> None:
    """Point torchvision's CIFAR md5 constants at the files that :func:`write_cifar` wrote."""
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if kind == "cifar10" else CIFAR100
    files = CIFAR10_FILES if kind == "cifar10" else CIFAR100_FILES
    monkeypatch.setattr(cls, "train_list", [[f, md5[f]] for f in files["train"]])
    monkeypatch.setattr(cls, "test_list", [[f, md5[f]] for f in files["test"]])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5[files["meta"]]})


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    """Write a uint8 array as an IDX file (gzip-compressed if ``compress``)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def write_fashion_mnist(
    folder: Path, n_train: int = 20, n_test: int = 10, seed: int = 0, compress: bool = True
) -> dict:
    """Write a small Fashion-MNIST in IDX format into ``folder``."""
    rng = np.random.default_rng(seed)
    out = {}
    suffix = ".gz" if compress else ""
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
        out[split] = (images, labels)
    return out
