"""`--store` that is not a store: a file, or a mistyped path, is an error (exit 2), never an empty
listing; `crlm-bench store` reads an existing store, and train/profile may start one."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from crlm_bench import cli
from crlm_bench.experiment.store import Store

CELL = "synthetic-vgg6_narrow-untrained-s0-e0"


def _exits_2(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("action", ["ls", "verify", "gc"])
def test_store_commands_refuse_a_file(action: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"mine")
    err = _exits_2(["store", action, "--store", str(path)], capsys)
    assert f"{path} is not a crlm-bench store: it is a file" in err
    assert path.read_bytes() == b"mine"


@pytest.mark.parametrize("action", ["ls", "verify", "gc"])
def test_store_commands_refuse_a_missing_path(action: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / "mistyped"
    err = _exits_2(["store", action, "--store", str(path)], capsys)
    assert f"{path} is not a crlm-bench store: it does not exist" in err
    assert not path.exists()


@pytest.mark.parametrize("command", ["train", "profile", "show"])
def test_commands_with_cells_refuse_a_file(command: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"mine")
    assert "it is a file, not a directory" in _exits_2([command, CELL, "--store", str(path)], capsys)
    assert path.read_bytes() == b"mine"


def test_an_empty_directory_lists_as_an_empty_store_and_train_may_start_one(tmp_path: Path, capsys) -> None:
    assert cli.main(["store", "ls", "--store", str(tmp_path)]) == 0
    assert cli.main(["store", "verify", "--store", str(tmp_path)]) == 0
    assert "0 problem(s)" in capsys.readouterr().out
    fresh = tmp_path / "fresh"
    store = cli._store(argparse.Namespace(store=str(fresh)))  # as train and profile open it
    assert isinstance(store, Store) and store.root == fresh and not fresh.exists()
