"""The artifact store: atomic entries, verification, locking across processes, maintenance, and
safe checkpoint I/O.

One file (about 650 lines, above the project's ~500) for the store package's public face: most
tests attack one guarantee through Store's methods (kill, corrupt, link, race), and the cases of
one attack read best beside each other."""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections import OrderedDict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crlm_bench import __version__
from crlm_bench.experiment.cell import Cell, Training
from crlm_bench.experiment.store import (
    MANIFEST,
    STORE_FORMAT_VERSION,
    CorruptEntryWarning,
    EntryExistsError,
    LockTimeout,
    NotAStoreError,
    Store,
    UnsafeCheckpointError,
    atomic_write,
    default_root,
    load_frame,
    load_tensors,
    save_frame,
    save_tensors,
)
from crlm_bench.files import temp_name

WORKER = Path(__file__).with_name("_store_worker.py")
REPO = Path(__file__).resolve().parents[2]
KEY = hashlib.sha256(b"one key").hexdigest()
KEY2 = hashlib.sha256(b"another key").hexdigest()
SETTINGS = {"what": "test"}
TIMEOUT = 20  # seconds any subprocess step may take before the test fails


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


def _put(store: Store, key: str = KEY, **files: bytes):
    return store.put("profile", key, files or {"a.bin": b"alpha", "b.txt": b"beta"}, SETTINGS, {"n": 1})


