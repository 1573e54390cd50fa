"""The artifact store: checkpoints, profiles and training logs on disk, keyed by ``(kind, key)``.

``kind`` is a short name (``"training"``, keyed by ``Training.key``; ``"profile"``, keyed by
``Cell.key``); ``key`` is a content hash. The root is chosen by argument, else ``$CRLM_STORE``, else
``$XDG_CACHE_HOME/crlm-bench/store`` (``~/.cache/crlm-bench/store``); see :func:`default_root`.

Layout::

    root/
      .crlm-store.json                 marker: this directory is a store (ls/verify/gc need it)
      .crlm-log.jsonl                  one line per completed entry: what was computed, where, when
      <kind>/<key[:2]>/<key>/          a complete entry: its files and manifest.json
      .locks/<kind>/<key>.lock         flock(2) lock files, one per key
      .work/<kind>/<key>/              persistent scratch (resumable progress) of an entry
      .tmp/<kind>--<key>--<nonce>/     an entry being written (staging)
      .quarantine/<kind>/<key>--<time>-<nonce>/   partial or corrupt entries moved aside

Writing an entry (:meth:`Store.put`) stages every file in ``.tmp`` (fsync'ed), writes
``manifest.json`` last, then renames the staging directory to ``<kind>/<key[:2]>/<key>`` in one
``rename(2)``: an entry is either absent or complete, never half-visible, even after SIGKILL or a
power cut. An entry counts as complete only when its manifest exists and every file listed in it has
the recorded size and SHA-256, and no other file is present. :meth:`Store.get` checks this on every
read; an entry that fails is moved to ``.quarantine`` with a :class:`CorruptEntryWarning` and
reported missing, so it is recomputed — a corrupt entry is never returned.

``manifest.json``::

    {"format_version": 1, "kind": "training", "key": "<sha256>", "summary": "<cell id>",
     "created": "2026-01-01T00:00:00.000000+00:00", "package_version": "0.1.0",
     "settings": {...}, "meta": {...},
     "files": {"<name>": {"sha256": "<hex>", "size": <bytes>}, ...},
     "checksum": "<SHA-256 of the canonical JSON of the other fields>"}

Locks are ``flock`` locks on ``.locks/<kind>/<key>.lock``: released by the kernel when the holder
dies (no stale locks), re-entrant within one thread of one :class:`Store`. :meth:`Store.get_or_create`
takes the lock, re-checks, and computes only if the entry is still missing, so concurrent processes
compute a key once. Local file systems only (flock is unreliable on some network file systems).

Checkpoints are written with :func:`save_tensors` and read with :func:`load_tensors`, which uses
``torch.load(weights_only=True)``: the store never unpickles arbitrary objects. Tables are Parquet
(:func:`save_frame`, :func:`load_frame`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import socket
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Union

from crlm_bench import __version__

__all__ = [
    "STORE_FORMAT_VERSION",
    "MANIFEST",
    "ENV_VAR",
    "default_root",
    "Store",
    "Entry",
    "Listing",
    "Problem",
    "CorruptEntryWarning",
    "LockTimeout",
    "EntryExistsError",
    "NotAStoreError",
    "UnsafeCheckpointError",
    "atomic_write",
    "save_tensors",
    "load_tensors",
    "save_frame",
    "load_frame",
    "sha256_file",
]

log = logging.getLogger(__name__)

#: Version of the on-disk layout and manifest; recorded in every manifest.
STORE_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ENV_VAR = "CRLM_STORE"

_LOCKS, _WORK, _TMP, _QUARANTINE = ".locks", ".work", ".tmp", ".quarantine"
_MARKER = ".crlm-store.json"
#: append-only record of completed entries (kind, key, summary, host, pid, time)
AUDIT_LOG = ".crlm-log.jsonl"
_KIND_RE = re.compile(r"[a-z][a-z0-9_]*")
_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=-]{1,127}")
_FILE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=-]*")
_TEMP_FILE_RE = re.compile(r"\..+\.\d+\.[0-9a-f]{8}\.tmp")
_CHUNK = 1 << 20

class _Default:
    def __repr__(self) -> str:
        return "<store default>"


_DEFAULT = _Default()

FileSource = Union[bytes, bytearray, memoryview, "os.PathLike[str]"]


def default_root() -> Path:
    """``$CRLM_STORE`` if set, else ``$XDG_CACHE_HOME/crlm-bench/store``, else
    ``~/.cache/crlm-bench/store``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache).expanduser() if cache else Path.home() / ".cache"
    return base / "crlm-bench" / "store"


