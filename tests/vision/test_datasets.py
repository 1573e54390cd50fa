"""Data sets: registry, data root, offline behaviour, CIFAR through torchvision's real reader on
files written in the genuine pickle format, Fashion-MNIST IDX files, batch augmentation."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch

from crlm_bench.registry import UnknownNameError
from crlm_bench.vision import datasets
from crlm_bench.vision.datasets import DatasetUnavailableError, augment_batch, load

from .cifar_files import patch_md5s, write_cifar, write_fashion_mnist

# The paper's normalisation constants (its training code), and Fashion-MNIST's training-set stats.
EXPECTED_INFO = {
    "cifar10": dict(num_classes=10, in_channels=3, image_size=32,
                    mean=(0.4914, 0.4822, 0.4465), std=(0.2023, 0.1994, 0.2010)),
    "cifar100": dict(num_classes=100, in_channels=3, image_size=32,
                     mean=(0.5074, 0.4867, 0.4411), std=(0.2011, 0.1987, 0.2025)),
    "fashion-mnist": dict(num_classes=10, in_channels=1, image_size=28, mean=(0.2860,), std=(0.3530,)),
    "synthetic": dict(num_classes=10, in_channels=3, image_size=32),
}  # fmt: skip


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def no_system_fashion_mnist(monkeypatch):
    monkeypatch.setattr(datasets, "FASHION_MNIST_SYSTEM_DIRS", ())


# ---------------------------------------------------------------- registry and root


def test_registry_names():
    assert datasets.list_datasets() == ["cifar10", "cifar100", "fashion-mnist", "synthetic"]
    assert datasets.list_datasets("cifar*") == ["cifar10", "cifar100"]


@pytest.mark.parametrize("name", sorted(EXPECTED_INFO))
def test_dataset_info(name):
    info = datasets.dataset_info(name)
    for field, value in EXPECTED_INFO[name].items():
        assert getattr(info, field) == value, field


def test_unknown_dataset_lists_names_and_closest():
    with pytest.raises(UnknownNameError) as err:
        load("cifar-10", "train")
    msg = str(err.value)
    assert "'cifar10'" in msg.split("Known")[0]  # the closest match is suggested
    for name in datasets.list_datasets():
        assert name in msg


def test_bad_split():
    with pytest.raises(ValueError, match="split must be one of"):
        load("synthetic", "validation")


def test_data_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("CRLM_DATA", str(tmp_path / "env"))
    assert datasets.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert datasets.data_root() == tmp_path / "env"
    monkeypatch.delenv("CRLM_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets.data_root() == tmp_path / "home" / ".cache" / "crlm-bench" / "data"


# ---------------------------------------------------------------- synthetic


def test_synthetic_is_deterministic_and_shaped():
    a, b = load("synthetic", "train"), load("synthetic", "train")
    assert a.images.dtype == torch.uint8 and a.images.shape == (1024, 3, 32, 32)
    assert torch.equal(a.images, b.images) and torch.equal(a.targets, b.targets)
    test = load("synthetic", "test")
    assert test.images.shape == (256, 3, 32, 32)
    assert not torch.equal(test.images, a.images[:256])
    assert set(a.targets.tolist()) == set(range(10))


def test_getitem_normalises_and_augments():
    ds = load("synthetic", "test")
    x, y = ds[3]
    assert x.dtype == torch.float32 and x.shape == (3, 32, 32) and y == int(ds.targets[3])
    expected = (ds.images[3].float() / 255 - 0.5) / 0.25
    torch.testing.assert_close(x, expected)
    aug = load("synthetic", "test", augment=True)
    torch.manual_seed(0)
    xs = torch.stack([aug[3][0] for _ in range(8)])
    assert not all(torch.equal(xs[0], xi) for xi in xs[1:])  # random crops / flips differ


# ---------------------------------------------------------------- augmentation


def _crops(img: torch.Tensor, padding: int) -> list[torch.Tensor]:
    """All crops of a zero-padded image, and their horizontal flips (torchvision's semantics)."""
    c, h, w = img.shape
    padded = torch.nn.functional.pad(img, (padding,) * 4)
    out = []
    for dy in range(2 * padding + 1):
        for dx in range(2 * padding + 1):
            crop = padded[:, dy : dy + h, dx : dx + w]
            out += [crop, crop.flip(-1)]
    return out


def test_augment_batch_is_crop_and_flip():
    g = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8, generator=g)
    out = augment_batch(imgs, torch.Generator().manual_seed(1), padding=2)
    assert out.shape == imgs.shape and out.dtype == torch.uint8
    for img, o in zip(imgs, out):
        assert any(torch.equal(o, c) for c in _crops(img, 2))
    # Over a batch, some images are flipped and some are shifted.
    assert not torch.equal(out, imgs)


