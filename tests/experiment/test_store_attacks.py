"""The store against what it did not make: symbolic links out of its root, FIFOs and devices in place
of its files, temporary files of killed writers, a full disk, and a root that is not a directory.

Every operation must return (a FIFO never blocks it), and nothing outside the store may change."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from crlm_bench.experiment.store import (
    MANIFEST,
    CorruptEntryWarning,
    NotAStoreError,
    Store,
    atomic_write,
    load_frame,
    load_tensors,
    save_tensors,
    sha256_file,
)
from crlm_bench.files import temp_name

KEY = hashlib.sha256(b"attacked key").hexdigest()
GOOD = hashlib.sha256(b"good key").hexdigest()
SETTINGS = {"what": "test"}
HANG = 10  # seconds after which an operation that should return at once is taken to hang


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "store")
    store.put("training", GOOD, {"w.bin": b"good"}, SETTINGS)  # a real store, with one entry
    return store


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    return path


def _snapshot(top: Path) -> dict[str, object]:
    """Everything under ``top`` (links not followed): path → bytes, ``"dir"`` or link target."""
    found: dict[str, object] = {}
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(top))
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                found[rel] = "dir"
            else:
                found[rel] = path.read_bytes()
    return found


def _put(store: Store, key: str = KEY):
    return store.put("profile", key, {"a.bin": b"alpha", "b.txt": b"beta"}, SETTINGS)


def _returns(call: Callable[[], object], fifos: list[Path]) -> object:
    """``call()``'s result (or its exception, re-raised), failing the test if it does not return
    within HANG seconds: then the FIFOs are opened from both ends so that the stuck call ends."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG)
    if thread.is_alive():
        for fifo in fifos:  # unblock a reader (needs a writer) or a writer (needs a reader)
            with contextlib.suppress(OSError):
                reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                os.close(writer)
                os.close(reader)
        thread.join(HANG)
        pytest.fail(f"blocked on a FIFO: {fifos}")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome.get("value")


# ---------------------------------------------------------------------------------------------
# symbolic links out of the store


def _link_kind(store: Store, outside: Path) -> Path:
    (outside / KEY[:2] / KEY).mkdir(parents=True)  # laid out like a partial profile entry
    (outside / KEY[:2] / KEY / "a.bin").write_bytes(b"precious")
    (store.root / "profile").symlink_to(outside)
    return store.root / "profile"


def _link_prefix(store: Store, outside: Path) -> Path:
    (outside / KEY).mkdir()
    (outside / KEY / "a.bin").write_bytes(b"precious")
    (store.root / "profile").mkdir()
    (store.root / "profile" / KEY[:2]).symlink_to(outside)
    return store.root / "profile" / KEY[:2]


def _link_quarantine_kind(store: Store, outside: Path) -> Path:
    (outside / "moved-aside").mkdir()
    (outside / "moved-aside" / "a.bin").write_bytes(b"precious")
    (outside / "notes.txt").write_bytes(b"precious")
    (store.root / ".quarantine").mkdir()
    (store.root / ".quarantine" / "profile").symlink_to(outside)
    return store.root / ".quarantine" / "profile"


def _link_quarantine(store: Store, outside: Path) -> Path:
    (outside / "profile" / "moved").mkdir(parents=True)
    (outside / "profile" / "moved" / "a.bin").write_bytes(b"precious")
    (store.root / ".quarantine").symlink_to(outside)
    return store.root / ".quarantine"


def _link_tmp(store: Store, outside: Path) -> Path:
    (outside / f"profile--{KEY}--1-abcd").mkdir()
    (outside / f"profile--{KEY}--1-abcd" / "a.bin").write_bytes(b"precious")
    (store.root / ".tmp").rmdir()  # left empty by put
    (store.root / ".tmp").symlink_to(outside)
    return store.root / ".tmp"


def _link_work_kind(store: Store, outside: Path) -> Path:
    (outside / KEY).mkdir()
    (outside / KEY / "epoch3.pt").write_bytes(b"precious")
    temp_name(outside / KEY / "epoch4.pt").write_bytes(b"precious")
    (store.root / ".work").mkdir()
    (store.root / ".work" / "profile").symlink_to(outside)
    return store.root / ".work" / "profile"


def _link_locks_kind(store: Store, outside: Path) -> Path:
    (outside / f"{KEY}.lock").write_bytes(b"precious")
    (store.root / ".locks" / "profile").symlink_to(outside)
    return store.root / ".locks" / "profile"