def _worker(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def _reap(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(TIMEOUT)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def _flip_byte(path: Path, offset: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0xFF
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------------------------------------
# root


def test_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CRLM_STORE", str(tmp_path / "env"))
    assert default_root() == tmp_path / "env"
    assert Store().root == tmp_path / "env"
    assert Store(tmp_path / "arg").root == tmp_path / "arg"
    monkeypatch.delenv("CRLM_STORE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_root() == tmp_path / "xdg" / "crlm-bench" / "store"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_root() == tmp_path / "home" / ".cache" / "crlm-bench" / "store"


# ---------------------------------------------------------------------------------------------
# put and get


def test_put_then_get(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * 3_000_000)
    cell = Cell(Training("cifar10", "resnet18", "baseline", 0, 200))
    entry = store.put(
        "profile",
        cell.key,
        {"log.txt": b"hello", "big.bin": source},
        cell.to_dict(),
        {"accuracy": 0.9},
        summary=cell.id,
    )
    assert entry.path == store.root / "profile" / cell.key[:2] / cell.key
    source.write_bytes(b"changed")  # the entry holds a copy
    got = store.get("profile", cell.key)
    assert got == entry
    assert got.file("log.txt").read_bytes() == b"hello"
    assert got.file("big.bin").read_bytes() == b"x" * 3_000_000
    assert got.files == ("big.bin", "log.txt")
    assert Cell.from_dict(got.settings) == cell
    assert got.meta == {"accuracy": 0.9} and got.summary == cell.id and got.size == 3_000_005
    manifest = json.loads((got.path / MANIFEST).read_text())
    assert manifest["format_version"] == STORE_FORMAT_VERSION
    assert manifest["package_version"] == __version__
    assert manifest["files"]["log.txt"] == {"sha256": hashlib.sha256(b"hello").hexdigest(), "size": 5}
    assert manifest["created"].endswith("+00:00") and len(manifest["checksum"]) == 64
    with pytest.raises(KeyError, match="has no file 'nope'.*big.bin, log.txt"):
        got.file("nope")


def test_get_missing_is_none(store: Store) -> None:
    assert store.get("profile", KEY) is None
    assert not store.root.exists()  # reading creates nothing


def test_put_refuses_existing_entry_unless_replace(store: Store) -> None:
    _put(store)
    with pytest.raises(EntryExistsError, match="replace=True"):
        _put(store)
    entry = store.put("profile", KEY, {"c.bin": b"new"}, SETTINGS, replace=True)
    assert store.get("profile", KEY).files == ("c.bin",) == entry.files
    assert store.remove("profile", KEY) and store.get("profile", KEY) is None
    assert not store.remove("profile", KEY)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda s: s.put("Profile", KEY, {}, {}), ValueError, "kind"),
        (lambda s: s.put("profile", "../etc", {}, {}), ValueError, "key"),
        (lambda s: s.put("profile", KEY, {"../x": b""}, {}), ValueError, "file name"),
        (lambda s: s.put("profile", KEY, {MANIFEST: b""}, {}), ValueError, "file name"),
        (lambda s: s.put("profile", KEY, {"x": "text"}, {}), TypeError, "bytes"),
        (lambda s: s.put("profile", KEY, {"x": b""}, {"t": (1, {2})}), TypeError, "JSON-able"),
        (
            lambda s: s.put("profile", KEY, {"x": Path("/nonexistent/file")}, {}),
            FileNotFoundError,
            "not a file",
        ),
    ],
)
def test_put_validates_its_arguments(store: Store, call, error, words) -> None:
    with pytest.raises(error, match=words):
        call(store)
    assert store.get("profile", KEY) is None


# ---------------------------------------------------------------------------------------------
# corruption is detected, moved aside, and recomputed


def _get_expecting_warning(store: Store, key: str = KEY, match: str = "") -> CorruptEntryWarning:
    with pytest.warns(CorruptEntryWarning, match=match) as record:
        assert store.get("profile", key) is None
    assert len(record) == 1
    return record[0].message


def test_flipped_byte_is_detected_and_recomputed(store: Store) -> None:
    entry = _put(store)
    _flip_byte(entry.file("b.txt"), 2)
    warning = _get_expecting_warning(store, match=rf"profile/{KEY}.*corrupt.*'b\.txt'.*SHA-256")
    assert warning.bad_file == "b.txt" and warning.key == KEY
    assert warning.moved_to.is_dir() and not entry.path.exists()
    # gone means missing: get_or_create recomputes it, and then it is good
    entry = store.get_or_create("profile", KEY, lambda work: {"b.txt": b"recomputed"}, SETTINGS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.get("profile", KEY).file("b.txt").read_bytes() == b"recomputed"


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    which=st.sampled_from(["a.bin", "b.txt", MANIFEST]), offset=st.integers(0, 10**4), bit=st.integers(0, 7)
)
def test_any_flipped_bit_is_never_returned(tmp_path: Path, which: str, offset: int, bit: int) -> None:
    # the manifest carries its own checksum, so a flip anywhere in the entry is caught
    store = Store(tmp_path / f"s{which}{offset}{bit}")
    path = _put(store).path / which
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 1 << bit
    path.write_bytes(bytes(data))
    _get_expecting_warning(store)


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda e: (e.path / MANIFEST).unlink(), "partial: no manifest.json"),
        (lambda e: (e.path / MANIFEST).write_text("{not json"), "not a valid manifest"),
        (
            lambda e: (e.path / MANIFEST).write_text(
                (e.path / MANIFEST).read_text().replace('"n": 1', '"n": 2')
            ),
            "its own checksum",
        ),
        (lambda e: e.file("a.bin").unlink(), "'a.bin' listed in the manifest is missing"),
        (lambda e: e.file("a.bin").write_bytes(b"alph"), "'a.bin' has 4 bytes"),
        (lambda e: (e.path / "stray.bin").write_bytes(b""), "unexpected file 'stray.bin'"),
    ],
    ids=["no-manifest", "garbled-manifest", "edited-manifest", "missing-file", "truncated", "extra"],
)
def test_partial_or_damaged_entry_is_treated_as_missing(store: Store, damage, words) -> None:
    entry = _put(store)
    damage(entry)
    _get_expecting_warning(store, match=words)
    calls = []
    store.get_or_create("profile", KEY, lambda work: calls.append(1) or {"a.bin": b"again"}, SETTINGS)
    assert calls == [1]
    assert store.get("profile", KEY).file("a.bin").read_bytes() == b"again"


def test_entry_of_another_key_is_corrupt(store: Store) -> None:
    entry = _put(store)
    other = store.path("profile", KEY2)
    other.parent.mkdir(parents=True)
    os.rename(entry.path, other)
    _get_expecting_warning(store, KEY2, match="names profile/")


# ---------------------------------------------------------------------------------------------
# atomicity


