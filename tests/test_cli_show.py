"""``crlm-bench show``: a stored profile found as ``grid --list`` finds it (``CELL --budget B``, or
its key), and advice for a missing one that never proposes a paper-size profile on a CPU."""

from __future__ import annotations

import pandas as pd
import pytest

from crlm_bench import cli
from crlm_bench.experiment.store import Store, save_frame
from crlm_bench.replication.budgets import get_budget
from crlm_bench.replication.grid import ATTRIBUTION_KIND, groups_of

BUDGET = "smoke"
COLUMNS = [
    "probe",
    "neighbourhood",
    "relative_depth",
    "ambient_dim",
    "id_mean",
    "pca_dim",
    "d",
    "K",
    "m",
    "mapc",
    "nmapc",
    "sff_norm_median",
    "mean_curvature_median",
    "scalar_curvature_median",
]


@pytest.fixture(scope="module")
def cells():
    return get_budget(BUDGET).all_cells()


def put_profile(store: Store, cell, tmp_path, *, key: str | None = None, accuracy: float = 0.8125) -> None:
    """A complete profile entry for ``cell`` (a two-row frame with the columns show prints)."""
    frame = pd.DataFrame(
        {c: [f"{c}-a", f"{c}-b"] if c in ("probe", "neighbourhood") else [1.0, 2.0] for c in COLUMNS}
    )
    frame["probe"] = ["input", "features.pool5"]
    frame["test_accuracy"] = accuracy
    path = tmp_path / f"{key or cell.key}.parquet"
    save_frame(path, frame)
    store.put(
        "profile",
        key or cell.key,
        {"profile.parquet": path},
        cell.to_dict(),
        {"threads": 3, "device": "cpu"},
        summary=cell.id,
    )


@pytest.fixture
def store(tmp_path, cells):
    """A store holding the smoke budget's first cell's profile, made with the budget's settings."""
    store = Store(tmp_path / "store")
    put_profile(store, cells[0], tmp_path)
    return store


