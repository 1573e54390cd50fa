"""Looking after a store: list its entries (:func:`ls`), verify them (:func:`verify`), and remove what
is neither a complete entry nor in use (:func:`gc`). :class:`~.store.Store` offers these as
methods; only what the store lays out itself is ever touched."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from crlm_bench.experiment.store.layout import (
    _KEY_RE,
    _KIND_RE,
    _LOCKS,
    _QUARANTINE,
    _TEMP_FILE_RE,
    _TMP,
    _WORK,
    _entry_path,
    _is_store,
)
from crlm_bench.experiment.store.locks import KeyLocks
from crlm_bench.experiment.store.manifest import _check_entry

log = logging.getLogger(__package__)


@dataclass(frozen=True)
class Listing:
    """One row of :meth:`Store.ls`. ``status`` is ``"complete"``, ``"partial"`` (no manifest),
    ``"corrupt"`` or ``"working"`` (a workdir of progress and no entry yet)."""

    kind: str
    key: str
    status: str
    summary: str
    size: int
    path: Path
    problem: str | None = None


@dataclass(frozen=True)
class Problem:
    """One problem found by :meth:`Store.verify`."""

    kind: str
    key: str
    path: Path
    status: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.key} ({self.status}): {self.message} [{self.path}]"


def _entry_dirs(root: Path) -> Iterator[tuple[str, str, Path]]:
    """Directories laid out as entries (anything else under the root is ignored)."""
    if not _is_store(root):
        return
    for kind_dir in sorted(root.iterdir()):
        if not (kind_dir.is_dir() and _KIND_RE.fullmatch(kind_dir.name)):
            continue
        for prefix in sorted(kind_dir.iterdir()):
            if not prefix.is_dir():
                continue
            for path in sorted(prefix.iterdir()):
                if path.is_dir() and _KEY_RE.fullmatch(path.name) and path.name[:2] == prefix.name:
                    yield kind_dir.name, path.name, path


def _workdirs(root: Path) -> Iterator[tuple[str, str, Path]]:
    base = root / _WORK
    if not _is_store(root) or not base.is_dir():
        return
    for kind_dir in sorted(base.iterdir()):
        if kind_dir.is_dir() and _KIND_RE.fullmatch(kind_dir.name):
            for path in sorted(kind_dir.iterdir()):
                if path.is_dir() and _KEY_RE.fullmatch(path.name):
                    yield kind_dir.name, path.name, path


def ls(root: Path, *, verify: bool = False) -> list[Listing]:
    """Every entry with its status, summary and size, and every workdir without an entry
    (status ``"working"``). ``verify=True`` hashes every file; otherwise sizes are checked."""
    rows, seen = [], set()
    for kind, key, path in _entry_dirs(root):
        seen.add((kind, key))
        check = _check_entry(path, kind, key, full=verify)
        if check.manifest is not None:
            size = sum(f["size"] for f in check.manifest["files"].values())
            summary = check.manifest.get("summary", "")
        else:
            size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
            summary = ""
        rows.append(Listing(kind, key, check.status, summary, size, path, check.problem))
    for kind, key, path in _workdirs(root):
        if (kind, key) not in seen:
            size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            rows.append(Listing(kind, key, "working", "", size, path))
    return rows


def verify(root: Path) -> list[Problem]:
    """Hash every file of every entry; the entries that are not complete. Changes nothing."""
    problems = []
    for kind, key, path in _entry_dirs(root):
        check = _check_entry(path, kind, key, full=True)
        if check.status != "complete":
            problems.append(Problem(kind, key, path, check.status, check.problem or ""))
    return problems


def gc(root: Path, locks: KeyLocks, *, workdirs: bool = False) -> list[Path]:
    """Remove what is not a complete entry and not in use (its lock in ``locks`` is free); return
    the removed paths (see :meth:`Store.gc`)."""
    removed: list[Path] = []

    def rm(path: Path) -> None:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)

    if not _is_store(root):
        return removed
    for kind, key, path in list(_entry_dirs(root)):
        fd = locks.try_acquire(kind, key)
        if fd is None:
            continue
        try:
            if _check_entry(path, kind, key, full=True).status != "complete":
                rm(path)
        finally:
            locks.release(fd)

    quarantine = root / _QUARANTINE
    if quarantine.is_dir():
        for kind_dir in sorted(quarantine.iterdir()):
            for path in sorted(kind_dir.iterdir()) if kind_dir.is_dir() else [kind_dir]:
                rm(path)

    tmp = root / _TMP
    if tmp.is_dir():
        for path in sorted(tmp.iterdir()):
            kind, _, rest = path.name.partition("--")
            key = rest.partition("--")[0]
            if not (_KIND_RE.fullmatch(kind) and _KEY_RE.fullmatch(key)):
                continue  # not ours
            fd = locks.try_acquire(kind, key)
            if fd is None:
                continue  # a writer of this key is alive
            try:
                rm(path)
            finally:
                locks.release(fd)

    for kind, key, path in list(_workdirs(root)):
        fd = locks.try_acquire(kind, key)
        if fd is None:
            continue
        try:
            done = _check_entry(_entry_path(root, kind, key), kind, key, full=False).status == "complete"
            if workdirs or done:
                rm(path)
            else:
                for temp in path.rglob("*.tmp"):
                    if _TEMP_FILE_RE.fullmatch(temp.name):
                        rm(temp)
        finally:
            locks.release(fd)

    lock_dir = root / _LOCKS
    if lock_dir.is_dir():
        for lock_path in sorted(lock_dir.glob("*/*.lock")):
            kind, key = lock_path.parent.name, lock_path.name[: -len(".lock")]
            if not (_KIND_RE.fullmatch(kind) and _KEY_RE.fullmatch(key)):
                continue
            fd = locks.try_acquire(kind, key)
            if fd is None:
                continue
            try:
                lock_path.unlink(missing_ok=True)  # lockers re-check the inode after flock
                removed.append(lock_path)
            finally:
                locks.release(fd)
    if removed:
        log.info("store gc removed %d paths under %s", len(removed), root)
    return removed