def test_augment_batch_identity_and_reproducible():
    imgs = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    assert torch.equal(augment_batch(imgs, padding=0, flip=False), imgs)
    a = augment_batch(imgs, torch.Generator().manual_seed(5))
    b = augment_batch(imgs, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_normalize_checks_shape():
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        datasets.normalize(torch.zeros(2, 3, 28, 28), "fashion-mnist")


# ---------------------------------------------------------------- CIFAR via torchvision


@pytest.mark.parametrize("kind", ["cifar10", "cifar100"])
def test_cifar_reads_genuine_pickles(tmp_path, monkeypatch, kind):
    written = write_cifar(tmp_path, kind)
    patch_md5s(monkeypatch, kind, written["md5"])
    for split in ("train", "test"):
        ds = load(kind, split, root=tmp_path)
        expected = torch.from_numpy(written["images"][split]).permute(0, 3, 1, 2)
        assert ds.images.dtype == torch.uint8 and ds.images.shape == expected.shape
        assert torch.equal(ds.images, expected)  # R, G, B planes land in channels 0, 1, 2
        assert ds.targets.tolist() == written["labels"][split]  # fine labels for CIFAR-100
        assert ds.info.num_classes == (10 if kind == "cifar10" else 100)
    assert len(load(kind, "train", root=tmp_path)) == 6 * (5 if kind == "cifar10" else 1)


def test_cifar10_and_cifar100_read_their_own_folders(tmp_path, monkeypatch):
    # The paper's code trained CIFAR-100 when asked for CIFAR-10; here each name reads its folder.
    w10, w100 = write_cifar(tmp_path, "cifar10", seed=0), write_cifar(tmp_path, "cifar100", seed=50)
    patch_md5s(monkeypatch, "cifar10", w10["md5"])
    patch_md5s(monkeypatch, "cifar100", w100["md5"])
    assert load("cifar10", "test", root=tmp_path).targets.tolist() == w10["labels"]["test"]
    assert load("cifar100", "test", root=tmp_path).targets.tolist() == w100["labels"]["test"]


def test_cifar_missing_names_paths_and_command(tmp_path):
    with pytest.raises(DatasetUnavailableError) as err:
        load("cifar10", "train", root=tmp_path)
    msg = str(err.value)
    assert "'cifar10'" in msg and "not found" in msg
    assert str(tmp_path / "cifar-10-batches-py") in msg
    assert f"crlm-bench fetch cifar10 --download --data-dir {tmp_path}" in msg
    assert err.value.searched == [tmp_path / "cifar-10-batches-py"]


def test_cifar_default_root_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CRLM_DATA", str(tmp_path))
    with pytest.raises(DatasetUnavailableError) as err:
        load("cifar100", "test")
    assert str(tmp_path / "cifar-100-python") in str(err.value)


def test_cifar_truncated_file_fails_integrity_check(tmp_path, monkeypatch):
    written = write_cifar(tmp_path, "cifar10")
    patch_md5s(monkeypatch, "cifar10", written["md5"])
    batch = written["folder"] / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:1000])
    with pytest.raises(DatasetUnavailableError) as err:
        load("cifar10", "test", root=tmp_path)
    msg = str(err.value)
    assert "corrupt" in msg and "data_batch_3" in msg and "fetch" in msg
    assert str(written["folder"]) in msg


def test_cifar_truncated_pickle_with_matching_md5(tmp_path, monkeypatch):
    # Even when the md5 matches (a wrong checksum list), an unreadable pickle is reported clearly.
    written = write_cifar(tmp_path, "cifar100")
    test_file = written["folder"] / "test"
    test_file.write_bytes(test_file.read_bytes()[:500])
    written["md5"]["test"] = __import__("hashlib").md5(test_file.read_bytes()).hexdigest()
    patch_md5s(monkeypatch, "cifar100", written["md5"])
    with pytest.raises(DatasetUnavailableError, match="corrupt .*could not read test files"):
        load("cifar100", "test", root=tmp_path)


def test_cifar_incomplete_folder(tmp_path, monkeypatch):
    written = write_cifar(tmp_path, "cifar10")
    patch_md5s(monkeypatch, "cifar10", written["md5"])
    (written["folder"] / "batches.meta").unlink()
    with pytest.raises(DatasetUnavailableError, match="incomplete .*batches.meta"):
        load("cifar10", "train", root=tmp_path)