LINKED_DIRECTORIES = [
    _link_kind,
    _link_prefix,
    _link_quarantine_kind,
    _link_quarantine,
    _link_tmp,
    _link_work_kind,
    _link_locks_kind,
]


@pytest.mark.parametrize("make_link", LINKED_DIRECTORIES, ids=lambda f: f.__name__[1:])
def test_maintenance_never_follows_a_linked_directory_out_of_the_store(
    store: Store, outside: Path, make_link, caplog: pytest.LogCaptureFixture
) -> None:
    link = make_link(store, outside)
    before = _snapshot(outside)
    with caplog.at_level(logging.WARNING):
        removed = store.gc(workdirs=True)
    assert _snapshot(outside) == before and link.is_symlink()
    assert not any(p == link or link in p.parents for p in removed)
    assert str(link) in caplog.text  # reported, left alone
    assert [(r.key, r.status) for r in store.ls(verify=True)] == [(GOOD, "complete")]
    problems = store.verify()
    assert [(p.path, p.status) for p in problems] == [(link, "link")]
    assert "symbolic link" in str(problems[0]) and not str(problems[0]).startswith("/")
    assert _snapshot(outside) == before and store.get("training", GOOD) is not None


@pytest.mark.parametrize("make_link", [_link_kind, _link_prefix], ids=["kind", "prefix"])
def test_entries_are_not_read_written_or_removed_through_a_linked_directory(
    store: Store, outside: Path, make_link
) -> None:
    make_link(store, outside)
    before = _snapshot(outside)
    for call in (
        lambda: store.get("profile", KEY),
        lambda: _put(store),
        lambda: store.remove("profile", KEY),
        lambda: store.get_or_create("profile", KEY, lambda work: {"r": b"x"}, SETTINGS),
    ):
        with pytest.raises(OSError, match="is a symbolic link.*never follows links"):
            call()
    assert _snapshot(outside) == before


def test_a_linked_workdir_directory_is_neither_used_nor_emptied(store: Store, outside: Path) -> None:
    _link_work_kind(store, outside)
    before = _snapshot(outside)
    with pytest.raises(OSError, match="is a symbolic link"):
        store.workdir("profile", KEY)
    _put(store)  # completing an entry removes its workdir: not through the link
    assert store.remove("profile", KEY)
    assert _snapshot(outside) == before


def test_linked_quarantine_and_tmp_are_not_written_through(store: Store, outside: Path) -> None:
    (store.root / ".quarantine").symlink_to(outside)
    entry = _put(store)
    (entry.path / MANIFEST).unlink()  # partial: get would move it aside
    with pytest.raises(OSError, match="is a symbolic link"):
        store.get("profile", KEY)
    assert entry.path.is_dir() and _snapshot(outside) == {}
    (store.root / ".quarantine").unlink()
    (store.root / ".tmp").rmdir()
    (store.root / ".tmp").symlink_to(outside)
    with pytest.raises(OSError, match="is a symbolic link"):
        _put(store, GOOD.replace("a", "b", 1))
    assert _snapshot(outside) == {}


def _complete_copy_outside(store: Store, outside: Path) -> Path:
    entry = _put(store)
    copy = outside / "entry"
    entry.path.rename(copy)  # a complete, valid entry, outside the store
    return copy


def test_a_link_in_place_of_an_entry_is_corrupt_and_only_the_link_is_removed(
    store: Store, outside: Path
) -> None:
    target = _complete_copy_outside(store, outside)
    link = store.path("profile", KEY)
    link.symlink_to(target)
    before = _snapshot(outside)
    (row,) = [r for r in store.ls() if r.key == KEY]
    assert row.status == "corrupt" and "symbolic link" in row.problem
    assert [p.key for p in store.verify()] == [KEY]
    with pytest.warns(CorruptEntryWarning, match="symbolic link"):
        assert store.get("profile", KEY) is None  # never read through the link
    assert not os.path.lexists(link)  # the link was moved aside, as a link
    removed = store.gc()
    assert any(".quarantine" in p.parts for p in removed)
    assert _snapshot(outside) == before


