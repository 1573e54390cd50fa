"""``crlm-bench grid``: a budget's cells, which of them the store holds, and the counts (no computing)."""

from __future__ import annotations

import json
import re

import pytest

from crlm_bench import cli
from crlm_bench.experiment.store import MANIFEST, Store
from crlm_bench.replication.budgets import get_budget

BUDGET = "smoke"  # 12 cells, 8 training runs (the checkpoint series shares one)


@pytest.fixture(scope="module")
def cells():
    return get_budget(BUDGET).all_cells()


@pytest.fixture
def store(tmp_path, cells):
    """A store holding one cell's profile and the checkpoint series' training run, both fake but
    complete entries (manifest and checksums right)."""
    store = Store(tmp_path / "store")
    profiled = cells[0]
    store.put(
        "profile",
        profiled.key,
        {"profile.parquet": b"not really parquet"},
        profiled.to_dict(),
        {"threads": 3, "device": "cpu"},
        summary=profiled.id,
    )
    series = get_budget(BUDGET).checkpoint_runs[0][0].training
    store.put("training", series.key, {"epoch_0005.pt": b"weights"}, series.to_dict(), summary="series")
    return store


def grid(capsys, *args: str) -> tuple[int, str]:
    code = cli.main(["grid", "--budget", BUDGET, *args])
    return code, capsys.readouterr().out


def listed(capsys, store: Store) -> dict:
    code, out = grid(capsys, "--json", "--store", str(store.root))
    assert code == 0
    return json.loads(out)


def test_json_lists_every_cell_of_the_budget_with_its_settings(capsys, store, cells):
    doc = listed(capsys, store)
    assert doc["budget"] == BUDGET and doc["store"] == str(store.root)
    assert [c["id"] for c in doc["cells"]] == [c.id for c in cells]
    for row, cell in zip(doc["cells"], cells):
        assert row["key"] == cell.key and row["training_key"] == cell.training.key
        assert (row["epochs"], row["at"]) == (cell.training.epochs, cell.at)
        assert (row["points"], row["neighbours"]) == (cell.measurement.points, cell.measurement.neighbours)
        assert (row["dataset"], row["model"], row["recipe"]) == (
            cell.training.dataset,
            cell.training.model,
            cell.training.recipe,
        )
    series = [c["id"] for c in doc["cells"] if c["checkpoint_series"]]
    assert series == [c.id for c in get_budget(BUDGET).checkpoint_runs[0]]
    assert doc["checkpoint_runs"] == [series]


def test_json_reports_the_stored_profile_and_training_run_and_counts_the_rest(capsys, store, cells):
    doc = listed(capsys, store)
    stored = [c["id"] for c in doc["cells"] if c["profile_stored"]]
    assert stored == [cells[0].id]
    assert all(c["profile"] == "missing" for c in doc["cells"][1:])
    series_key = get_budget(BUDGET).checkpoint_runs[0][0].training.key
    for row in doc["cells"]:
        assert row["training_stored"] == (row["training_key"] == series_key)
        assert row["training"] == ("stored" if row["training_stored"] else "missing")
    runs = {c.training.key for c in cells}
    # the profiled cell's run is not needed; the series' run is stored: the others are to compute
    to_train = runs - {series_key, cells[0].training.key}
    assert doc["counts"] == {
        "cells": len(cells),
        "stored": 1,
        "to_compute": len(cells) - 1,
        "training_runs": len(runs),
        "training_runs_stored": 1,
        "training_runs_to_compute": len(to_train),
    }
    assert (len(cells), len(runs), len(to_train)) == (12, 8, 6)
    assert not any(c["change"] for c in doc["cells"])


