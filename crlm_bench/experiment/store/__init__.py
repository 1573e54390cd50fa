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

The store never follows a symbolic link below its root (the root itself may be one): a link in
place of an entry, or of a file in one, makes the entry corrupt (moved aside or removed as a link,
its target untouched); a link in place of one of the store's own directories (a kind, a prefix,
``.tmp``, ``.work``, ``.quarantine``, ``.locks``) is reported by ``verify`` and left alone by ``gc``,
and reading or writing entries through it raises :class:`StoreLinkError`. Only regular files are
read: a FIFO or device in an entry makes it corrupt instead of blocking. A write that fails for lack
of space raises :class:`~crlm_bench.files.DiskFullError` naming the file or entry, and leaves
nothing partial. A root that is a file is never a store (:class:`NotAStoreError`).

Checkpoints are written with :func:`save_tensors` and read with :func:`load_tensors`, which uses
``torch.load(weights_only=True)``: the store never unpickles arbitrary objects. Tables are Parquet
(:func:`save_frame`, :func:`load_frame`).

Modules: ``layout`` (names on disk, :func:`default_root`), ``serialise`` (tensor and table files),
``manifest`` (writing and checking an entry's manifest; :class:`Entry`), ``locks`` (the flock
locks), ``store`` (:class:`Store`), ``maintenance`` (ls, verify, gc). Import from this package.
"""

from __future__ import annotations

from crlm_bench.experiment.store.layout import (
    AUDIT_LOG,
    ENV_VAR,
    MANIFEST,
    STORE_FORMAT_VERSION,
    NotAStoreError,
    StoreLinkError,
    default_root,
)
from crlm_bench.experiment.store.locks import LockTimeout
from crlm_bench.experiment.store.maintenance import Listing, Problem
from crlm_bench.experiment.store.manifest import CorruptEntryWarning, Entry
from crlm_bench.experiment.store.serialise import (
    UnsafeCheckpointError,
    load_frame,
    load_tensors,
    save_frame,
    save_tensors,
)
from crlm_bench.experiment.store.store import EntryExistsError, Store
from crlm_bench.files import DiskFullError, NotARegularFileError, atomic_write, sha256_file

__all__ = [
    "STORE_FORMAT_VERSION",
    "MANIFEST",
    "ENV_VAR",
    "AUDIT_LOG",
    "default_root",
    "Store",
    "Entry",
    "Listing",
    "Problem",
    "CorruptEntryWarning",
    "LockTimeout",
    "EntryExistsError",
    "NotAStoreError",
    "StoreLinkError",
    "DiskFullError",
    "NotARegularFileError",
    "UnsafeCheckpointError",
    "atomic_write",
    "save_tensors",
    "load_tensors",
    "save_frame",
    "load_frame",
    "sha256_file",
]
