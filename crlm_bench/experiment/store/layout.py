"""Names on disk: the store's format version, its directories and marker, what a valid kind, key
and file name look like, and what makes a directory a store (the layout is in the package
docstring)."""

from __future__ import annotations

import os
import re
from pathlib import Path

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
#: the name :func:`crlm_bench.files.temp_name` gives a file being written by ``atomic_write``
_TEMP_FILE_RE = re.compile(r"\..+\.\d+\.[0-9a-f]{8}\.tmp")


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
    """A directory that holds files but no store marker; maintenance refuses to touch it."""


def _entry_path(root: Path, kind: str, key: str) -> Path:
    """Directory of the entry ``(kind, key)`` under ``root`` (kind and key already checked)."""
    return root / kind / key[:2] / key


def _is_store(root: Path) -> bool:
    """True if ``root`` is a store, False if it is missing or empty; else NotAStoreError."""
    if (root / _MARKER).is_file():
        return True
    if not root.is_dir():
        return False
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