def test_the_thread_count_that_made_each_artefact_is_listed(capsys, store, cells):
    """The series' run predates the record (no threads in its meta); the profile says 3."""
    rows = {c["key"]: c for c in listed(capsys, store)["cells"]}
    assert rows[cells[0].key]["profile_threads"] == 3
    assert all(r["training_threads"] is None for r in rows.values())
    assert all(r["profile_threads"] is None for k, r in rows.items() if k != cells[0].key)
    code, out = grid(capsys, "--list", "--store", str(store.root))
    assert code == 0 and "threads (train/profile)" in out
    assert re.search(re.escape(cells[0].id) + r" .*\| -/3 +\|", out)


def test_list_shows_a_row_per_cell_and_the_summary_line(capsys, store, cells):
    code, out = grid(capsys, "--list", "--store", str(store.root))
    assert code == 0
    rows = {}
    for line in out.splitlines():
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if len(parts) == 9 and parts[0] in {c.id for c in cells}:
            rows[parts[0]] = parts
    assert list(rows) == [c.id for c in cells]
    first = rows[cells[0].id]
    assert first[1] == cells[0].key[:12] and first[2] == cells[0].training.key[:12]
    assert first[3] == "stored"
    assert all(r[3] == "missing" for cid, r in rows.items() if cid != cells[0].id)
    checkpoint = next(c for c in cells if c.at != c.training.epochs)
    assert rows[checkpoint.id][5] == f"{checkpoint.at}/{checkpoint.training.epochs}"
    assert rows[checkpoint.id][6:] == [
        str(checkpoint.measurement.points),
        str(checkpoint.measurement.neighbours),
        "-/-",  # nothing of it stored, so no thread count
    ]
    assert (
        "12 cells: 1 stored, 11 to compute; 6 distinct training runs to compute (8 in the budget, 1 stored)"
        in out
    )


def test_an_empty_or_absent_store_has_everything_to_compute(capsys, tmp_path, cells):
    code, out = grid(capsys, "--list", "--store", str(tmp_path / "nothing-here"))
    assert code == 0
    assert re.search(r"12 cells: 0 stored, 12 to compute; 8 distinct training runs to compute", out)
    assert not (tmp_path / "nothing-here").exists()  # a listing creates nothing


def test_a_partial_entry_is_not_stored(capsys, store, cells):
    partial = store.path("profile", cells[1].key)
    partial.mkdir(parents=True)
    (partial / "profile.parquet").write_bytes(b"half")  # no manifest: the writer died
    doc = listed(capsys, store)
    assert doc["cells"][1]["profile"] == "partial" and not doc["cells"][1]["profile_stored"]
    assert doc["counts"]["stored"] == 1


def test_the_listing_checks_sizes_but_hashes_nothing_and_moves_nothing(capsys, store, cells):
    entry = store.path("profile", cells[0].key)
    (entry / "profile.parquet").write_bytes(b"NOT REALLY PARQUET")  # same size, other bytes
    doc = listed(capsys, store)
    assert doc["cells"][0]["profile_stored"]
    assert (entry / MANIFEST).is_file()  # not quarantined (Store.get would have)
    (entry / "profile.parquet").write_bytes(b"short")  # a size the manifest does not record
    doc = listed(capsys, store)
    assert doc["cells"][0]["profile"] == "corrupt" and doc["counts"]["stored"] == 0


@pytest.mark.parametrize(
    "argv,words",
    [
        (["grid", "--budget", "huge", "--list"], "invalid choice: 'huge'"),
        (["grid", "--budget", "smoke"], "one of the arguments --list --json is required"),
        (["grid", "--budget", "smoke", "--list", "--json"], "not allowed with argument"),
    ],
)
def test_bad_arguments_exit_2(argv, words, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert words in capsys.readouterr().err


def test_a_directory_that_is_not_a_store_exits_2(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as info:
        cli.main(["grid", "--budget", BUDGET, "--list", "--store", str(tmp_path)])
    assert info.value.code == 2
    assert "is not a crlm-bench store" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["grid", "compare"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    assert "usage: crlm-bench " + command in capsys.readouterr().out