def test_failed_put_leaves_nothing_visible(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    original, calls = Store._stage_file, []

    def failing(self, dest, source, kind, key):
        calls.append(dest.name)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(self, dest, source, kind, key)

    monkeypatch.setattr(Store, "_stage_file", failing)
    with pytest.raises(OSError, match="disk full"):
        _put(store)
    assert calls == ["a.bin", "b.txt"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no partial entry to warn about: simply missing
        assert store.get("profile", KEY) is None
    assert not store.path("profile", KEY).exists()
    assert not any((store.root / ".tmp").iterdir())


def test_put_killed_midway_leaves_nothing_visible(store: Store) -> None:
    proc = _worker("stall-in-put", str(store.root), "profile", KEY)
    try:
        staging = Path(json.loads(proc.stdout.readline())["staged"])
        assert (staging / "a.bin").exists()  # killed with one file staged, no manifest
        proc.send_signal(signal.SIGKILL)
        proc.wait(TIMEOUT)
    finally:
        _reap(proc)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.get("profile", KEY) is None
    assert store.ls() == [] and store.verify() == []
    assert staging in store.gc() and not staging.exists()


def test_atomic_write_keeps_old_contents_on_error(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as f:
            f.write("new, half written")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["file.txt"]
    with atomic_write(target, "w") as f:
        f.write("new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["file.txt"]


# ---------------------------------------------------------------------------------------------
# get_or_create, workdirs, locking


def test_failed_create_keeps_its_progress(store: Store) -> None:
    def fail(work: Path):
        (work / "epoch1.pt").write_bytes(b"progress")
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        store.get_or_create("training", KEY, fail, SETTINGS)
    assert store.get("training", KEY) is None
    entry = store.get_or_create(
        "training", KEY, lambda work: {"m": (work / "epoch1.pt").read_bytes()}, SETTINGS
    )
    assert entry.file("m").read_bytes() == b"progress"


def test_get_or_create_computes_once_and_links_workdir_files(store: Store) -> None:
    calls = []

    def create(work: Path):
        calls.append(work)
        (work / "model.pt").write_bytes(b"weights")
        return {"model.pt": work / "model.pt", "log.txt": b"log"}, {"accuracy": 0.5}

    entry = store.get_or_create("training", KEY, create, SETTINGS, summary="run")
    again = store.get_or_create("training", KEY, create, SETTINGS)
    assert len(calls) == 1 and again == entry
    assert entry.meta == {"accuracy": 0.5} and entry.file("model.pt").read_bytes() == b"weights"
    assert not calls[0].exists()  # the workdir is removed once the entry is complete
    with pytest.raises(ValueError, match="other settings"):
        store.get_or_create("training", KEY, create, {"what": "else"})
    with pytest.raises(TypeError, match=r"\(files, meta\)"):
        store.get_or_create("training", KEY2, lambda work: [b"x"], SETTINGS)


def test_workdir_survives_sigkill_and_resumes(store: Store) -> None:
    proc = _worker("die-in-create", str(store.root), "training", KEY)
    proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == -signal.SIGKILL
    assert store.get("training", KEY) is None
    assert [(r.key, r.status) for r in store.ls()] == [(KEY, "working")]

    def resume(work: Path):
        progress = (work / "progress.txt").read_text()  # left by the killed process
        return {"result.txt": f"resumed after {progress}".encode()}

    entry = store.get_or_create("training", KEY, resume, SETTINGS)  # its lock died with it
    assert entry.file("result.txt").read_text() == "resumed after epoch 1 done"
    assert not (store.root / ".work" / "training" / KEY).exists()


def test_two_processes_compute_once_and_share_the_result(store: Store, tmp_path: Path) -> None:
    counter, go = tmp_path / "count.txt", tmp_path / "go"
    procs = [
        _worker("create", str(store.root), "profile", KEY, str(counter), str(go), "0.5") for _ in range(2)
    ]
    go.touch()
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, err
        outs.append(json.loads(out))
    assert len(counter.read_text().splitlines()) == 1  # computed once
    assert outs[0]["result"] == outs[1]["result"] and outs[0]["meta"] == outs[1]["meta"]
    assert outs[0]["result"] == f"computed by {outs[0]['meta']['pid']}"
    assert store.get("profile", KEY).file("result.txt").read_text() == outs[0]["result"]


def test_threads_compute_once(store: Store) -> None:
    calls, results = [], []

    def create(work: Path):
        calls.append(1)
        time.sleep(0.2)
        return {"r": b"once"}

    threads = [
        threading.Thread(
            target=lambda: results.append(
                store.get_or_create("profile", KEY, create, SETTINGS).file("r").read_bytes()
            )
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert calls == [1] and results == [b"once"] * 3


def test_lock_excludes_other_processes_until_released(store: Store) -> None:
    proc = _worker("hold", str(store.root), "profile", KEY, stdin=subprocess.PIPE)
    try:
        line = proc.stdout.readline()
        assert json.loads(line)["locked"], proc.stderr.read()
        start = time.monotonic()
        with pytest.raises(LockTimeout, match=rf"profile/{KEY}.*held by pid {proc.pid}"):
            with store.lock("profile", KEY, timeout=0.3):
                pass
        assert 0.25 < time.monotonic() - start < 5
        with store.lock("profile", KEY2, timeout=0.3):  # other keys are free
            pass
        proc.stdin.close()  # the holder leaves its lock
        with store.lock("profile", KEY, timeout=TIMEOUT):
            pass
    finally:
        _reap(proc)


def test_lock_of_a_killed_process_is_released(store: Store) -> None:
    proc = _worker("hold", str(store.root), "profile", KEY, stdin=subprocess.PIPE)
    try:
        assert json.loads(proc.stdout.readline())["locked"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(TIMEOUT)
        with store.lock("profile", KEY, timeout=TIMEOUT):
            pass
    finally:
        _reap(proc)


def test_lock_is_reentrant_and_store_pickles(store: Store) -> None:
    import pickle

    with store.lock("profile", KEY, timeout=0):
        with store.lock("profile", KEY, timeout=0):
            _put(store)  # put takes the lock too
    assert pickle.loads(pickle.dumps(store)).root == store.root


# ---------------------------------------------------------------------------------------------
# ls, verify, gc


def test_ls_verify_gc(store: Store) -> None:
    keys = {
        name: hashlib.sha256(name.encode()).hexdigest()
        for name in ["good", "corrupt", "partial", "working", "busy"]
    }
    good = _put(store, keys["good"])
    store.workdir("profile", keys["good"])  # orphaned: its entry is complete
    _flip_byte(_put(store, keys["corrupt"]).file("a.bin"))
    (_put(store, keys["partial"]).path / MANIFEST).unlink()
    work = store.workdir("profile", keys["working"])  # progress of an entry not yet made
    (work / "epoch3.pt").write_bytes(b"progress")
    killed = temp_name(work / "epoch4.pt")  # a killed atomic_write left its temporary file
    killed.write_bytes(b"half")
    (store.root / ".tmp" / f"profile--{keys['working']}--1-abcd").mkdir(parents=True)  # killed put
    _flip_byte(_put(store, keys["busy"]).file("b.txt"))

    quick = {r.key: r.status for r in store.ls()}
    by_key = {r.key: r for r in store.ls(verify=True)}
    names = {v: k for k, v in keys.items()}
    assert {names[k]: r.status for k, r in by_key.items()} == {
        "good": "complete",
        "corrupt": "corrupt",
        "partial": "partial",
        "working": "working",
        "busy": "corrupt",
    }
    assert quick[keys["corrupt"]] == "complete"  # ls without verify checks sizes only
    assert by_key[keys["good"]].size == 9 and "a.bin" in by_key[keys["corrupt"]].problem

    problems = store.verify()
    assert sorted(names[p.key] for p in problems) == ["busy", "corrupt", "partial"]
    assert all(str(p).startswith(f"profile/{p.key} (") for p in problems)
    assert store.get("profile", keys["good"]) == good  # verify changes nothing

    with store.lock("profile", keys["busy"]):  # in use: gc leaves it alone
        removed = store.gc()
    removed_names = {p.name for p in removed}
    assert store.path("profile", keys["corrupt"]) in removed
    assert store.path("profile", keys["partial"]) in removed
    assert store.root / ".work" / "profile" / keys["good"] in removed
    assert killed.name in removed_names
    assert f"profile--{keys['working']}--1-abcd" in removed_names
    assert store.path("profile", keys["busy"]).exists()
    assert (work / "epoch3.pt").exists()  # resumable progress is kept
    assert store.get("profile", keys["good"]) == good
    assert {names[r.key]: r.status for r in store.ls(verify=True)} == {
        "good": "complete",
        "working": "working",
        "busy": "corrupt",
    }

    with pytest.warns(CorruptEntryWarning):
        assert store.get("profile", keys["busy"]) is None  # moved aside to .quarantine
    removed = store.gc(workdirs=True)
    assert work in removed and any(".quarantine" in p.parts for p in removed)
    assert [names[r.key] for r in store.ls()] == ["good"] and store.verify() == []
    assert store.gc() == [] or all(p.suffix == ".lock" for p in store.gc())


def test_maintenance_refuses_a_directory_that_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "documents" / "ab" / "abc").mkdir(parents=True)
    store = Store(tmp_path)
    calls = (store.ls, store.verify, store.gc, lambda: _put(store), lambda: store.workdir("profile", KEY))
    for call in calls:
        with pytest.raises(NotAStoreError, match="not a crlm-bench store"):
            call()
    assert (tmp_path / "documents" / "ab" / "abc").is_dir()
    assert Store(tmp_path / "missing").gc() == [] and Store(tmp_path / "missing").ls() == []


def test_a_concurrent_creator_finishing_mid_check_is_not_a_foreign_directory(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two threads open a fresh store: the other one puts the marker in place (and its first lock
    directory) between this one's look for the marker and its look at the directory's contents."""
    listing, root, pending = Path.iterdir, store.root, [True]

    def creator_finishes_first(self):
        if pending and str(self) == str(root):
            pending.clear()
            Store(root).ensure_root()
            (root / ".locks").mkdir()
        return listing(self)

    root.mkdir()
    monkeypatch.setattr(Path, "iterdir", creator_finishes_first)
    assert store.ensure_root() == store.root
    entry = store.get_or_create("profile", KEY, lambda work: {"r": b"once"}, SETTINGS)
    assert entry.file("r").read_bytes() == b"once"


def test_gc_ignores_what_the_store_did_not_make(store: Store) -> None:
    _put(store)
    foreign = [
        store.root / "notes.txt",
        store.root / "profile" / "zz" / "not-a-key-dir",
        store.root / "profile" / "README",
    ]
    foreign[1].mkdir(parents=True)
    foreign[0].write_text("mine")
    foreign[2].write_text("mine")
    store.gc()
    assert all(p.exists() for p in foreign)
    assert [r.key for r in store.ls()] == [KEY]


# ---------------------------------------------------------------------------------------------
# checkpoints and tables


def test_tensors_round_trip(tmp_path: Path) -> None:
    import torch

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    obj = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": 3,
        "accuracy": 0.5,
        "rng": torch.get_rng_state(),
        "shape": torch.Size([2, 3]),
        "dtype": torch.float64,
        "names": ["a", ("b", None)],
        "ordered": OrderedDict(x=1),
    }
    path = tmp_path / "ckpt.pt"
    save_tensors(path, obj)
    back = load_tensors(path)
    assert back["epoch"] == 3 and back["names"] == ["a", ("b", None)] and back["dtype"] is torch.float64
    assert torch.equal(back["model"]["weight"], model.state_dict()["weight"])
    assert back["optimizer"]["param_groups"] == optimizer.state_dict()["param_groups"]
    assert os.listdir(tmp_path) == ["ckpt.pt"]


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",))


def test_arbitrary_pickles_are_refused(tmp_path: Path) -> None:
    import argparse

    import torch

    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "payload": _Evil(marker)}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"refusing to load .*evil\.pt.*never unpickles"):
        load_tensors(path)
    assert not marker.exists()  # nothing in the file was executed
    torch.save(argparse.Namespace(lr=0.1), path)
    with pytest.raises(UnsafeCheckpointError, match="save_tensors"):
        load_tensors(path)


def test_save_tensors_refuses_what_load_tensors_would(tmp_path: Path) -> None:
    import numpy as np

    path = tmp_path / "x.pt"
    with pytest.raises(UnsafeCheckpointError, match=r"obj\['state'\]\[1\] is a numpy.ndarray.*from_numpy"):
        save_tensors(path, {"state": [1, np.zeros(2)]})
    with pytest.raises(UnsafeCheckpointError, match=r"obj is a .*_Evil"):
        save_tensors(path, _Evil(tmp_path / "m"))
    with pytest.raises(UnsafeCheckpointError, match="key of type tuple"):
        save_tensors(path, {(1, 2): 3})
    assert not path.exists()


def test_frames_round_trip(tmp_path: Path) -> None:
    import pandas as pd

    df = pd.DataFrame(
        {"probe": ["input", "layer1", "fc"], "mapc": [0.1, 2.5, float("nan")], "depth": [0, 5, 18]},
        index=pd.Index([10, 11, 12], name="row"),
    )
    path = tmp_path / "profile.parquet"
    save_frame(path, df)
    pd.testing.assert_frame_equal(load_frame(path), df)
    assert os.listdir(tmp_path) == ["profile.parquet"]


def test_checkpoint_through_the_store(store: Store) -> None:
    import torch

    def create(work: Path):
        save_tensors(work / "model.pt", {"w": torch.arange(3.0)})
        return {"model.pt": work / "model.pt"}, {"epochs": 1}

    entry = store.get_or_create("training", KEY, create, SETTINGS)
    assert torch.equal(load_tensors(entry.file("model.pt"))["w"], torch.arange(3.0))


def test_a_root_created_between_the_checks_is_not_taken_for_a_file(tmp_path, monkeypatch) -> None:
    """The race three threads hit: the root is missing when asked whether it is a directory and is
    there when asked whether it exists, because another process has just created it."""
    from crlm_bench.experiment.store import layout

    root = tmp_path / "store"
    real = os.path.lexists

    def created_meanwhile(path):
        if Path(path) == root:
            root.mkdir(exist_ok=True)
        return real(path)

    monkeypatch.setattr(layout.os.path, "lexists", created_meanwhile)
    assert layout._is_store(root) is False  # an empty directory: not yet a store, no error
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(layout.NotAStoreError, match="it is a file"):
        layout._is_store(file)
