"""Image data sets that work offline: CIFAR-10/100, Fashion-MNIST and a synthetic set.

Every data set is served as an :class:`ImageDataset`: the whole split as one ``uint8`` tensor
``images`` of shape ``(N, C, H, W)`` (raw 0–255 pixels, as the paper's perturbation neighbourhoods
and input kNN need) and ``targets`` ``(N,)``. Indexing gives ``(normalised float image, label)``
as a torch ``Dataset`` should; training moves the tensors to the device once and normalises and
augments whole batches there (:func:`normalize`, :func:`augment_batch`).

Where the data live. The root is the ``root`` argument, else ``$CRLM_DATA``, else
``~/.cache/crlm-bench/data``. Nothing touches the network unless ``download=True`` (or
``crlm-bench fetch NAME --download``); a missing or corrupt data set raises
:class:`DatasetUnavailableError`, naming the data set, the paths searched and the command that
fetches it.

- ``cifar10`` / ``cifar100``: read by torchvision's ``CIFAR10`` / ``CIFAR100`` from
  ``ROOT/cifar-10-batches-py`` / ``ROOT/cifar-100-python`` (the python pickles), with torchvision's
  md5 integrity check. CIFAR-100 uses the 100 fine labels. (The paper's released code trained
  CIFAR-100 when asked for CIFAR-10; here each name reads only its own folder and the number of
  classes is checked against the meta file.)
- ``fashion-mnist``: the real 28×28×1 images, 10 classes, 60 000 / 10 000. Read from the IDX files
  ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` in ``ROOT/fashion-mnist``,
  ``ROOT/FashionMNIST/raw`` (torchvision's layout, where ``--download`` puts them) or
  ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist`` package). Images are
  kept at 28×28; the models handle that size (see :mod:`crlm_bench.vision.models`).
- ``synthetic``: 3×32×32, 10 classes, 1 024 train / 256 test images generated from a fixed seed
  (class templates plus noise); learnable, for fast tests. Never needs files.

Normalisation constants: CIFAR-10 mean (0.4914, 0.4822, 0.4465), std (0.2023, 0.1994, 0.2010);
CIFAR-100 mean (0.5074, 0.4867, 0.4411), std (0.2011, 0.1987, 0.2025) (the paper's); Fashion-MNIST
mean 0.2860, std 0.3530 (of its training set). Training augmentation (the paper's):
RandomCrop(size, padding 4) + random horizontal flip.

One module for the four data sets (about 560 lines, above the project's ~500): they share the
readers' checks, the normalisation and the error that says what to type.
"""

from __future__ import annotations

import functools
import gzip
import logging
import os
import pickle
import shlex
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from crlm_bench.registry import Registry

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DatasetUnavailableError",
    "ImageDataset",
    "SPLITS",
    "augment_batch",
    "crop_flip",
    "data_root",
    "dataset_info",
    "fetch_command",
    "list_datasets",
    "load",
    "missing",
    "normalize",
]

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
#: Default data root when neither ``root`` nor ``$CRLM_DATA`` is given.
DEFAULT_ROOT = Path("~/.cache/crlm-bench/data")
#: System folders searched for Fashion-MNIST after the root (Debian's dataset-fashion-mnist).
FASHION_MNIST_SYSTEM_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets/fashion-mnist"),)
#: Padding of the training random crop (the paper's RandomCrop(32, padding=4)).
CROP_PADDING = 4


class DatasetUnavailableError(RuntimeError):
    """A data set that is missing or corrupt. Says which, where it looked, and how to fetch it."""

    def __init__(self, name: str, problem: str, searched: Sequence[Path], command: str, extra: str = ""):
        self.name, self.problem, self.searched, self.command = name, problem, list(searched), command
        paths = "\n".join(f"  - {p}" for p in searched)
        msg = (
            f"data set {name!r} is {problem}.\nSearched:\n{paths}\n"
            f"To fetch it (needs network access) run:\n  {command}\n"
            f"or pass download=True to crlm_bench.vision.datasets.load()."
            f"{extra}"
        )
        super().__init__(msg)


@dataclass(frozen=True)
class DatasetInfo:
    """What a data set is: classes, image shape ``(in_channels, size, size)``, normalisation."""

    name: str
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train_size: int
    test_size: int
    description: str = ""


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    # reader(root, split, download) -> (uint8 images (N, C, H, W), int64 targets (N,))
    reader: Callable[[Path, str, bool], tuple[torch.Tensor, torch.Tensor]]
    # searched(root) -> [] when the files are where reader looks, else the folders it searches
    searched: Callable[[Path], list[Path]] = lambda root: []


DATASETS: Registry[_Entry] = Registry("data set")


def _register(info: DatasetInfo, searched: Callable[[Path], list[Path]] | None = None):
    def decorator(reader):
        DATASETS.add(info.name, _Entry(info, reader, *([searched] if searched else [])))
        return reader

    return decorator


