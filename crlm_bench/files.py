"""The ground floor: atomic file writes, checksums, canonical JSON, and reading only regular files.

Used by every layer that writes files (``vision`` for training checkpoints, ``experiment`` for the
store and cell keys); imports nothing from the package. See ``docs/design.md``, "Layers".

Every temporary file the package creates is named by :func:`temp_name` (and recognised by
:func:`is_temp_name`, which also knows the ``tempfile.mkstemp`` names of older versions), so that
the store's ``gc`` can find those left by killed writers. Files are read through
:func:`open_regular`, which refuses FIFOs, devices and sockets instead of blocking on them. A write
that fails for lack of space raises :class:`DiskFullError`, naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

__all__ = [
    "DiskFullError",
    "NotARegularFileError",
    "atomic_write",
    "canonical_json",
    "disk_full_cause",
    "disk_full_error",
    "fsync_dir",
    "is_temp_name",
    "open_regular",
    "sha256_file",
    "stat_regular",
    "temp_name",
    "temp_name_pid",
]

_CHUNK = 1 << 20
#: ``.NAME.PID.NONCE.tmp``: :func:`temp_name`
_TEMP_RE = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp")
#: ``.NAME.XXXXXXXX.tmp``: ``tempfile.mkstemp(prefix=".NAME.", suffix=".tmp")`` of older versions
_MKSTEMP_RE = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


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


# ---------------------------------------------------------------------------------------------
# temporary names


def temp_name(path: str | os.PathLike[str]) -> Path:
    """``.NAME.PID.NONCE.tmp`` beside ``path``: where :func:`atomic_write` stages it."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def is_temp_name(name: str) -> bool:
    """True for a name :func:`temp_name` gives, or that an older version's ``mkstemp`` gave."""
    return bool(_TEMP_RE.fullmatch(name) or _MKSTEMP_RE.fullmatch(name))


def temp_name_pid(name: str) -> int | None:
    """The id of the process that made the temporary name ``name`` (:func:`temp_name`), else None."""
    m = _TEMP_RE.fullmatch(name)
    return int(m.group("pid")) if m else None


# ---------------------------------------------------------------------------------------------
# reading


class NotARegularFileError(OSError):
    """A path that should be a regular file is a FIFO, device, socket, directory or (when links are
    not followed) a symbolic link; it is never opened for reading, so nothing blocks on it."""


def _kind_of(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _not_regular(path: str | os.PathLike[str], mode: int) -> NotARegularFileError:
    what = _kind_of(mode)
    return NotARegularFileError(
        errno.EINVAL, f"{path} is {what}, not a regular file; it is not read", str(path)
    )


def stat_regular(path: str | os.PathLike[str], *, follow_symlinks: bool = True) -> os.stat_result:
    """``os.stat`` of ``path`` if it is a regular file, else :class:`NotARegularFileError`.
    ``follow_symlinks=False`` refuses a symbolic link too."""
    st = os.stat(path, follow_symlinks=follow_symlinks)
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path, st.st_mode)
    return st


def open_regular(path: str | os.PathLike[str], *, follow_symlinks: bool = True) -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file; else raise
    :class:`NotARegularFileError` without blocking (a FIFO is opened non-blocking, then refused).
    ``follow_symlinks=False`` refuses a symbolic link too."""
    stat_regular(path, follow_symlinks=follow_symlinks)  # before opening: some devices act on it
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP and not follow_symlinks:  # replaced by a link meanwhile
            raise _not_regular(path, stat.S_IFLNK) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # replaced by something else between the stat and the open
            raise _not_regular(path, mode)
        os.set_blocking(fd, True)
        return open(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise


def sha256_file(path: str | os.PathLike[str], *, follow_symlinks: bool = True) -> tuple[str, int]:
    """SHA-256 hex digest and size in bytes of the regular file at ``path`` (anything else raises
    :class:`NotARegularFileError`; see :func:`open_regular`)."""
    digest, size = hashlib.sha256(), 0
    with open_regular(path, follow_symlinks=follow_symlinks) as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# ---------------------------------------------------------------------------------------------
# writing


class DiskFullError(OSError):
    """Writing a file failed for lack of space (``ENOSPC``) or quota (``EDQUOT``); its message names
    the file (``filename``). Whatever was being written was removed, so nothing partial is left."""

    def __str__(self) -> str:
        return str(self.strerror)


def disk_full_error(path: str | os.PathLike[str], cause: OSError) -> DiskFullError:
    """The :class:`DiskFullError` of a failed write of ``path`` whose cause was ``cause``."""
    reason = "disk quota exceeded" if cause.errno == errno.EDQUOT else "no space left on device"
    message = (
        f"{reason} at {path}: writing it failed ({cause.strerror or cause}); nothing partial was "
        "kept. Free space on that file system (or write elsewhere, e.g. another --store) and "
        "run again."
    )
    return DiskFullError(cause.errno, message, str(path))


def disk_full_cause(error: BaseException) -> OSError | None:
    """The ``ENOSPC`` / ``EDQUOT`` OSError behind ``error``, if any: ``error`` itself, or one in its
    chain of causes and contexts (torch's ``RuntimeError: [enforce fail at inline_container.cc]``
    hides a failed write this way)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _DISK_FULL:
            return current
        current = current.__cause__ or current.__context__
    return None


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on success fsync it and ``os.replace`` it
    onto ``path``, on error remove it. Readers see the old file or the new one, never a mix. A
    failure for lack of space raises :class:`DiskFullError` naming ``path``."""
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
    except BaseException as error:
        with contextlib.suppress(OSError):
            f.close()  # flushes what is buffered, which fails again on a full disk
        tmp.unlink(missing_ok=True)
        full = disk_full_cause(error)
        if full is not None:
            raise disk_full_error(path, full) from error
        raise
    fsync_dir(path.parent)
