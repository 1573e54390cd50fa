"""The ground floor: atomic file writes, checksums and canonical JSON.

Used by every layer that writes files (``vision`` for training checkpoints, ``experiment`` for the
store and cell keys); imports nothing from the package. See ``docs/design.md``, "Layers".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "canonical_json", "fsync_dir", "sha256_file", "temp_name"]

_CHUNK = 1 << 20


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, ASCII, no NaN: one text per value, the input of every key hash."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory, so that a rename into it survives a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(path: str | os.PathLike[str]) -> Path:
    """``.NAME.PID.NONCE.tmp`` beside ``path``: where :func:`atomic_write` stages it."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on success fsync it and ``os.replace`` it
    onto ``path``, on error remove it. Readers see the old file or the new one, never a mix."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    tmp = temp_name(path)
    f = open(tmp, "xb") if mode == "wb" else open(tmp, "x", encoding="utf-8")
    try:
        yield f
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(tmp, path)
    except BaseException:
        f.close()
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """SHA-256 hex digest and size in bytes of the file at ``path``."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