def missing(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for ``name``'s files when they are not all there, else ``[]``.

    Looks for the files only (no reading, no checksums: :func:`load` still verifies them), so a
    run can check every data set it needs in milliseconds before it starts. Raises
    :class:`~crlm_bench.registry.UnknownNameError` for an unknown name.
    """
    return DATASETS.get(name).searched(data_root(root))


def list_datasets(pattern: str = "*") -> list[str]:
    """Registered data set names matching a shell-style pattern."""
    return DATASETS.names(pattern)


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of a registered data set (raises UnknownNameError otherwise)."""
    return DATASETS.get(name).info


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$CRLM_DATA``, else ``~/.cache/crlm-bench/data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("CRLM_DATA")
    if env:
        return Path(env).expanduser()
    return DEFAULT_ROOT.expanduser()


def fetch_command(name: str, root: str | os.PathLike | None = None) -> str:
    """The shell command that downloads data set ``name`` into ``root``."""
    return f"crlm-bench fetch {name} --download --data-dir {shlex.quote(str(data_root(root)))}"


# --------------------------------------------------------------------------------------------
# The Dataset object and batch transforms


class ImageDataset(Dataset):
    """One split of a data set held as tensors.

    ``images``: ``uint8`` ``(N, C, H, W)``; ``targets``: ``int64`` ``(N,)``. ``dataset[i]`` is
    ``(normalised float32 image (C, H, W), int label)``; with ``augment=True`` the image is first
    randomly cropped (padding 4) and flipped using the global torch RNG (for DataLoader use; the
    trainer augments whole batches on the device instead).
    """

    def __init__(
        self, info: DatasetInfo, split: str, images: torch.Tensor, targets: torch.Tensor, augment: bool
    ):
        self.info, self.split, self.augment = info, split, augment
        self.images, self.targets = images, targets
        self._mean, self._std = _stats(info, torch.device("cpu"))

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index : index + 1]
        if self.augment:
            image = augment_batch(image)
        x = (image.float().div_(255) - self._mean) / self._std
        return x[0], int(self.targets[index])

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Normalise a batch of ``uint8`` (or 0–255 float) images of this data set."""
        return normalize(images, self.info)

    def __repr__(self) -> str:
        shape = tuple(self.images.shape)
        return (
            f"ImageDataset({self.info.name!r}, split={self.split!r}, images={shape}, augment={self.augment})"
        )


def _stats(info: DatasetInfo, device, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std as ``(C, 1, 1)`` tensors on ``device``, made once per (stats, device, dtype) so
    that normalising a batch on an accelerator needs no host-to-device copy."""
    return _stats_cached(info.mean, info.std, torch.device(device), dtype)


@functools.lru_cache(maxsize=32)
def _stats_cached(mean, std, device: torch.device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    m = torch.tensor(mean, dtype=dtype).view(-1, 1, 1).to(device)
    s = torch.tensor(std, dtype=dtype).view(-1, 1, 1).to(device)
    return m, s


def normalize(
    images: torch.Tensor, info: DatasetInfo | str, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``(images / 255 − mean) / std`` per channel, for a batch ``(B, C, H, W)`` of 0–255 pixels."""
    if isinstance(info, str):
        info = dataset_info(info)
    if images.ndim != 4 or images.shape[1] != info.in_channels:
        raise ValueError(
            f"expected a batch of shape (B, {info.in_channels}, H, W) for {info.name!r}, "
            f"got {tuple(images.shape)}"
        )
    mean, std = _stats(info, images.device, dtype)
    return (images.to(dtype) / 255 - mean) / std


def augment_batch(
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    padding: int = CROP_PADDING,
    flip: bool = True,
) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip of a whole batch, on its device.

    Equivalent to torchvision's ``RandomCrop(size, padding)`` + ``RandomHorizontalFlip()`` per
    image, done in one gather (no per-sample Python work). Random numbers come from ``generator``
    (a CPU ``torch.Generator``; the global RNG if ``None``) so results do not depend on the device.
    """
    b = images.shape[0]
    offsets = torch.randint(0, 2 * padding + 1, (2, b), generator=generator)
    flips = torch.rand(b, generator=generator) < 0.5 if flip else torch.zeros(b, dtype=torch.bool)
    return crop_flip(images, offsets.to(images.device), flips.to(images.device), padding=padding)


def crop_flip(
    images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, *, padding: int = CROP_PADDING
) -> torch.Tensor:
    """Crop each zero-padded image of a batch at given offsets and flip the chosen ones.

    ``images`` ``(B, C, H, W)``; ``offsets`` ``(2, B)`` integers in ``[0, 2·padding]`` (row, column
    of the crop's corner in the padded image); ``flips`` ``(B,)`` bool, flip horizontally after
    cropping. All on the images' device; one gather, no per-sample Python work.
    """
    b, _, h, w = images.shape
    dev = images.device
    padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))
    rows = offsets[0][:, None] + torch.arange(h, device=dev)  # (B, H)
    cols = torch.arange(w, device=dev).expand(b, w)
    cols = torch.where(flips[:, None], cols.flip(1), cols) + offsets[1][:, None]  # (B, W)
    batch = torch.arange(b, device=dev)[:, None, None]
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