def test_gc_unlinks_a_link_in_place_of_an_entry(store: Store, outside: Path) -> None:
    target = _complete_copy_outside(store, outside)
    link = store.path("profile", KEY)
    link.symlink_to(target)
    before = _snapshot(outside)
    assert link in store.gc()
    assert not os.path.lexists(link) and _snapshot(outside) == before


@pytest.mark.parametrize("name", ["a.bin", MANIFEST])
def test_a_link_inside_an_entry_makes_it_corrupt(store: Store, outside: Path, name: str) -> None:
    entry = _put(store)
    (outside / name).write_bytes((entry.path / name).read_bytes())  # same bytes: hashes match
    (entry.path / name).unlink()
    (entry.path / name).symlink_to(outside / name)
    before = _snapshot(outside)
    assert [p.key for p in store.verify()] == [KEY]
    with pytest.warns(CorruptEntryWarning, match=f"bad file: {name}"):
        assert store.get("profile", KEY) is None
    store.gc()
    assert _snapshot(outside) == before


def test_a_store_reached_through_a_linked_root_works(store: Store, tmp_path: Path) -> None:
    (tmp_path / "alias").symlink_to(store.root)
    aliased = Store(tmp_path / "alias")
    entry = _put(aliased)
    (entry.path / MANIFEST).unlink()
    assert aliased.path("profile", KEY) in aliased.gc()
    assert [r.key for r in aliased.ls()] == [GOOD] and aliased.verify() == []


# ---------------------------------------------------------------------------------------------
# FIFOs and devices in place of files


def _fifo(path: Path) -> Path:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


def test_hashing_refuses_fifos_and_devices(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path / "pipe")
    with pytest.raises(OSError, match="FIFO.*not a regular file"):
        _returns(lambda: sha256_file(fifo), [fifo])
    with pytest.raises(OSError, match="character device.*not a regular file"):
        sha256_file("/dev/null")


@pytest.mark.parametrize("name", ["a.bin", MANIFEST])
def test_a_fifo_in_an_entry_is_corrupt_quarantined_and_nothing_blocks(store: Store, name: str) -> None:
    fifo = _fifo(_put(store).path / name)
    rows = _returns(lambda: store.ls(verify=True), [fifo])
    assert {r.key: r.status for r in rows}[KEY] == "corrupt"
    assert [p.key for p in _returns(store.verify, [fifo])] == [KEY]
    with pytest.warns(CorruptEntryWarning, match=f"bad file: {name}"):
        assert _returns(lambda: store.get("profile", KEY), [fifo]) is None
    entry = _returns(lambda: store.get_or_create("profile", KEY, lambda w: {"r": b"new"}, SETTINGS), [])
    assert entry.file("r").read_bytes() == b"new"  # recomputed


def test_gc_removes_an_entry_holding_a_fifo_without_blocking(store: Store) -> None:
    fifo = _fifo(_put(store).path / "a.bin")
    assert store.path("profile", KEY) in _returns(store.gc, [fifo])
    assert not fifo.parent.exists()


def test_checkpoints_and_tables_are_not_read_from_fifos(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path / "model.pt")
    for load in (load_tensors, load_frame):
        with pytest.raises(OSError, match="FIFO"):
            _returns(lambda load=load: load(fifo), [fifo])