def test_cifar_downloads_only_when_allowed(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    calls = []

    def fake_download(url, download_root, filename=None, md5=None, **kwargs):
        calls.append(url)
        written = write_cifar(tmp_path, "cifar10")
        patch_md5s(monkeypatch, "cifar10", written["md5"])

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", fake_download)
    with pytest.raises(DatasetUnavailableError):
        load("cifar10", "train", root=tmp_path)
    assert calls == []  # nothing fetched by default
    ds = load("cifar10", "train", root=tmp_path, download=True)
    assert calls == [tv_cifar.CIFAR10.url] and len(ds) == 30
    load("cifar10", "train", root=tmp_path, download=True)
    assert len(calls) == 1  # present and intact: not fetched again


# ---------------------------------------------------------------- Fashion-MNIST


@pytest.mark.parametrize("layout", ["fashion-mnist", "FashionMNIST/raw"])
@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_idx_layouts(tmp_path, no_system_fashion_mnist, layout, compress):
    written = write_fashion_mnist(tmp_path / layout, compress=compress)
    for split in ("train", "test"):
        ds = load("fashion-mnist", split, root=tmp_path)
        images, labels = written[split]
        assert ds.images.shape == (len(images), 1, 28, 28)
        assert torch.equal(ds.images[:, 0], torch.from_numpy(images))
        assert ds.targets.tolist() == labels.tolist()


def test_fashion_mnist_missing(tmp_path, no_system_fashion_mnist):
    with pytest.raises(DatasetUnavailableError) as err:
        load("fashion-mnist", "train", root=tmp_path)
    msg = str(err.value)
    assert "'fashion-mnist'" in msg and "not found" in msg
    for path in (tmp_path / "fashion-mnist", tmp_path / "FashionMNIST" / "raw"):
        assert str(path) in msg
    assert "crlm-bench fetch fashion-mnist --download" in msg
    assert "apt-get install dataset-fashion-mnist" in msg


def test_fashion_mnist_searches_system_dir(tmp_path, monkeypatch):
    system = tmp_path / "usr-share"
    write_fashion_mnist(system, n_train=7, n_test=3)
    monkeypatch.setattr(datasets, "FASHION_MNIST_SYSTEM_DIRS", (system,))
    assert len(load("fashion-mnist", "train", root=tmp_path / "empty")) == 7


@pytest.mark.parametrize(
    "damage", ["truncated-gzip", "bad-deflate", "bad-gzip-header", "short-data", "bad-magic"]
)
def test_fashion_mnist_corrupt(tmp_path, no_system_fashion_mnist, damage):
    import gzip

    folder = tmp_path / "fashion-mnist"
    write_fashion_mnist(folder)
    path = folder / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    if damage == "truncated-gzip":
        path.write_bytes(path.read_bytes()[:-40])
    elif damage == "bad-deflate":  # a valid gzip header, then a deflate block of the reserved type
        packed = gzip.compress(raw)
        path.write_bytes(packed[:10] + b"\xff" + packed[11:])
    elif damage == "bad-gzip-header":
        path.write_bytes(b"not gzip at all" + path.read_bytes())
    elif damage == "short-data":
        path.write_bytes(gzip.compress(raw[:-28]))
    else:
        path.write_bytes(gzip.compress(b"\x00\x00\x0c\x03" + raw[4:]))
    with pytest.raises(DatasetUnavailableError) as err:
        load("fashion-mnist", "test", root=tmp_path)
    msg = str(err.value)
    assert "corrupt" in msg and "fetch" in msg and str(folder) in msg
    assert damage not in ("bad-deflate", "bad-gzip-header") or str(path) in msg  # names the file
    load("fashion-mnist", "train", root=tmp_path)  # the intact split still loads


def test_fashion_mnist_label_range_checked(tmp_path, no_system_fashion_mnist):
    from .cifar_files import write_idx

    folder = tmp_path / "fashion-mnist"
    write_fashion_mnist(folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.full(20, 12, dtype=np.uint8))
    with pytest.raises(DatasetUnavailableError, match=r"labels range over \[12, 12\]"):
        load("fashion-mnist", "train", root=tmp_path)


def test_fetch_cli_checks_without_network(tmp_path, no_system_fashion_mnist, caplog):
    from crlm_bench.vision import fetch

    assert fetch.main(["fashion-mnist", "--root", str(tmp_path)]) == 1
    write_fashion_mnist(tmp_path / "fashion-mnist")
    assert fetch.main(["fashion-mnist", "--root", str(tmp_path)]) == 0
    assert fetch.main(["cifar-10", "--root", str(tmp_path)]) == 1


REAL_FASHION_MNIST = datasets.FASHION_MNIST_SYSTEM_DIRS[0]


@pytest.mark.skipif(
    not (REAL_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").exists(),
    reason="real Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist(tmp_path):
    train, test = load("fashion-mnist", "train", root=tmp_path), load("fashion-mnist", "test", root=tmp_path)
    assert train.images.shape == (60_000, 1, 28, 28) and test.images.shape == (10_000, 1, 28, 28)
    assert torch.bincount(test.targets).tolist() == [1000] * 10
    pixels = train.images.float() / 255
    assert abs(pixels.mean().item() - 0.2860) < 1e-3 and abs(pixels.std().item() - 0.3530) < 1e-3


def test_missing_names_the_folders_searched_and_reads_nothing(tmp_path, no_system_fashion_mnist):
    assert datasets.missing("synthetic", tmp_path) == []
    assert datasets.missing("cifar10", tmp_path) == [tmp_path / "cifar-10-batches-py"]
    write_cifar(tmp_path, "cifar10")
    assert datasets.missing("cifar10", tmp_path) == []
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()  # one file gone: not all there
    assert datasets.missing("cifar10", tmp_path) == [tmp_path / "cifar-10-batches-py"]
    assert tmp_path / "fashion-mnist" in datasets.missing("fashion-mnist", tmp_path)
    write_fashion_mnist(tmp_path / "fashion-mnist")
    assert datasets.missing("fashion-mnist", tmp_path) == []
    (tmp_path / "fashion-mnist" / "train-labels-idx1-ubyte.gz").unlink()
    assert datasets.missing("fashion-mnist", tmp_path) != []