# --------------------------------------------------------------------------------------------
# Loading


def load(
    name: str,
    split: str,
    *,
    root: str | os.PathLike | None = None,
    download: bool = False,
    augment: bool = False,
) -> ImageDataset:
    """Load split ``"train"`` or ``"test"`` of data set ``name`` as an :class:`ImageDataset`.

    ``root``: data root (else ``$CRLM_DATA``, else ``~/.cache/crlm-bench/data``). ``download``:
    allow fetching a missing data set from the internet (never done otherwise). ``augment``: apply
    the paper's training augmentation (random crop, padding 4, and horizontal flip) in
    ``__getitem__``; ``False`` gives the evaluation view.

    Raises :class:`~crlm_bench.registry.UnknownNameError` for an unknown name and
    :class:`DatasetUnavailableError` for a missing or corrupt data set.
    """
    entry = DATASETS.get(name)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    images, targets = entry.reader(data_root(root), split, download)
    info = entry.info
    _check_loaded(info, split, images, targets, root)
    return ImageDataset(info, split, images, targets, augment)


def _check_loaded(info: DatasetInfo, split: str, images: torch.Tensor, targets: torch.Tensor, root) -> None:
    problems = []
    if images.dtype != torch.uint8 or images.ndim != 4:
        problems.append(f"images are {images.dtype} {tuple(images.shape)}, expected uint8 (N, C, H, W)")
    elif images.shape[1] != info.in_channels:
        problems.append(f"images have {images.shape[1]} channels, expected {info.in_channels}")
    if targets.shape[0] != images.shape[0]:
        problems.append(f"{images.shape[0]} images but {targets.shape[0]} labels")
    elif targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= info.num_classes):
        problems.append(
            f"labels range over [{int(targets.min())}, {int(targets.max())}], "
            f"expected [0, {info.num_classes - 1}]"
        )
    if problems:
        raise DatasetUnavailableError(
            info.name,
            f"corrupt ({split} split: {'; '.join(problems)})",
            [data_root(root)],
            fetch_command(info.name, root),
        )


# ----- CIFAR (torchvision's reader) ---------------------------------------------------------


def _cifar_searched(name: str) -> Callable[[Path], list[Path]]:
    def searched(root: Path) -> list[Path]:
        from torchvision import datasets as tvd

        cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
        folder = root / cls.base_folder
        files = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
        return [] if all((folder / f).is_file() for f in files) else [folder]

    return searched