def show(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["show", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def usage_error(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as info:
        cli.main(["show", *args])
    assert info.value.code == 2
    return capsys.readouterr().err


def assert_shown(out: str, cell) -> None:
    assert f"{cell.id}  test accuracy 0.8125  (key {cell.key})" in out
    assert "trained with ? torch threads on ?; profiled with 3 torch threads on cpu" in out
    assert "features.pool5" in out and "scalar_curvature_median" in out


def test_a_budgets_cell_is_shown_without_retyping_its_options(capsys, store, cells):
    # what grid --list calls stored ...
    assert cli.main(["grid", "--budget", BUDGET, "--json", "--store", str(store.root)]) == 0
    capsys.readouterr()
    code, out, _ = show(capsys, cells[0].id, "--budget", BUDGET, "--store", str(store.root))
    assert code == 0
    assert_shown(out, cells[0])
    # ... which the cell id alone (the paper's sizes) does not find
    assert show(capsys, cells[0].id, "--store", str(store.root))[0] == 1


@pytest.mark.parametrize("digits", [64, 12, 8])
def test_a_profile_is_found_by_its_key_or_a_prefix(capsys, store, cells, digits):
    key = cells[0].key[:digits]
    for given in (key, key.upper()):
        code, out, _ = show(capsys, given, "--store", str(store.root))
        assert code == 0
        assert_shown(out, cells[0])


def test_a_prefix_of_several_profiles_is_a_usage_error_listing_them(capsys, tmp_path, cells):
    store = Store(tmp_path / "store")
    for key in ("deadbeef" + "0" * 56, "deadbeef" + "1" * 56):
        put_profile(store, cells[0], tmp_path, key=key)
    err = usage_error(capsys, "deadbeef", "--store", str(store.root))
    assert "2 stored profiles have keys starting deadbeef" in err and "give more digits" in err
    assert "deadbeef00000000" in err and "deadbeef11111111" in err


def test_a_damaged_partial_or_foreign_profile_is_named_not_shown(capsys, tmp_path, store, cells, caplog):
    entry = store.path("profile", cells[0].key) / "profile.parquet"
    entry.write_bytes(bytes(len(entry.read_bytes())))  # same size: the listing still calls it complete
    with pytest.warns(Warning):
        assert show(capsys, cells[0].key[:12], "--store", str(store.root))[0] == 1
    assert "is no longer a complete entry" in caplog.text and "profile the cell again" in caplog.text
    caplog.clear()
    partial = store.path("profile", cells[1].key)
    partial.mkdir(parents=True)
    (partial / "profile.parquet").write_bytes(b"half")  # no manifest: its writer died
    assert show(capsys, cells[1].key[:12], "--store", str(store.root))[0] == 1
    assert f"the profile {cells[1].key} in {store.root} is partial" in caplog.text
    assert "crlm-bench store gc" in caplog.text
    caplog.clear()
    put_profile(store, cells[2], tmp_path, key="c0ffee00" * 8)  # settings that hash to another key
    assert show(capsys, "c0ffee00", "--store", str(store.root))[0] == 1
    assert f"was stored with settings this crlm_bench hashes to {cells[2].key}" in caplog.text


def test_a_short_prefix_is_a_usage_error_saying_how_many_digits(capsys, store):
    assert "at least 8 lower-case hex digits" in usage_error(capsys, "abcdef1", "--store", str(store.root))


def test_a_key_that_names_no_profile_fails_and_says_where_keys_are_listed(capsys, store, cells, caplog):
    code, _, _ = show(capsys, "0123456789ab", "--store", str(store.root))
    assert code == 1
    assert "no stored profile" in caplog.text and "crlm-bench grid --budget B --list" in caplog.text
    caplog.clear()
    training = cells[0].training
    store.put("training", training.key, {"epoch_0001.pt": b"w"}, training.to_dict(), summary="the run")
    code, _, _ = show(capsys, training.key[:12], "--store", str(store.root))
    assert code == 1
    assert "it is the key of a training entry" in caplog.text and "not of a profile" in caplog.text


def test_a_cell_the_budget_lacks_is_a_usage_error_listing_its_cells(capsys, store, cells):
    wrong = cells[0].id.replace("vgg6_narrow", "vgg6_narow")
    err = usage_error(capsys, wrong, "--budget", BUDGET, "--store", str(store.root))
    assert f"the {BUDGET} budget has no cell {wrong}" in err
    assert f"did you mean {cells[0].id}?" in err
    assert all(c.id in err for c in cells)


@pytest.mark.parametrize(
    "target,extra,words",
    [
        ("CELL", ["--points", "8"], "--budget smoke gives the cell's settings; drop --points 8"),
        ("CELL", ["--override", "lr=0.1"], "drop --override lr=0.1"),
        ("KEY", ["--toggles", "3"], "names the profile's settings; drop --toggles 3"),
        ("KEY", ["--budget", "smoke"], "reads as a key"),
    ],
)
def test_settings_that_the_budget_or_key_fix_are_refused(capsys, store, cells, target, extra, words):
    name = cells[0].id if target == "CELL" else cells[0].key[:12]
    budget = ["--budget", BUDGET] if target == "CELL" and "--budget" not in extra else []
    assert words in usage_error(capsys, name, *budget, *extra, "--store", str(store.root))


# ---------------------------------------------------------------------------------------------
# advice for a missing profile


def test_a_missing_budget_cell_names_its_claim_test_and_its_profile_command(capsys, store, cells, caplog):
    untrained = next(c for c in cells if c.training.recipe == "untrained")
    code, _, _ = show(capsys, untrained.id, "--budget", BUDGET, "--store", str(store.root))
    assert code == 1
    groups = groups_of(get_budget(BUDGET))
    (group,) = [
        g for kind, gs in groups.items() if kind != ATTRIBUTION_KIND for g in gs if untrained in g.cells
    ]
    assert f"pytest claims/ --budget {BUDGET} --store {store.root} -k {group.id}" in caplog.text
    assert f"crlm-bench profile {untrained.id} --points 8 --toggles 3" in caplog.text


@pytest.mark.parametrize("budget", ["smoke", "cpu", "paper"])
def test_the_suggested_profile_command_gives_the_budgets_cell(budget):
    """Typed as suggested, `crlm-bench profile CELL OPTIONS` computes the key the budget looks up."""
    parser = cli.build_parser()
    for cell in get_budget(budget).all_cells():
        args = parser.parse_args(["profile", cell.id, *cli._cell_options(cell).split()])
        (parsed,) = cli._cells(args, with_measurement=True)
        assert parsed.key == cell.key, cell.id


@pytest.mark.parametrize(
    "options",
    [
        ["--preset", "authors"],
        ["--preset", "authors", "--points", "200", "--deviation", "full_dim_zero"],
        ["--deviation", "unscaled_fit", "--precision", "float32"],
    ],
)
def test_a_preset_or_a_deviation_is_typed_back_as_given(options):
    """`--preset authors` (alone, with other options, or one deviation at a time) gives a cell whose
    suggested options give the same key again, naming the preset rather than its parts."""
    from crlm_bench.experiment.cell import PRESETS

    parser = cli.build_parser()
    cell_id = get_budget("cpu").all_cells()[0].id
    (cell,) = cli._cells(parser.parse_args(["profile", cell_id, *options]), with_measurement=True)
    preset = "authors" if "--preset" in options else ""
    assert cell.measurement.preset == preset
    if preset:
        assert set(PRESETS["authors"]["deviations"]) <= set(cell.measurement.deviations)
        assert cell.measurement.precision == "float32" and cell.measurement.split == "train-augmented"
    typed = cli._cell_options(cell)
    assert ("--preset authors" in typed) is bool(preset) and "--deviation svd_fit" not in typed
    (again,) = cli._cells(parser.parse_args(["profile", cell_id, *typed.split()]), with_measurement=True)
    assert again.key == cell.key


def test_an_unknown_preset_or_deviation_is_a_usage_error(capsys):
    cell_id = get_budget("cpu").all_cells()[0].id
    with pytest.raises(SystemExit):
        cli.main(["profile", cell_id, "--preset", "theirs"])
    assert "invalid choice: 'theirs'" in capsys.readouterr().err
    assert "unknown deviation(s) ['no_such_thing']" in usage_error(
        capsys, cell_id, "--deviation", "no_such_thing"
    )


def test_no_paper_size_profile_is_suggested_without_a_gpu(capsys, store, cells, caplog, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    cell = get_budget("cpu").all_cells()[0]
    assert show(capsys, cell.id, "--store", str(store.root))[0] == 1
    assert "the paper's measurement sizes" in caplog.text and "no CUDA device is visible" in caplog.text
    sizes = f"--points {cell.measurement.points} --toggles {cell.measurement.toggles}"
    assert f"crlm-bench profile {cell.id} {sizes}" in caplog.text
    assert "(same options)" not in caplog.text
    assert f"crlm-bench show {cell.id} --budget cpu --store {store.root}" in caplog.text
    caplog.clear()
    paper = get_budget("paper").all_cells()[0]
    assert show(capsys, paper.id, "--budget", "paper", "--store", str(store.root))[0] == 1
    assert "no CUDA device is visible" in caplog.text and "crlm-bench profile" not in caplog.text


def test_with_a_gpu_or_smaller_settings_the_advice_is_the_same_options(capsys, store, caplog, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    cell = "synthetic-vgg6_narrow-untrained-s0-e0"
    assert show(capsys, cell, "--store", str(store.root))[0] == 1
    assert f"run: crlm-bench profile {cell} (same options)" in caplog.text
    assert "no CUDA device" not in caplog.text
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    caplog.clear()
    assert show(capsys, cell, "--points", "20", "--store", str(store.root))[0] == 1
    assert f"run: crlm-bench profile {cell} (same options)" in caplog.text
