"""The :class:`Store`: reading, writing and computing entries, each under its key's lock (the
layout and guarantees are in the package docstring)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import secrets
import shutil
import socket
import stat
import warnings
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Union

from crlm_bench import __version__
from crlm_bench.experiment.store import maintenance
from crlm_bench.experiment.store.layout import (
    _FILE_RE,
    _KEY_RE,
    _KIND_RE,
    _LOCKS,
    _MARKER,
    _QUARANTINE,
    _TMP,
    _WORK,
    AUDIT_LOG,
    MANIFEST,
    STORE_FORMAT_VERSION,
    NotAStoreError,
    _entry_path,
    _is_store,
    _link_below,
    _link_error,
    _remove,
    _safe_dir,
    default_root,
)
from crlm_bench.experiment.store.locks import KeyLocks
from crlm_bench.experiment.store.maintenance import Listing, Problem
from crlm_bench.experiment.store.manifest import (
    CorruptEntryWarning,
    Entry,
    _Check,
    _check_entry,
    _json_copy,
    _new_manifest,
    _write_manifest,
)
from crlm_bench.files import (
    atomic_write,
    disk_full_cause,
    disk_full_error,
    fsync_dir,
    open_regular,
    sha256_file,
)

log = logging.getLogger(__package__)

_CHUNK = 1 << 20


class EntryExistsError(FileExistsError):
    """``put`` of a key that already has a complete entry, without ``replace=True``."""


class _Default:
    def __repr__(self) -> str:
        return "<store default>"


_DEFAULT = _Default()

FileSource = Union[bytes, bytearray, memoryview, "os.PathLike[str]"]


class Store:
    """Artifacts on disk under ``root`` (default :func:`default_root`), keyed by ``(kind, key)``.

    ``lock_timeout``: seconds :meth:`lock` waits by default (None: forever, logging progress).
    Safe across processes and threads; see the package docstring for the layout and guarantees.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *, lock_timeout: float | None = None):
        self.root = Path(root if root is not None else default_root()).expanduser().absolute()
        self.lock_timeout = lock_timeout
        self._locks = KeyLocks(self.root / _LOCKS, self._ensure_root)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def __reduce__(self) -> tuple[Any, ...]:  # picklable for process pools
        return (_make_store, (str(self.root), self.lock_timeout))

    # paths -----------------------------------------------------------------------------------

    @staticmethod
    def _check_kind_key(kind: str, key: str) -> None:
        if not isinstance(kind, str) or not _KIND_RE.fullmatch(kind):
            raise ValueError(
                f"store kind {kind!r} is not valid: use a lowercase identifier such as 'training'"
            )
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise ValueError(
                f"store key {key!r} is not valid: use 2-128 characters of letters, digits, "
                "'_', '.', '=' or '-' (a SHA-256 hex digest such as Cell.key)"
            )

    def path(self, kind: str, key: str) -> Path:
        """Directory of the entry ``(kind, key)`` (which may not exist)."""
        self._check_kind_key(kind, key)
        return _entry_path(self.root, kind, key)

    def _entry(self, kind: str, key: str) -> Path:
        """:meth:`path`, refused with :class:`StoreLinkError` if a directory above it (its kind or
        prefix) is a symbolic link: the store does not follow links out of its root."""
        path = self.path(kind, key)
        link = _link_below(self.root, path.parent)
        if link is not None:
            raise _link_error(link)
        return path

    def ensure_root(self) -> Path:
        """Create the store (its marker) if it does not exist yet; refuse a foreign directory."""
        self._ensure_root()
        return self.root

    def _ensure_root(self) -> None:
        """Create the root and its marker before anything is written under it; refuse to adopt
        a non-empty directory that is not a store."""
        marker = self.root / _MARKER
        if not marker.exists():
            self._is_store()  # raises NotAStoreError for a foreign, non-empty directory
            self.root.mkdir(parents=True, exist_ok=True)
            with atomic_write(marker, "w") as f:
                json.dump({"store_format": STORE_FORMAT_VERSION, "package_version": __version__}, f)

    def _is_store(self) -> bool:
        """True if ``root`` is a store, False if it is missing or empty; else NotAStoreError."""
        return _is_store(self.root)

    def check(self, *, missing_ok: bool = True) -> None:
        """Raise :class:`NotAStoreError` unless the root is a store or an empty directory, or
        (``missing_ok``, for commands that start a store) does not exist yet. A file, or a directory
        of other files, is never a store; ``missing_ok=False`` (for commands that only read or clean
        a store) refuses a missing root too, which is most often a mistyped path."""
        if self._is_store() or missing_ok or self.root.is_dir():
            return
        raise NotAStoreError(
            f"{self.root} is not a crlm-bench store: it does not exist. Check the path given "
            "(--store, $CRLM_STORE); a store is made by the first `crlm-bench train` or `profile` "
            "into it."
        )

    def _work_path(self, kind: str, key: str) -> Path:
        return self.root / _WORK / kind / key

    # locking ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, kind: str, key: str, timeout: float | None | _Default = _DEFAULT) -> Iterator[None]:
        """Hold the exclusive lock of ``(kind, key)`` across processes (``flock``).

        Re-entrant within one thread. Waits up to ``timeout`` seconds (``None``: forever; default:
        the store's ``lock_timeout``), logging who holds it, then raises :class:`LockTimeout`.
        A lock whose holder died is released by the kernel.
        """
        self._check_kind_key(kind, key)
        if isinstance(timeout, _Default):
            timeout = self.lock_timeout
        with self._locks.hold(kind, key, timeout):
            yield

    # reading ---------------------------------------------------------------------------------

    def get(self, kind: str, key: str) -> Entry | None:
        """The complete entry ``(kind, key)``, verified against its manifest, or None.

        A partial or corrupt entry is moved to ``.quarantine`` (under the key's lock) with a
        :class:`CorruptEntryWarning` naming it and the bad file, and None is returned so that it
        is recomputed.
        """
        path = self._entry(kind, key)
        check = _check_entry(path, kind, key)
        if check.status == "complete":
            return Entry(path, kind, key, check.manifest)
        if check.status == "missing":
            return None
        with self.lock(kind, key):
            check = _check_entry(path, kind, key)  # re-check: a writer may have replaced it
            if check.status == "complete":
                return Entry(path, kind, key, check.manifest)
            if check.status == "missing":
                return None
            self._quarantine(kind, key, check)
        return None

    def _quarantine(self, kind: str, key: str, check: _Check) -> Path:
        path = self._entry(kind, key)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        dest = _safe_dir(self.root, _QUARANTINE, kind) / f"{key}--{stamp}-{secrets.token_hex(4)}"
        os.rename(path, dest)  # a symbolic link is moved as a link: its target is not touched
        fsync_dir(path.parent)
        bad = f" (bad file: {check.bad_file})" if check.bad_file else ""
        message = (
            f"store entry {kind}/{key} at {path} is {check.status}: {check.problem}{bad}. "
            f"Moved aside to {dest}; it will be recomputed. (`Store.gc()` deletes moved-aside entries.)"
        )
        warnings.warn(
            CorruptEntryWarning(
                message, kind=kind, key=key, path=path, bad_file=check.bad_file, moved_to=dest
            ),
            stacklevel=3,
        )
        return dest

    # writing ---------------------------------------------------------------------------------

    def workdir(self, kind: str, key: str) -> Path:
        """A persistent scratch directory for resumable progress of entry ``(kind, key)``
        (intermediate checkpoints, partial results). It survives crashes and SIGKILL and is removed
        when the entry is completed by :meth:`put`. Hold :meth:`lock` while using it (as
        :meth:`get_or_create` does around ``create``); write into it with :func:`atomic_write`."""
        self._check_kind_key(kind, key)
        self._ensure_root()
        return _safe_dir(self.root, _WORK, kind, key)

    def put(
        self,
        kind: str,
        key: str,
        files: Mapping[str, FileSource],
        settings: Mapping[str, Any],
        meta: Mapping[str, Any] | None = None,
        *,
        summary: str = "",
        replace: bool = False,
    ) -> Entry:
        """Write the entry ``(kind, key)`` atomically and return it.

        ``files`` maps file names to contents (``bytes``) or to existing files (``pathlib.Path``,
        copied; files inside this entry's :meth:`workdir` are hard-linked instead). ``settings``
        and ``meta`` are JSON-able dicts recorded in the manifest; ``summary`` is a readable name
        (e.g. the cell id) shown by :meth:`ls`. An existing complete entry raises
        :class:`EntryExistsError` unless ``replace=True``; a partial or corrupt one is moved aside.
        The entry's workdir is removed once the entry is in place.
        """
        self._check_kind_key(kind, key)
        if not isinstance(files, Mapping):
            raise TypeError(
                f"Store.put: files must be a mapping of name to bytes or Path, got {type(files).__name__}"
            )
        for name, source in files.items():
            if not isinstance(name, str) or not _FILE_RE.fullmatch(name) or name == MANIFEST:
                raise ValueError(
                    f"Store.put: file name {name!r} is not valid: use a plain file name of letters, "
                    f"digits, '_', '.', '=', '-' (no directories, not starting with '.', not {MANIFEST!r})"
                )
            if not isinstance(source, (bytes, bytearray, memoryview, os.PathLike)):
                raise TypeError(
                    f"Store.put: file {name!r} must be bytes (its contents) or a pathlib.Path (a file "
                    f"to copy), got {type(source).__name__}"
                )
        settings = _json_copy("settings", dict(settings))
        meta = _json_copy("meta", dict(meta or {}))
        if not isinstance(summary, str):
            raise TypeError(f"Store.put: summary must be a str, got {type(summary).__name__}")

        final = self._entry(kind, key)
        with self.lock(kind, key):
            check = _check_entry(final, kind, key)
            if check.status == "complete" and not replace:
                raise EntryExistsError(
                    f"store entry {kind}/{key} already exists at {final}; use get() to read it, "
                    "or put(..., replace=True) / remove() to overwrite it"
                )
            if check.status in ("partial", "corrupt"):
                self._quarantine(kind, key, check)

            staging = _safe_dir(self.root, _TMP) / f"{kind}--{key}--{os.getpid()}-{secrets.token_hex(4)}"
            staging.mkdir()
            try:
                records = {
                    name: self._stage_file(staging / name, source, kind, key)
                    for name, source in files.items()
                }
                manifest = _new_manifest(kind, key, summary, settings, meta, records)
                _write_manifest(staging, manifest)  # written last
                fsync_dir(staging)
                _safe_dir(self.root, kind, key[:2])
                old = None
                if os.path.lexists(final):  # replace=True: move the old entry out of the way first
                    old = self.root / _TMP / f"{kind}--{key}--old-{secrets.token_hex(4)}"
                    os.rename(final, old)
                try:
                    os.rename(staging, final)
                except BaseException:
                    if old is not None:
                        os.rename(old, final)
                    raise
                fsync_dir(final.parent)
            except BaseException as error:
                shutil.rmtree(staging, ignore_errors=True)
                full = disk_full_cause(error)
                if full is not None:
                    raise disk_full_error(final, full) from error
                raise
            if old is not None:
                _remove(self.root, old)
            _remove(self.root, self._work_path(kind, key))
        self._audit(kind, key, summary)
        log.debug("stored %s/%s (%s) at %s", kind, key, summary, final)
        return Entry(final, kind, key, manifest)

    def _audit(self, kind: str, key: str, summary: str) -> None:
        """Append one line per completed entry to the store's log (one short O_APPEND write, so
        concurrent processes do not interleave): the record of what was computed, where and when."""
        line = json.dumps(
            {
                "time": datetime.now(UTC).isoformat(timespec="seconds"),
                "kind": kind,
                "key": key,
                "summary": summary,
                "host": socket.gethostname(),
                "pid": os.getpid(),
            }
        )
        path = self.root / AUDIT_LOG
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
        try:
            fd = os.open(path, flags, 0o644)  # a FIFO without a reader: ENXIO, never a hang
        except OSError as error:
            if error.errno not in (errno.ELOOP, errno.ENXIO):
                raise
            fd = None
        if fd is not None and not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            fd = None
        if fd is None:
            log.warning("store log %s is not a regular file; %s/%s is not recorded in it", path, kind, key)
            return
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def audit(self) -> list[dict[str, Any]]:
        """Every entry the store has completed, oldest first (see :meth:`_audit`)."""
        path = self.root / AUDIT_LOG
        if not path.is_file():
            return []
        with open_regular(path, follow_symlinks=False) as f:
            text = f.read().decode()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def _stage_file(self, dest: Path, source: FileSource, kind: str, key: str) -> dict[str, Any]:
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            with open(dest, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        src = Path(source)
        if not src.is_file():
            raise FileNotFoundError(f"Store.put: {src} is not a file (given for {dest.name!r})")
        work = self._work_path(kind, key).absolute()
        if src.absolute().is_relative_to(work) and stat.S_ISREG(os.lstat(src).st_mode):
            try:
                os.link(src, dest)  # no copy of a large checkpoint; the workdir goes away after
                digest, size = sha256_file(dest)
                fd = os.open(dest, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                return {"sha256": digest, "size": size}
            except OSError:
                dest.unlink(missing_ok=True)  # e.g. a file system without hard links: copy
        digest, size = hashlib.sha256(), 0
        with open_regular(src) as fin, open(dest, "xb") as fout:
            while chunk := fin.read(_CHUNK):
                digest.update(chunk)
                fout.write(chunk)
                size += len(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        return {"sha256": digest.hexdigest(), "size": size}

    def get_or_create(
        self,
        kind: str,
        key: str,
        create: Callable[[Path], Any],
        settings: Mapping[str, Any],
        *,
        summary: str = "",
    ) -> Entry:
        """The entry ``(kind, key)``, computing it with ``create`` if it is missing.

        ``create(workdir)`` gets the entry's persistent :meth:`workdir` (resume from what a killed
        earlier attempt left there) and returns ``files`` or ``(files, meta)`` as for :meth:`put`.
        It runs under the key's lock after a re-check, so concurrent callers — threads or
        processes — compute a key once and the others read that result. An existing entry whose
        settings differ from ``settings`` raises ValueError (a key scheme bug).
        """
        entry = self.get(kind, key)
        if entry is None:
            with self.lock(kind, key):
                entry = self.get(kind, key)
                if entry is None:
                    log.info("computing store entry %s/%s %s", kind, key, summary)
                    result = create(self.workdir(kind, key))
                    if isinstance(result, tuple) and len(result) == 2:
                        files, meta = result
                    elif isinstance(result, Mapping):
                        files, meta = result, {}
                    else:
                        raise TypeError(
                            f"create for {kind}/{key} must return files (a dict of name to bytes or "
                            f"Path) or (files, meta), got {type(result).__name__}"
                        )
                    return self.put(kind, key, files, settings, meta, summary=summary)
        wanted = _json_copy("settings", dict(settings))
        if entry.settings != wanted:
            raise ValueError(
                f"store entry {kind}/{key} at {entry.path} was created with other settings than "
                f"those given for the same key: stored {entry.settings}, given {wanted}. The key "
                "must be a hash of the settings; fix the caller (or remove the entry)."
            )
        return entry

    def remove(self, kind: str, key: str) -> bool:
        """Delete the entry ``(kind, key)`` and its workdir; True if there was an entry."""
        path = self._entry(kind, key)
        with self.lock(kind, key):
            existed = os.path.lexists(path)
            if existed:  # a symbolic link is moved and unlinked as a link: its target is not touched
                trash = _safe_dir(self.root, _TMP) / f"{kind}--{key}--rm-{secrets.token_hex(4)}"
                os.rename(path, trash)
                _remove(self.root, trash)
            _remove(self.root, self._work_path(kind, key))
        return existed

    # maintenance -----------------------------------------------------------------------------

    def ls(self, *, verify: bool = False) -> list[Listing]:
        """Every entry with its status, summary and size, and every workdir without an entry
        (status ``"working"``). ``verify=True`` hashes every file; otherwise sizes are checked."""
        return maintenance.ls(self.root, verify=verify)

    def verify(self) -> list[Problem]:
        """Hash every file of every entry; the entries that are not complete. Changes nothing."""
        return maintenance.verify(self.root)

    def gc(self, *, workdirs: bool = False) -> list[Path]:
        """Remove what is not a complete entry and not in use; return the removed paths.

        Only touches what the store lays out itself, and refuses (:class:`NotAStoreError`) a
        non-empty root without the store marker, so a mistyped root is never cleaned.

        Removes partial and corrupt entries (all files hashed), moved-aside entries, staging
        directories and temporary files left by killed writers (every name
        :func:`~crlm_bench.files.is_temp_name` knows; under a key's lock, or with a dead writer's
        pid), workdirs of completed entries, and unheld lock files. Workdirs of missing entries
        hold resumable progress and are kept unless ``workdirs=True``. Keys whose lock is held by
        someone are skipped. No symbolic link is followed: one in place of an entry is unlinked,
        one in place of a directory of the store's own is left alone with a warning.
        """
        return maintenance.gc(self.root, self._locks, workdirs=workdirs)


def _make_store(root: str, lock_timeout: float | None) -> Store:
    return Store(root, lock_timeout=lock_timeout)
