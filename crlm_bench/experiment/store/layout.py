"""Names on disk: the store's format version, its directories and marker, what a valid kind, key
and file name look like, and what makes a directory a store (the layout is in the package
docstring); and how the store walks, creates and removes its directories without ever following a
symbolic link out of its root (:func:`_link_below`, :func:`_safe_dir`, :func:`_remove`)."""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import stat
from pathlib import Path

log = logging.getLogger(__package__)

#: Version of the on-disk layout and manifest; recorded in every manifest.
STORE_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ENV_VAR = "CRLM_STORE"
#: append-only record of completed entries (kind, key, summary, host, pid, time)
AUDIT_LOG = ".crlm-log.jsonl"

_LOCKS, _WORK, _TMP, _QUARANTINE = ".locks", ".work", ".tmp", ".quarantine"
_MARKER = ".crlm-store.json"
_KIND_RE = re.compile(r"[a-z][a-z0-9_]*")
_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=-]{1,127}")
_FILE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=-]*")


def default_root() -> Path:
    """``$CRLM_STORE`` if set, else ``$XDG_CACHE_HOME/crlm-bench/store``, else
    ``~/.cache/crlm-bench/store``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache).expanduser() if cache else Path.home() / ".cache"
    return base / "crlm-bench" / "store"


class NotAStoreError(ValueError):
    """A directory that holds files but no store marker, or a root that is not a directory (a file,
    or missing where a store must exist); maintenance refuses to touch it."""


class StoreLinkError(OSError):
    """A symbolic link where the store expects one of its own directories (a kind, a prefix, or
    ``.tmp``, ``.work``, ``.quarantine``, ``.locks``): the store never follows links out of its
    root, so it refuses to read, write or remove anything through it."""


def _link_error(path: Path) -> StoreLinkError:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return StoreLinkError(
        errno.ELOOP,
        f"{path} is a symbolic link (to {target}) where the store keeps a directory of its own; "
        "the store never follows links out of its root, so it neither reads nor changes what is "
        "there. Replace the link by a real directory (move the linked files in), or point the "
        "store's root (--store, $CRLM_STORE) at the other file system.",
        str(path),
    )


def _entry_path(root: Path, kind: str, key: str) -> Path:
    """Directory of the entry ``(kind, key)`` under ``root`` (kind and key already checked)."""
    return root / kind / key[:2] / key


def _is_store(root: Path) -> bool:
    """True if ``root`` is a store, False if it is missing or empty; else NotAStoreError (a
    non-empty directory without the marker, or something other than a directory)."""
    if (root / _MARKER).is_file():
        return True
    if not root.is_dir():
        if not os.path.lexists(root):
            return False
        if not root.is_dir():  # asked again: a concurrent creator may have made it in between
            raise NotAStoreError(
                f"{root} is not a crlm-bench store: it is a file, not a directory. Check the root "
                "argument, --store or $CRLM_STORE."
            )
    # ignore a concurrent creator's temporary marker
    if not any(not p.name.startswith(f".{_MARKER}.") for p in root.iterdir()):
        return False
    if (root / _MARKER).is_file():  # a concurrent creator put it in place (then wrote more)
        return True
    raise NotAStoreError(
        f"{root} is not a crlm-bench store: it holds files but no {_MARKER}. Refusing to "
        "write, list or clean it; check the root argument or $CRLM_STORE (or, to use this "
        f"directory as a store anyway, create an empty file {_MARKER} in it)."
    )


def _link_below(root: Path, path: Path) -> Path | None:
    """The first component of ``path`` below ``root`` that is a symbolic link, else None (the
    components after a missing one are not looked at)."""
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(mode):
            return current
    return None


def _safe_dir(root: Path, *parts: str) -> Path:
    """``root/parts…``, each component below ``root`` a real directory, created if missing;
    :class:`StoreLinkError` where one is a symbolic link (nothing is created through it)."""
    path = root
    for part in parts:
        path = path / part
        try:
            path.mkdir()
        except FileExistsError:
            pass
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            raise _link_error(path)
        if not stat.S_ISDIR(mode):
            raise NotADirectoryError(
                errno.ENOTDIR,
                f"{path} is in the store's way: the store keeps a directory there. Move it away.",
                str(path),
            )
    return path


def _inside(root: Path, path: Path) -> bool:
    """True if ``path`` itself (its last component not followed) lies inside ``root``."""
    real_root = os.path.realpath(root)
    parent = os.path.realpath(path.parent)
    return parent == real_root or parent.startswith(real_root.rstrip(os.sep) + os.sep)


def _remove(root: Path, path: Path) -> bool:
    """Remove ``path`` if it lies inside ``root`` without a symbolic link on the way: a directory
    with everything in it (links in it are unlinked, never followed), anything else (a file, a
    link, a FIFO) unlinked. False, with a warning, for a path reached through a link or outside
    ``root``; False if it is already gone."""
    if _link_below(root, path.parent) is not None or not _inside(root, path):
        log.warning("store: not removing %s: it is reached through a symbolic link", path)
        return False
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(mode):
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    return True