# ---------------------------------------------------------------------------------------------
# errors


class CorruptEntryWarning(UserWarning):
    """A store entry was partial or corrupt; it was moved aside and will be recomputed."""

    def __init__(self, message: str, *, kind: str = "", key: str = "", path: Path | None = None,
                 bad_file: str | None = None, moved_to: Path | None = None):
        super().__init__(message)
        self.kind, self.key, self.path = kind, key, path
        self.bad_file, self.moved_to = bad_file, moved_to


class LockTimeout(TimeoutError):
    """A store lock was not acquired within the timeout."""


class EntryExistsError(FileExistsError):
    """``put`` of a key that already has a complete entry, without ``replace=True``."""


class NotAStoreError(ValueError):
    """A directory that holds files but no store marker; maintenance refuses to touch it."""


class UnsafeCheckpointError(ValueError):
    """A checkpoint holds objects other than tensors and plain containers; it is not unpickled."""


# ---------------------------------------------------------------------------------------------
# atomic file I/O


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on success fsync it and ``os.replace`` it
    onto ``path``, on error remove it. Readers see the old file or the new one, never a mix."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    tmp = _temp_name(path)
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
    _fsync_dir(path.parent)


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """SHA-256 hex digest and size in bytes of the file at ``path``."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


_SAFE_LEAVES = (str, bytes, int, float, complex, bool, type(None))


def _check_tensor_tree(obj: Any, where: str, seen: set[int]) -> None:
    import torch

    if isinstance(obj, _SAFE_LEAVES) or type(obj) in (
        torch.Tensor, torch.nn.Parameter, torch.Size, torch.dtype, torch.device
    ):
        return
    if id(obj) in seen:
        return
    if type(obj) in (dict, OrderedDict):
        seen.add(id(obj))
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise UnsafeCheckpointError(
                    f"save_tensors: {where} has a key of type {type(k).__name__} ({k!r}); "
                    "use str or int keys so load_tensors (weights_only=True) can read it"
                )
            _check_tensor_tree(v, f"{where}[{k!r}]", seen)
        return
    if type(obj) in (list, tuple):
        seen.add(id(obj))
        for i, v in enumerate(obj):
            _check_tensor_tree(v, f"{where}[{i}]", seen)
        return
    kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
    raise UnsafeCheckpointError(
        f"save_tensors: {where} is a {kind}, which load_tensors (torch.load with weights_only=True) "
        "would refuse; store only tensors, numbers, strings, None and dict/list/tuple of them "
        "(convert numpy arrays with torch.from_numpy, objects to their state_dict())"
    )


def save_tensors(path: str | os.PathLike[str], obj: Any) -> None:
    """``torch.save(obj)`` to ``path`` atomically. ``obj`` may hold only tensors, numbers, strings,
    None and dict/list/tuple of them (a state dict, an optimizer state dict), so that
    :func:`load_tensors` can read it back without unpickling code; anything else is refused with
    :class:`UnsafeCheckpointError` before writing."""
    import torch

    _check_tensor_tree(obj, "obj", set())
    with atomic_write(path) as f:
        torch.save(obj, f)


def load_tensors(path: str | os.PathLike[str]) -> Any:
    """``torch.load(path, weights_only=True, map_location="cpu")``; a file holding arbitrary pickled
    objects is refused with :class:`UnsafeCheckpointError` (nothing in it is executed)."""
    import pickle

    import torch

    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()
        detail = next((line for line in reversed(first) if line.strip()), "")
        raise UnsafeCheckpointError(
            f"refusing to load {path}: it contains objects other than tensors and plain containers, "
            f"and the store never unpickles arbitrary objects (torch.load weights_only=True said: "
            f"{detail.strip()}). Re-create it with crlm_bench.experiment.store.save_tensors from "
            "plain data (state_dict(), tensors, numbers, strings)."
        ) from error


def save_frame(path: str | os.PathLike[str], df: Any) -> None:
    """Write a pandas DataFrame to ``path`` as Parquet (pyarrow), atomically."""
    with atomic_write(path) as f:
        df.to_parquet(f, engine="pyarrow")


def load_frame(path: str | os.PathLike[str]) -> Any:
    """Read a Parquet file written by :func:`save_frame` into a pandas DataFrame."""
    import pandas as pd

    return pd.read_parquet(path, engine="pyarrow")


# ---------------------------------------------------------------------------------------------
# entries


@dataclass(frozen=True)
class Entry:
    """A complete, verified store entry."""

    path: Path
    kind: str
    key: str
    manifest: dict[str, Any] = field(hash=False, repr=False)

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(sorted(self.manifest["files"]))

    def file(self, name: str) -> Path:
        """Path of the entry's file ``name``."""
        if name not in self.manifest["files"]:
            raise KeyError(
                f"store entry {self.kind}/{self.key} has no file {name!r}; its files are "
                f"{', '.join(self.files) or '(none)'}"
            )
        return self.path / name

    @property
    def settings(self) -> dict[str, Any]:
        return self.manifest["settings"]

    @property
    def meta(self) -> dict[str, Any]:
        return self.manifest["meta"]

    @property
    def summary(self) -> str:
        return self.manifest.get("summary", "")

    @property
    def created(self) -> str:
        return self.manifest["created"]

    @property
    def size(self) -> int:
        """Total bytes of the entry's files (manifest excluded)."""
        return sum(f["size"] for f in self.manifest["files"].values())


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


