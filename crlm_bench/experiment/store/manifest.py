"""An entry's ``manifest.json``: writing it, and checking an entry directory against it.

The format is in the package docstring. :func:`_check_entry` decides whether an entry is complete
(every listed file present with its recorded size and SHA-256, no other file, the manifest intact and
naming this kind and key); :class:`Entry` is what a complete one is read as.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crlm_bench import __version__
from crlm_bench.experiment.store.layout import MANIFEST, STORE_FORMAT_VERSION
from crlm_bench.files import (
    NotARegularFileError,
    canonical_json,
    open_regular,
    sha256_file,
    stat_regular,
)


class CorruptEntryWarning(UserWarning):
    """A store entry was partial or corrupt; it was moved aside and will be recomputed."""

    def __init__(
        self,
        message: str,
        *,
        kind: str = "",
        key: str = "",
        path: Path | None = None,
        bad_file: str | None = None,
        moved_to: Path | None = None,
    ):
        super().__init__(message)
        self.kind, self.key, self.path = kind, key, path
        self.bad_file, self.moved_to = bad_file, moved_to


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


# ---------------------------------------------------------------------------------------------
# writing


def _new_manifest(
    kind: str, key: str, summary: str, settings: dict[str, Any], meta: dict[str, Any], files: dict[str, Any]
) -> dict[str, Any]:
    """The manifest of an entry created now, with its checksum."""
    manifest = {
        "format_version": STORE_FORMAT_VERSION,
        "kind": kind,
        "key": key,
        "summary": summary,
        "created": datetime.now(UTC).isoformat(timespec="microseconds"),
        "package_version": __version__,
        "settings": settings,
        "meta": meta,
        "files": files,
    }
    manifest["checksum"] = _manifest_checksum(manifest)
    return manifest


def _write_manifest(directory: Path, manifest: Mapping[str, Any]) -> None:
    """Create ``directory/manifest.json`` (it must not exist) and fsync it."""
    with open(directory / MANIFEST, "x", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True, allow_nan=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def _manifest_checksum(manifest: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the manifest without its ``checksum`` field."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return hashlib.sha256(canonical_json(body).encode("ascii")).hexdigest()


def _json_copy(what: str, obj: Any) -> Any:
    try:
        return json.loads(json.dumps(obj, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"Store: {what} must be JSON-able (dicts with str keys, lists, str, finite numbers, "
            f"bool, None): {error}"
        ) from None


# ---------------------------------------------------------------------------------------------
# checking


@dataclass(frozen=True)
class _Check:
    status: str  # missing | complete | partial | corrupt
    problem: str | None = None
    bad_file: str | None = None
    manifest: dict[str, Any] | None = None


def _check_entry(path: Path, kind: str, key: str, full: bool = True) -> _Check:
    """Check the entry directory at ``path``; ``full`` hashes every file, else sizes only.

    Only regular files are read, and no symbolic link is followed: an entry that is a link, or
    holds a link, FIFO, device or directory, is corrupt (and nothing blocks on it)."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return _Check("missing")
    if stat.S_ISLNK(mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return _Check(
            "corrupt",
            f"the entry is a symbolic link (to {target}); the store never follows links out of its root",
        )
    if not stat.S_ISDIR(mode):
        return _Check("corrupt", "the entry is not a directory")
    manifest_path = path / MANIFEST
    try:
        with open_regular(manifest_path, follow_symlinks=False) as f:
            raw = f.read()
    except FileNotFoundError:
        return _Check("partial", "no manifest.json (the writer stopped before finishing)", MANIFEST)
    except NotARegularFileError as error:
        return _Check("corrupt", f"manifest.json is not a regular file ({error.strerror})", MANIFEST)
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
                digest, size = sha256_file(file_path, follow_symlinks=False)
            else:
                digest, size = info["sha256"], stat_regular(file_path, follow_symlinks=False).st_size
        except FileNotFoundError:
            return _Check("corrupt", f"file {name!r} listed in the manifest is missing", name)
        except NotARegularFileError as error:
            return _Check("corrupt", f"file {name!r} is not a regular file ({error.strerror})", name)
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