def _cifar_reader(name: str):
    def read(root: Path, split: str, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision import datasets as tvd
        from torchvision.datasets.utils import check_integrity

        cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
        folder = root / cls.base_folder
        cmd = fetch_command(name, root)
        if download:
            root.mkdir(parents=True, exist_ok=True)
            log.info("downloading %s into %s", name, root)
            cls(root=str(root), train=True, download=True)
        files = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
        md5s = dict(cls.train_list + cls.test_list) | {cls.meta["filename"]: cls.meta["md5"]}
        missing = [f for f in files if not (folder / f).is_file()]
        if missing:
            what = "not found" if len(missing) == len(files) else f"incomplete (missing {', '.join(missing)})"
            raise DatasetUnavailableError(name, what, [folder], cmd)
        bad = [f for f in files if not check_integrity(str(folder / f), md5s[f])]
        if bad:
            raise DatasetUnavailableError(
                name,
                f"corrupt (md5 mismatch in {', '.join(bad)})",
                [folder],
                cmd,
                extra=f"\nDelete {folder} and fetch it again.",
            )
        try:
            ds = cls(root=str(root), train=(split == "train"), download=False)
        except (EOFError, pickle.UnpicklingError, ValueError, KeyError, RuntimeError) as err:
            raise DatasetUnavailableError(
                name,
                f"corrupt (could not read {split} files: {err})",
                [folder],
                cmd,
                extra=f"\nDelete {folder} and fetch it again.",
            ) from err
        if len(ds.classes) != DATASETS.get(name).info.num_classes:
            raise DatasetUnavailableError(
                name, f"corrupt (meta file lists {len(ds.classes)} classes)", [folder], cmd
            )
        images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
        targets = torch.as_tensor(ds.targets, dtype=torch.int64)
        return images, targets

    return read


_register(
    DatasetInfo(
        "cifar10",
        10,
        3,
        32,
        (0.4914, 0.4822, 0.4465),
        (0.2023, 0.1994, 0.2010),
        50_000,
        10_000,
        "CIFAR-10 (Krizhevsky 2009), torchvision's python pickles",
    ),
    _cifar_searched("cifar10"),
)(_cifar_reader("cifar10"))
_register(
    DatasetInfo(
        "cifar100",
        100,
        3,
        32,
        (0.5074, 0.4867, 0.4411),
        (0.2011, 0.1987, 0.2025),
        50_000,
        10_000,
        "CIFAR-100 (Krizhevsky 2009), fine labels, torchvision's python pickles",
    ),
    _cifar_searched("cifar100"),
)(_cifar_reader("cifar100"))


# ----- Fashion-MNIST (IDX files) -------------------------------------------------------------

_FMNIST_PREFIX = {"train": "train", "test": "t10k"}


def _fashion_stems(split: str) -> tuple[str, str]:
    prefix = _FMNIST_PREFIX[split]
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _fashion_dirs(root: Path) -> list[Path]:
    return [root / "fashion-mnist", root / "FashionMNIST" / "raw", *FASHION_MNIST_SYSTEM_DIRS]


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (LeCun's MNIST format): magic 0x0000 08 ndim, big-endian dims, uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:  # truncated, bad deflate data, bad header
        raise ValueError(f"{path} is damaged: {err}") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated (header)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise ValueError(
            f"{path} holds {len(raw) - header} bytes of data, expected {expected} for shape {dims}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


@_register(
    DatasetInfo(
        "fashion-mnist",
        10,
        1,
        28,
        (0.2860,),
        (0.3530,),
        60_000,
        10_000,
        "Fashion-MNIST (Xiao et al. 2017), real 28×28 grey images",
    ),
    lambda root: (
        []
        if all(
            any(
                all(_find_idx(folder, stem) for stem in _fashion_stems(split))
                for folder in _fashion_dirs(root)
            )
            for split in SPLITS
        )
        else _fashion_dirs(root)
    ),
)
def _fashion_mnist(root: Path, split: str, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    name = "fashion-mnist"
    stems = _fashion_stems(split)
    dirs = _fashion_dirs(root)
    cmd = fetch_command(name, root) + "\n  (or, on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist)"

    def locate() -> tuple[Path, Path] | None:
        for folder in dirs:
            found = [_find_idx(folder, s) for s in stems]
            if all(found):
                return found[0], found[1]
        return None

    paths = locate()
    if paths is None and download:
        from torchvision import datasets as tvd

        root.mkdir(parents=True, exist_ok=True)
        log.info("downloading %s into %s", name, root / "FashionMNIST" / "raw")
        tvd.FashionMNIST(root=str(root), train=(split == "train"), download=True)
        paths = locate()
    if paths is None:
        raise DatasetUnavailableError(name, f"not found ({stems[0]}[.gz] and {stems[1]}[.gz])", dirs, cmd)
    try:
        images = _read_idx(paths[0])
        labels = _read_idx(paths[1])
    except (OSError, EOFError, ValueError) as err:  # gzip raises EOFError/BadGzipFile when truncated
        raise DatasetUnavailableError(
            name,
            f"corrupt ({err})",
            dirs,
            cmd,
            extra="\nDelete the damaged file named above and fetch it again (for the system copy: "
            "sudo apt-get install --reinstall dataset-fashion-mnist).",
        ) from err
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1:
        raise DatasetUnavailableError(
            name, f"corrupt (images {images.shape}, labels {labels.shape})", dirs, cmd
        )
    log.debug("read %s %s from %s", name, split, paths[0].parent)
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


# ----- Synthetic ------------------------------------------------------------------------------

_SYNTH = DatasetInfo(
    "synthetic",
    10,
    3,
    32,
    (0.5, 0.5, 0.5),
    (0.25, 0.25, 0.25),
    1024,
    256,
    "class templates (smooth random patterns) plus noise, generated from a fixed seed; for tests",
)


@_register(_SYNTH)
def _synthetic(root: Path, split: str, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    info = _SYNTH
    c, s, k = info.in_channels, info.image_size, info.num_classes
    g = torch.Generator().manual_seed(20230611)
    coarse = torch.randn(k, c, 4, 4, generator=g)
    templates = torch.nn.functional.interpolate(coarse, size=(s, s), mode="bilinear", align_corners=False)
    n = info.train_size if split == "train" else info.test_size
    g.manual_seed(1 if split == "train" else 2)
    targets = torch.arange(n) % k
    targets = targets[torch.randperm(n, generator=g)]
    noise = torch.randn(n, c, s, s, generator=g)
    images = (127.5 + 50 * templates[targets] + 40 * noise).round().clamp(0, 255).to(torch.uint8)
    return images, targets.to(torch.int64)
