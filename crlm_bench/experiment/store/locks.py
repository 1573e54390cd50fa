"""Per-key ``flock(2)`` locks on ``.locks/<kind>/<key>.lock``.

The kernel releases a lock when its holder dies, so no lock goes stale; a lock file records who
holds it (pid, host, since when) for the messages of those waiting. :class:`KeyLocks` makes the
locks re-entrant within one thread of one store. Lock directories are never symbolic links, and a
lock path that is not a regular file (a link, a FIFO) is replaced, never opened through.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from crlm_bench.experiment.store.layout import _safe_dir
from crlm_bench.files import open_regular

log = logging.getLogger(__package__)


class LockTimeout(TimeoutError):
    """A store lock was not acquired within the timeout."""


class KeyLocks:
    """The locks of ``(kind, key)`` under ``directory``; ``prepare`` runs before a lock file is
    created (the store creates its root and marker)."""

    def __init__(self, directory: Path, prepare: Callable[[], None]):
        self.directory = directory
        self._prepare = prepare
        self._local = threading.local()

    def path(self, kind: str, key: str) -> Path:
        return self.directory / kind / f"{key}.lock"

    def _held(self) -> dict[tuple[str, str], list[int]]:
        held = getattr(self._local, "held", None)
        if held is None:
            held = self._local.held = {}
        return held

    @contextlib.contextmanager
    def hold(self, kind: str, key: str, timeout: float | None) -> Iterator[None]:
        """Hold the lock of ``(kind, key)``, re-entrant within this thread (see :meth:`acquire`)."""
        held = self._held()
        if (kind, key) in held:
            held[(kind, key)][1] += 1
            try:
                yield
            finally:
                held[(kind, key)][1] -= 1
            return
        fd = self.acquire(kind, key, timeout)
        held[(kind, key)] = [fd, 1]
        try:
            yield
        finally:
            del held[(kind, key)]
            self.release(fd)

    def try_acquire(self, kind: str, key: str) -> int | None:
        """Acquire without waiting; the fd, or None if another holder has it (or this thread)."""
        if (kind, key) in self._held():
            return None
        try:
            return self.acquire(kind, key, 0)
        except LockTimeout:
            return None

    def acquire(self, kind: str, key: str, timeout: float | None) -> int:
        """Wait up to ``timeout`` seconds (None: forever, logging who holds it every minute) for
        the lock and return its open fd; raise :class:`LockTimeout` after that."""
        path = self.path(kind, key)
        self._prepare()
        _safe_dir(self.directory.parent, self.directory.name, kind)
        start = time.monotonic()
        delay, next_log = 0.01, start
        fd = _open_lock_file(path)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                now = time.monotonic()
                if timeout is not None and now - start >= timeout:
                    os.close(fd)
                    raise LockTimeout(
                        f"store lock {kind}/{key} not acquired within {timeout:g} s; it is held by "
                        f"{_holder(path)}. Wait for that process to finish or stop it (its lock "
                        "is released when it exits), or pass a longer timeout."
                    ) from None
                if now >= next_log:
                    log.info(
                        "waiting for store lock %s/%s held by %s (%.0f s so far)",
                        kind,
                        key,
                        _holder(path),
                        now - start,
                    )
                    next_log = now + 60.0
                time.sleep(delay if timeout is None else min(delay, max(0.0, start + timeout - now)))
                delay = min(delay * 2, 0.5)
                continue
            # gc may have unlinked the lock file between our open and flock: retry on the new one
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
            _safe_dir(self.directory.parent, self.directory.name, kind)
            fd = _open_lock_file(path)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        info = f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        return fd

    @staticmethod
    def release(fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _open_lock_file(path: Path) -> int:
    """Open (creating) the lock file ``path``; something else in its place (a symbolic link, a
    FIFO: not the store's) is unlinked first, never followed or blocked on."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        try:
            regular = stat.S_ISREG(os.lstat(path).st_mode)
        except FileNotFoundError:
            regular = True  # created below
        if regular:
            try:
                fd = os.open(path, flags, 0o644)
            except OSError as error:
                if error.errno != errno.ELOOP:  # ELOOP: replaced by a symbolic link meanwhile
                    raise
            else:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    os.set_blocking(fd, True)
                    return fd
                os.close(fd)
        log.warning("store lock path %s is not a regular file; replacing it", path)
        path.unlink(missing_ok=True)
    raise OSError(errno.EINVAL, f"store lock path {path} keeps being replaced by something else", str(path))


def _holder(lock_path: Path) -> str:
    try:
        with open_regular(lock_path, follow_symlinks=False) as f:
            text = f.read().decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "another process"