def test_a_fifo_as_the_store_log_does_not_block_put(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    fifo = _fifo(store.root / ".crlm-log.jsonl")
    with caplog.at_level(logging.WARNING):
        entry = _returns(lambda: _put(store), [fifo])
    assert store.get("profile", KEY) == entry and "not a regular file" in caplog.text


@pytest.mark.parametrize("kind_of_file", ["fifo", "link"])
def test_a_lock_path_that_is_not_a_regular_file_is_replaced(
    store: Store, outside: Path, kind_of_file: str
) -> None:
    lock = store.root / ".locks" / "profile" / f"{KEY}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    if kind_of_file == "fifo":
        _fifo(lock)
    else:
        (outside / "target").write_bytes(b"precious")
        lock.symlink_to(outside / "target")
    before = _snapshot(outside)
    _returns(lambda: _put(store), [lock])
    assert store.get("profile", KEY) is not None and lock.is_file() and not lock.is_symlink()
    assert _snapshot(outside) == before


# ---------------------------------------------------------------------------------------------
# temporary files of killed writers


def test_gc_removes_every_temporary_name_of_a_killed_writer_but_not_a_live_one(store: Store) -> None:
    run = store.workdir("profile", KEY) / "run"
    run.mkdir()
    (run / "epoch_0002.pt").write_bytes(b"progress")
    fd, legacy = tempfile.mkstemp(prefix=".epoch_0003.pt.", suffix=".tmp", dir=run)  # older trainers
    os.close(fd)
    current = temp_name(run / "epoch_0003.pt")
    current.write_bytes(b"half")
    temps = {Path(legacy), current}
    with store.lock("profile", KEY):  # a live writer: its temporary files are in use
        assert not temps & set(store.gc())
    assert all(p.exists() for p in temps)
    removed = set(store.gc())  # its writer was killed
    assert temps <= removed and not any(p.exists() for p in temps)
    assert (run / "epoch_0002.pt").read_bytes() == b"progress"  # resumable progress is kept


def test_gc_removes_the_temporary_marker_of_a_dead_creator_only(store: Store) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    live = temp_name(store.root / ".crlm-store.json")  # this process is alive
    stale = live.with_name(live.name.replace(f".{os.getpid()}.", f".{int(dead.stdout)}."))
    stale.write_text("{}")
    live.write_text("{}")
    removed = store.gc()
    assert stale in removed and not stale.exists()
    assert live not in removed and live.exists()


# ---------------------------------------------------------------------------------------------
# a full disk


def _fsync_on_full_disk(fd: int) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_is_reported_with_the_path_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ckpt.pt"
    save_tensors(path, {"w": b"old"})
    monkeypatch.setattr(os, "fsync", _fsync_on_full_disk)
    with pytest.raises(OSError, match=f"no space left on device at {path}") as info:
        save_tensors(path, {"w": b"new"})
    assert info.value.errno == errno.ENOSPC
    with pytest.raises(OSError, match=f"no space left on device at {tmp_path / 'notes.txt'}"):
        with atomic_write(tmp_path / "notes.txt", "w") as f:
            f.write("text")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.pt"] and load_tensors(path) == {"w": b"old"}


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_torchs_failed_write_on_a_full_disk_is_reported_with_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    real_save = torch.save

    def save_on_full_disk(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 the first bytes")
        full = open("/dev/full", "wb")  # the genuine failure: torch's RuntimeError, not OSError
        try:
            real_save(obj, full, *args, **kwargs)
        finally:
            with contextlib.suppress(OSError):
                full.close()

    path = tmp_path / "ckpt.pt"
    monkeypatch.setattr(torch, "save", save_on_full_disk)
    with pytest.raises(OSError, match=f"no space left on device at {path}"):
        save_tensors(path, {"w": torch.zeros(10_000)})
    assert os.listdir(tmp_path) == []


def test_a_full_disk_while_putting_names_the_entry_and_leaves_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "fsync", _fsync_on_full_disk)
    with pytest.raises(OSError, match=f"no space left on device at {store.path('profile', KEY)}"):
        _put(store)
    monkeypatch.undo()
    assert store.get("profile", KEY) is None and os.listdir(store.root / ".tmp") == []


# ---------------------------------------------------------------------------------------------
# a root that is not a directory


def test_a_file_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"mine")
    store = Store(path)
    for call in (store.ls, store.verify, store.gc, lambda: _put(store), store.check):
        with pytest.raises(NotAStoreError, match="is a file, not a directory"):
            call()
    assert path.read_bytes() == b"mine"


def test_a_missing_root_is_a_store_only_for_commands_that_make_one(tmp_path: Path) -> None:
    Store(tmp_path / "missing").check()  # train and profile start a store there
    Store(tmp_path).check(missing_ok=False)  # an empty directory is an empty store
    with pytest.raises(NotAStoreError, match="does not exist"):
        Store(tmp_path / "missing").check(missing_ok=False)
    assert not (tmp_path / "missing").exists()


def test_a_linked_workdir_file_is_copied_into_the_entry(store: Store, outside: Path) -> None:
    (outside / "weights.pt").write_bytes(b"outside")

    def create(work: Path):
        (work / "weights.pt").symlink_to(outside / "weights.pt")
        return {"weights.pt": work / "weights.pt"}

    entry = store.get_or_create("profile", KEY, create, SETTINGS)
    assert not entry.file("weights.pt").is_symlink() and store.get("profile", KEY) == entry
    assert entry.file("weights.pt").read_bytes() == b"outside"
    assert os.stat(outside / "weights.pt").st_nlink == 1  # the entry shares no inode with it
