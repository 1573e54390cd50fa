"""Looking after a store: list its entries (:func:`ls`), verify them (:func:`verify`), and remove what
is neither a complete entry nor in use (:func:`gc`). :class:`~.store.Store` offers these as
methods; only what the store lays out itself is ever touched.

None of them follows a symbolic link: directories are walked with ``lstat`` semantics, a link where
the store keeps a directory of its own (a kind, a prefix, ``.tmp``, ``.work``, ``.quarantine``,
``.locks`` or a kind below them) is reported and left alone, and a link in place of an entry is a
corrupt entry, whose removal unlinks the link and never touches its target."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from crlm_bench.experiment.store.layout import (
    _KEY_RE,
    _KIND_RE,
    _LOCKS,
    _MARKER,
    _QUARANTINE,
    _TMP,
    _WORK,
    _entry_path,
    _is_store,
    _remove,
)
from crlm_bench.experiment.store.locks import KeyLocks
from crlm_bench.experiment.store.manifest import _check_entry
from crlm_bench.files import is_temp_name, temp_name_pid

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
    meta: dict | None = None  # the manifest's meta of a readable entry (e.g. test accuracy, threads)
    settings: dict | None = None  # the manifest's settings of a readable entry


@dataclass(frozen=True)
class Problem:
    """One problem found by :meth:`Store.verify`. A symbolic link where the store keeps a directory
    of its own has status ``"link"``, ``kind`` the place (e.g. ``training``, ``.tmp``) and no key."""

    kind: str
    key: str
    path: Path
    status: str
    message: str

    def __str__(self) -> str:
        where = f"{self.kind}/{self.key}" if self.key else self.kind
        return f"{where} ({self.status}): {self.message} [{self.path}]"


_LINK_MESSAGE = (
    "a symbolic link where the store keeps a directory of its own; the store does not follow it "
    "(ls, verify and gc skip what is behind it; reading or writing entries through it is refused). "
    "Replace it by a real directory."
)


def _children(directory: Path, *, top: bool = False) -> list[tuple[str, Path, os.stat_result]]:
    """The names in ``directory`` with their ``lstat``, sorted; nothing if it is not a real
    directory (a symbolic link to one is not followed, except for the root: ``top``)."""
    try:
        if not stat.S_ISDIR(os.stat(directory, follow_symlinks=top).st_mode):
            return []
        names = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        try:
            found.append((name, directory / name, os.lstat(directory / name)))
        except FileNotFoundError:  # removed meanwhile
            continue
    return found


def _is_dir(st: os.stat_result) -> bool:
    return stat.S_ISDIR(st.st_mode)


def _is_link(st: os.stat_result) -> bool:
    return stat.S_ISLNK(st.st_mode)


def _files(directory: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Every non-directory below ``directory`` with its ``lstat``, never descending into a link."""
    for _, path, st in _children(directory):
        if _is_dir(st):
            yield from _files(path)
        else:
            yield path, st


def _entry_dirs(root: Path, links: list[tuple[str, Path]] | None = None) -> Iterator[tuple[str, str, Path]]:
    """Directories laid out as entries, and symbolic links in their place (anything else under the
    root is ignored). Links in place of a kind or prefix directory are added to ``links``."""
    if not _is_store(root):
        return
    for kind, kind_dir, st in _children(root, top=True):
        if not _KIND_RE.fullmatch(kind):
            continue
        if _is_link(st):
            if links is not None:
                links.append((kind, kind_dir))
            continue
        for prefix, prefix_dir, pst in _children(kind_dir):
            if _is_link(pst) and len(prefix) == 2 and _KEY_RE.fullmatch(prefix):
                if links is not None:
                    links.append((f"{kind}/{prefix}", prefix_dir))
                continue
            for key, path, est in _children(prefix_dir):
                if (_is_dir(est) or _is_link(est)) and _KEY_RE.fullmatch(key) and key[:2] == prefix:
                    yield kind, key, path


def _workdirs(root: Path) -> Iterator[tuple[str, str, Path]]:
    """Workdirs (and symbolic links in their place) under real ``.work/<kind>`` directories."""
    if not _is_store(root):
        return
    for kind, kind_dir, _ in _children(root / _WORK):
        if _KIND_RE.fullmatch(kind):
            for key, path, st in _children(kind_dir):
                if (_is_dir(st) or _is_link(st)) and _KEY_RE.fullmatch(key):
                    yield kind, key, path