@dataclass(frozen=True)
class _Check:
    status: str  # missing | complete | partial | corrupt
    problem: str | None = None
    bad_file: str | None = None
    manifest: dict[str, Any] | None = None


def _check_entry(path: Path, kind: str, key: str, full: bool = True) -> _Check:
    """Check the entry directory at ``path``; ``full`` hashes every file, else sizes only."""
    if not path.is_dir():
        return _Check("missing")
    manifest_path = path / MANIFEST
    try:
        raw = manifest_path.read_bytes()
    except FileNotFoundError:
        return _Check("partial", "no manifest.json (the writer stopped before finishing)", MANIFEST)
    except OSError as error:
        return _Check("corrupt", f"manifest.json unreadable: {error}", MANIFEST)
    try:
        manifest = json.loads(raw)
        files = manifest["files"]
        if not isinstance(files, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("sha256"), str) and isinstance(v.get("size"), int)
            for v in files.values()
        ):
            raise ValueError("malformed 'files'")
        for name in ("settings", "meta", "created"):
            manifest[name]  # noqa: B018 (presence check)
    except (ValueError, KeyError, TypeError) as error:
        return _Check("corrupt", f"manifest.json is not a valid manifest ({error})", MANIFEST)
    if manifest.get("format_version") != STORE_FORMAT_VERSION:
        return _Check(
            "corrupt",
            f"manifest.json has store format {manifest.get('format_version')!r}; this package "
            f"reads format {STORE_FORMAT_VERSION}",
            MANIFEST,
        )
    if manifest.get("checksum") != _manifest_checksum(manifest):
        return _Check(
            "corrupt", "manifest.json does not match its own checksum (edited or damaged)", MANIFEST
        )
    if manifest.get("kind") != kind or manifest.get("key") != key:
        return _Check(
            "corrupt",
            f"manifest.json names {manifest.get('kind')}/{manifest.get('key')}, not {kind}/{key}",
            MANIFEST,
        )
    try:
        present = set(os.listdir(path))
    except OSError as error:
        return _Check("corrupt", f"entry directory unreadable: {error}")
    extra = sorted(present - set(files) - {MANIFEST})
    if extra:
        return _Check("corrupt", f"unexpected file {extra[0]!r} not in the manifest", extra[0])
    for name, info in sorted(files.items()):
        file_path = path / name
        try:
            if full:
                digest, size = sha256_file(file_path)
            else:
                digest, size = info["sha256"], file_path.stat().st_size
        except FileNotFoundError:
            return _Check("corrupt", f"file {name!r} listed in the manifest is missing", name)
        except OSError as error:
            return _Check("corrupt", f"file {name!r} unreadable: {error}", name)
        if size != info["size"]:
            return _Check(
                "corrupt", f"file {name!r} has {size} bytes, the manifest says {info['size']}", name
            )
        if digest != info["sha256"]:
            return _Check(
                "corrupt",
                f"file {name!r} has SHA-256 {digest[:16]}…, the manifest says {info['sha256'][:16]}…",
                name,
            )
    return _Check("complete", manifest=manifest)


