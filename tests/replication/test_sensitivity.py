"""The verdicts under other measurement sizes (``replication.sensitivity``) and ``crlm-bench
sensitivity``: the stability table from constructed verdicts, the budget re-measured at a setting
with its training runs unchanged, and the command end to end on the smoke budget."""

from __future__ import annotations

import json

import pytest

from crlm_bench import cli
from crlm_bench.experiment.store import Store
from crlm_bench.replication import claims as C
from crlm_bench.replication.budgets import get_budget
from crlm_bench.replication.sensitivity import Setting, at_setting, settings_grid, stability

A, B = Setting(100, 5), Setting(300, 7)


def verdict(claim: str, group: str, outcome: str, *, variant: str = C.MAIN_VARIANT) -> C.Verdict:
    return C.Verdict(
        claim, group, "stat", 1.0, "≥ 1", 1.0, outcome == "holds", "…", variant=variant, outcome=outcome
    )


def test_the_grid_is_every_combination_points_outermost():
    assert settings_grid() == [Setting(100, 5), Setting(100, 7), Setting(300, 5), Setting(300, 7)]


def test_stability_counts_holds_only_and_orders_claims_as_the_paper():
    table = stability(
        {
            A: [
                verdict("mixup-flattens", "m", "holds"),
                verdict("profile-shape", "x", "holds"),
                verdict("profile-shape", "y", "inconclusive"),
                verdict("profile-shape", "x", "fails", variant="sff/knn-input"),  # not the main variant
            ],
            B: [
                verdict("mixup-flattens", "m", "fails"),
                verdict("profile-shape", "x", "holds"),
                verdict("profile-shape", "y", "fails"),
            ],
        }
    )
    assert table.tests[("profile-shape", "x", "stat")] == ("holds", "holds")
    assert table.fraction(("profile-shape", "y", "stat")) == 0  # inconclusive is not a hold
    assert table.fraction(("mixup-flattens", "m", "stat")) == 0.5
    assert list(table.per_claim()) == ["profile-shape", "mixup-flattens"]
    assert table.per_claim()["profile-shape"] == 0.5
    text = table.markdown()
    assert "100 pts, 5 toggles" in text and "| ? " in text and "50%" in text


def test_a_test_missing_under_a_setting_shows_a_dash(tmp_path):
    table = stability({A: [verdict("profile-shape", "x", "holds")], B: []})
    assert table.tests[("profile-shape", "x", "stat")] == ("holds", None)
    path = table.write(tmp_path / "out")
    assert "| —" in path.read_text()
    data = json.loads((tmp_path / "out" / "sensitivity.json").read_text())
    assert data["tests"][0]["outcomes"] == ["holds", None] and data["per_claim"] == {"profile-shape": 0.5}


def test_a_setting_changes_the_measurement_of_every_cell_and_no_training_run():
    budget = get_budget("cpu")
    moved = at_setting(budget, Setting(100, 5))
    cells = moved.all_cells()
    assert {(c.measurement.points, c.measurement.toggles) for c in cells} == {(100, 5)}
    assert [c.training.key for c in cells] == [c.training.key for c in budget.claim_cells()]
    assert {c.key for c in cells}.isdisjoint(c.key for c in budget.all_cells())
    assert moved.attribution_cells() == () and budget.attribution_cells()  # the default's stability


def test_the_command_on_the_smoke_budget(tmp_path, capsys):
    store, out = tmp_path / "store", tmp_path / "out"
    argv = ["sensitivity", "--budget", "smoke", "--points", "6,8", "--toggles", "3", "--store", str(store)]
    assert cli.main([*argv, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "setting 2/2 (8 pts, 3 toggles)" in captured.err  # progress
    data = json.loads((out / "sensitivity.json").read_text())
    assert [s["points"] for s in data["settings"]] == [6, 8]
    assert {t["claim"] for t in data["tests"]} == set(C.PAPER_ORDER)
    assert "| claim" in captured.out and (out / "sensitivity.md").exists()
    # the smoke budget's training runs, each trained once; a profile per cell and setting
    audit = Store(store).audit()
    budget = get_budget("smoke")
    assert sum(e["kind"] == "training" for e in audit) == len({c.training.key for c in budget.all_cells()})
    assert sum(e["kind"] == "profile" for e in audit) == 2 * len(budget.claim_cells())


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--points", "0"], "every value must be at least 1"),
        (["--points", "a,b"], "whole numbers separated by commas"),
    ],
)
def test_bad_sizes_exit_2(extra, words, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["sensitivity", "--budget", "smoke", "--store", str(tmp_path), *extra])
    assert info.value.code == 2 and words in capsys.readouterr().err


def test_a_size_the_measurement_refuses_is_a_usage_error_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["sensitivity", "--budget", "smoke", "--toggles", "11", "--store", str(tmp_path / "s")])
    assert info.value.code == 2 and "--points/--toggles" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