def _special_links(root: Path) -> list[tuple[str, Path]]:
    """Symbolic links in place of ``.tmp``, ``.work``, ``.quarantine``, ``.locks`` or a kind below
    them."""
    links = []
    for name in (_TMP, _WORK, _QUARANTINE, _LOCKS):
        path = root / name
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if _is_link(st):
            links.append((name, path))
        elif name != _TMP:
            links += [(f"{name}/{k}", p) for k, p, s in _children(path) if _is_link(s)]
    return links


def _warn_links(links: list[tuple[str, Path]], what: str) -> None:
    for where, path in links:
        log.warning("store %s: %s (%s) is %s", what, path, where, _LINK_MESSAGE)


def ls(root: Path, *, verify: bool = False) -> list[Listing]:
    """Every entry with its status, summary and size, and every workdir without an entry
    (status ``"working"``). ``verify=True`` hashes every file; otherwise sizes are checked."""
    rows, seen, links = [], set(), []
    for kind, key, path in _entry_dirs(root, links):
        seen.add((kind, key))
        check = _check_entry(path, kind, key, full=verify)
        meta = settings = None
        if check.manifest is not None:
            size = sum(f["size"] for f in check.manifest["files"].values())
            summary = check.manifest.get("summary", "")
            meta, settings = check.manifest.get("meta"), check.manifest.get("settings")
        else:
            size = sum(st.st_size for _, _, st in _children(path) if stat.S_ISREG(st.st_mode))
            summary = ""
        rows.append(Listing(kind, key, check.status, summary, size, path, check.problem, meta, settings))
    for kind, key, path in _workdirs(root):
        if (kind, key) not in seen:
            size = sum(st.st_size for _, st in _files(path) if stat.S_ISREG(st.st_mode))
            rows.append(Listing(kind, key, "working", "", size, path))
    _warn_links(links + _special_links(root), "ls")
    return rows


def verify(root: Path) -> list[Problem]:
    """Hash every file of every entry; the entries that are not complete, and the symbolic links
    in place of the store's own directories. Changes nothing."""
    problems, links = [], []
    for kind, key, path in _entry_dirs(root, links):
        check = _check_entry(path, kind, key, full=True)
        if check.status != "complete":
            problems.append(Problem(kind, key, path, check.status, check.problem or ""))
    links += _special_links(root)
    problems += [Problem(where, "", path, "link", _LINK_MESSAGE) for where, path in links]
    return problems


def _alive(pid: int) -> bool:
    """True if a process ``pid`` runs on this host (locks are local, so writers are too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def gc(root: Path, locks: KeyLocks, *, workdirs: bool = False) -> list[Path]:
    """Remove what is not a complete entry and not in use (its lock in ``locks`` is free); return
    the removed paths (see :meth:`Store.gc`). Never follows a symbolic link: one in place of an
    entry, a staging directory or a workdir is unlinked (its target untouched); one in place of a
    directory of the store's own is left alone, with a warning."""
    removed: list[Path] = []

    def rm(path: Path) -> None:
        if _remove(root, path):
            removed.append(path)

    if not _is_store(root):
        return removed
    links: list[tuple[str, Path]] = []
    for kind, key, path in list(_entry_dirs(root, links)):
        fd = locks.try_acquire(kind, key)
        if fd is None:
            continue
        try:
            if _check_entry(path, kind, key, full=True).status != "complete":
                rm(path)
        finally:
            locks.release(fd)

    for _, path, st in _children(root / _QUARANTINE):
        if _is_dir(st):  # a kind directory: remove what was moved aside into it
            for _, moved, _ in _children(path):
                rm(moved)
        elif not _is_link(st):
            rm(path)

    for name, path, _ in _children(root / _TMP):
        kind, _, rest = name.partition("--")
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
            continue  # its writer is alive: its temporary files are in use
        try:
            done = _check_entry(_entry_path(root, kind, key), kind, key, full=False).status == "complete"
            if workdirs or done:
                rm(path)
            else:  # keep the progress, remove what killed writers were writing
                for temp, _ in list(_files(path)):
                    if is_temp_name(temp.name):
                        rm(temp)
        finally:
            locks.release(fd)

    for name, path, st in _children(root, top=True):  # a killed creator's temporary store marker
        if name.startswith(f".{_MARKER}.") and is_temp_name(name) and not _is_dir(st):
            pid = temp_name_pid(name)
            if pid is None or not _alive(pid):
                rm(path)

    for kind, kind_dir, _ in _children(root / _LOCKS):
        for name, lock_path, st in _children(kind_dir):
            key = name[: -len(".lock")]
            if _is_dir(st) or not name.endswith(".lock"):
                continue
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
    _warn_links(links + _special_links(root), "gc left alone")
    if removed:
        log.info("store gc removed %d paths under %s", len(removed), root)
    return removed