def _manifest_checksum(manifest: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the manifest without its ``checksum`` field."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _json_copy(what: str, obj: Any) -> Any:
    try:
        return json.loads(json.dumps(obj, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"Store: {what} must be JSON-able (dicts with str keys, lists, str, finite numbers, "
            f"bool, None): {error}"
        ) from None


# ---------------------------------------------------------------------------------------------
# the store


class Store:
    """Artifacts on disk under ``root`` (default :func:`default_root`), keyed by ``(kind, key)``.

    ``lock_timeout``: seconds :meth:`lock` waits by default (None: forever, logging progress).
    Safe across processes and threads; see the module docstring for the layout and guarantees.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *, lock_timeout: float | None = None):
        self.root = Path(root if root is not None else default_root()).expanduser().absolute()
        self.lock_timeout = lock_timeout
        self._local = threading.local()

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
        return self.root / kind / key[:2] / key

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
        if (self.root / _MARKER).is_file():
            return True
        if not self.root.is_dir():
            return False
        # ignore a concurrent creator's temporary marker
        if not any(not p.name.startswith(f".{_MARKER}.") for p in self.root.iterdir()):
            return False
        if (self.root / _MARKER).is_file():  # a concurrent creator put it in place (then wrote more)
            return True
        raise NotAStoreError(
            f"{self.root} is not a crlm-bench store: it holds files but no {_MARKER}. Refusing to "
            "write, list or clean it; check the root argument or $CRLM_STORE (or, to use this "
            f"directory as a store anyway, create an empty file {_MARKER} in it)."
        )

    def _lock_path(self, kind: str, key: str) -> Path:
        return self.root / _LOCKS / kind / f"{key}.lock"

    def _work_path(self, kind: str, key: str) -> Path:
        return self.root / _WORK / kind / key

    # locking ---------------------------------------------------------------------------------

    def _held(self) -> dict[tuple[str, str], list[int]]:
        held = getattr(self._local, "held", None)
        if held is None:
            held = self._local.held = {}
        return held

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
        held = self._held()
        if (kind, key) in held:
            held[(kind, key)][1] += 1
            try:
                yield
            finally:
                held[(kind, key)][1] -= 1
            return
        fd = self._acquire(kind, key, timeout)
        held[(kind, key)] = [fd, 1]
        try:
            yield
        finally:
            del held[(kind, key)]
            self._release(fd)

    def _try_lock(self, kind: str, key: str) -> int | None:
        """Acquire without waiting; the fd, or None if another holder has it (or this thread)."""
        if (kind, key) in self._held():
            return None
        try:
            return self._acquire(kind, key, 0)
        except LockTimeout:
            return None

    def _acquire(self, kind: str, key: str, timeout: float | None) -> int:
        path = self._lock_path(kind, key)
        self._ensure_root()
        path.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        delay, next_log = 0.01, start
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
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
                    log.info("waiting for store lock %s/%s held by %s (%.0f s so far)",
                             kind, key, _holder(path), now - start)
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
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        info = f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        return fd

    @staticmethod
    def _release(fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # reading ---------------------------------------------------------------------------------

    def get(self, kind: str, key: str) -> Entry | None:
        """The complete entry ``(kind, key)``, verified against its manifest, or None.

        A partial or corrupt entry is moved to ``.quarantine`` (under the key's lock) with a
        :class:`CorruptEntryWarning` naming it and the bad file, and None is returned so that it
        is recomputed.
        """
        path = self.path(kind, key)
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
        path = self.path(kind, key)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        dest = self.root / _QUARANTINE / kind / f"{key}--{stamp}-{secrets.token_hex(4)}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(path, dest)
        _fsync_dir(path.parent)
        bad = f" (bad file: {check.bad_file})" if check.bad_file else ""
        message = (
            f"store entry {kind}/{key} at {path} is {check.status}: {check.problem}{bad}. "
            f"Moved aside to {dest}; it will be recomputed. (`Store.gc()` deletes moved-aside entries.)"
        )
        warnings.warn(
            CorruptEntryWarning(message, kind=kind, key=key, path=path, bad_file=check.bad_file,
                                moved_to=dest),
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
        path = self._work_path(kind, key)
        path.mkdir(parents=True, exist_ok=True)
        return path

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
                "Store.put: files must be a mapping of name to bytes or Path, got "
                f"{type(files).__name__}"
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

        final = self.path(kind, key)
        with self.lock(kind, key):
            check = _check_entry(final, kind, key)
            if check.status == "complete" and not replace:
                raise EntryExistsError(
                    f"store entry {kind}/{key} already exists at {final}; use get() to read it, "
                    "or put(..., replace=True) / remove() to overwrite it"
                )
            if check.status in ("partial", "corrupt"):
                self._quarantine(kind, key, check)

            staging = self.root / _TMP / f"{kind}--{key}--{os.getpid()}-{secrets.token_hex(4)}"
            staging.mkdir(parents=True)
            try:
                records = {
                    name: self._stage_file(staging / name, source, kind, key)
                    for name, source in files.items()
                }
                manifest = {
                    "format_version": STORE_FORMAT_VERSION,
                    "kind": kind,
                    "key": key,
                    "summary": summary,
                    "created": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
                    "package_version": __version__,
                    "settings": settings,
                    "meta": meta,
                    "files": records,
                }
                manifest["checksum"] = _manifest_checksum(manifest)
                with open(staging / MANIFEST, "x", encoding="utf-8") as f:  # written last
                    json.dump(manifest, f, indent=2, sort_keys=True, allow_nan=False)
                    f.write("\n")
                    f.flush()
                    os.fsync(f.fileno())
                _fsync_dir(staging)
                final.parent.mkdir(parents=True, exist_ok=True)
                old = None
                if final.exists():  # replace=True: move the old entry out of the way first
                    old = self.root / _TMP / f"{kind}--{key}--old-{secrets.token_hex(4)}"
                    os.rename(final, old)
                try:
                    os.rename(staging, final)
                except BaseException:
                    if old is not None:
                        os.rename(old, final)
                    raise
                _fsync_dir(final.parent)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            shutil.rmtree(self._work_path(kind, key), ignore_errors=True)
        self._audit(kind, key, summary)
        log.debug("stored %s/%s (%s) at %s", kind, key, summary, final)
        return Entry(final, kind, key, manifest)

    def _audit(self, kind: str, key: str, summary: str) -> None:
        """Append one line per completed entry to the store's log (one short O_APPEND write, so
        concurrent processes do not interleave): the record of what was computed, where and when."""
        line = json.dumps({"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "kind": kind,
                           "key": key, "summary": summary, "host": socket.gethostname(), "pid": os.getpid()})
        fd = os.open(self.root / AUDIT_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def audit(self) -> list[dict[str, Any]]:
        """Every entry the store has completed, oldest first (see :meth:`_audit`)."""
        path = self.root / AUDIT_LOG
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

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
        if src.absolute().is_relative_to(work):
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
        with open(src, "rb") as fin, open(dest, "xb") as fout:
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
        path = self.path(kind, key)
        with self.lock(kind, key):
            existed = path.exists()
            if existed:
                trash = self.root / _TMP / f"{kind}--{key}--rm-{secrets.token_hex(4)}"
                trash.parent.mkdir(parents=True, exist_ok=True)
                os.rename(path, trash)
                shutil.rmtree(trash, ignore_errors=True)
            shutil.rmtree(self._work_path(kind, key), ignore_errors=True)
        return existed

    # maintenance -----------------------------------------------------------------------------

    def _entry_dirs(self) -> Iterator[tuple[str, str, Path]]:
        """Directories laid out as entries (anything else under the root is ignored)."""
        if not self._is_store():
            return
        for kind_dir in sorted(self.root.iterdir()):
            if not (kind_dir.is_dir() and _KIND_RE.fullmatch(kind_dir.name)):
                continue
            for prefix in sorted(kind_dir.iterdir()):
                if not prefix.is_dir():
                    continue
                for path in sorted(prefix.iterdir()):
                    if path.is_dir() and _KEY_RE.fullmatch(path.name) and path.name[:2] == prefix.name:
                        yield kind_dir.name, path.name, path

    def _workdirs(self) -> Iterator[tuple[str, str, Path]]:
        base = self.root / _WORK
        if not self._is_store() or not base.is_dir():
            return
        for kind_dir in sorted(base.iterdir()):
            if kind_dir.is_dir() and _KIND_RE.fullmatch(kind_dir.name):
                for path in sorted(kind_dir.iterdir()):
                    if path.is_dir() and _KEY_RE.fullmatch(path.name):
                        yield kind_dir.name, path.name, path

    def ls(self, *, verify: bool = False) -> list[Listing]:
        """Every entry with its status, summary and size, and every workdir without an entry
        (status ``"working"``). ``verify=True`` hashes every file; otherwise sizes are checked."""
        rows, seen = [], set()
        for kind, key, path in self._entry_dirs():
            seen.add((kind, key))
            check = _check_entry(path, kind, key, full=verify)
            if check.manifest is not None:
                size = sum(f["size"] for f in check.manifest["files"].values())
                summary = check.manifest.get("summary", "")
            else:
                size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
                summary = ""
            rows.append(Listing(kind, key, check.status, summary, size, path, check.problem))
        for kind, key, path in self._workdirs():
            if (kind, key) not in seen:
                size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
                rows.append(Listing(kind, key, "working", "", size, path))
        return rows

    def verify(self) -> list[Problem]:
        """Hash every file of every entry; the entries that are not complete. Changes nothing."""
        problems = []
        for kind, key, path in self._entry_dirs():
            check = _check_entry(path, kind, key, full=True)
            if check.status != "complete":
                problems.append(Problem(kind, key, path, check.status, check.problem or ""))
        return problems

    def gc(self, *, workdirs: bool = False) -> list[Path]:
        """Remove what is not a complete entry and not in use; return the removed paths.

        Only touches what the store lays out itself, and refuses (:class:`NotAStoreError`) a
        non-empty root without the store marker, so a mistyped root is never cleaned.

        Removes partial and corrupt entries (all files hashed), moved-aside entries, staging
        directories and temporary files left by killed writers, workdirs of completed entries,
        and unheld lock files. Workdirs of missing entries hold resumable progress and are kept
        unless ``workdirs=True``. Keys whose lock is held by someone are skipped.
        """
        removed: list[Path] = []

        def rm(path: Path) -> None:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)

        if not self._is_store():
            return removed
        for kind, key, path in list(self._entry_dirs()):
            fd = self._try_lock(kind, key)
            if fd is None:
                continue
            try:
                if _check_entry(path, kind, key, full=True).status != "complete":
                    rm(path)
            finally:
                self._release(fd)

        quarantine = self.root / _QUARANTINE
        if quarantine.is_dir():
            for kind_dir in sorted(quarantine.iterdir()):
                for path in sorted(kind_dir.iterdir()) if kind_dir.is_dir() else [kind_dir]:
                    rm(path)

        tmp = self.root / _TMP
        if tmp.is_dir():
            for path in sorted(tmp.iterdir()):
                kind, _, rest = path.name.partition("--")
                key = rest.partition("--")[0]
                if not (_KIND_RE.fullmatch(kind) and _KEY_RE.fullmatch(key)):
                    continue  # not ours
                fd = self._try_lock(kind, key)
                if fd is None:
                    continue  # a writer of this key is alive
                try:
                    rm(path)
                finally:
                    self._release(fd)

        for kind, key, path in list(self._workdirs()):
            fd = self._try_lock(kind, key)
            if fd is None:
                continue
            try:
                done = _check_entry(self.path(kind, key), kind, key, full=False).status == "complete"
                if workdirs or done:
                    rm(path)
                else:
                    for temp in path.rglob("*.tmp"):
                        if _TEMP_FILE_RE.fullmatch(temp.name):
                            rm(temp)
            finally:
                self._release(fd)

        locks = self.root / _LOCKS
        if locks.is_dir():
            for lock_path in sorted(locks.glob("*/*.lock")):
                kind, key = lock_path.parent.name, lock_path.name[: -len(".lock")]
                if not (_KIND_RE.fullmatch(kind) and _KEY_RE.fullmatch(key)):
                    continue
                fd = self._try_lock(kind, key)
                if fd is None:
                    continue
                try:
                    lock_path.unlink(missing_ok=True)  # lockers re-check the inode after flock
                    removed.append(lock_path)
                finally:
                    self._release(fd)
        if removed:
            log.info("store gc removed %d paths under %s", len(removed), self.root)
        return removed


def _make_store(root: str, lock_timeout: float | None) -> Store:
    return Store(root, lock_timeout=lock_timeout)


def _holder(lock_path: Path) -> str:
    try:
        text = lock_path.read_text().strip()
    except OSError:
        text = ""
    return text or "another process"
