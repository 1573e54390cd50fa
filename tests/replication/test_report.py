"""The replication report (:mod:`crlm_bench.replication.report`), in the order of its modules:
the files :func:`write_report` writes, the Markdown, the JSON round trip, the figures skipped when
their data is absent, the provenance and budget description, and :func:`check_report`."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

import crlm_bench
from crlm_bench.replication import claims as C
from crlm_bench.replication import report as R
from tests.replication import claim_cases as cases

SETTINGS = {"device": "cpu", "points": 300, "toggles": 7}


def constructed_results(
    dataset: str = "cifar10", *, untrained: bool = True, recipes: bool = True
) -> list[C.CellResult]:
    """Three paper models on ``dataset`` with gaps rising with accuracy, plus an untrained cell, the
    recipes of one model and a checkpoint series."""
    out = [
        cases.make_result(cases.plateau_then(0.05, 0.1, last), dataset=dataset, model=m, accuracy=a)
        for m, a, last in (("resnet18", 0.90, 1.0), ("resnet50", 0.92, 2.0), ("vgg16", 0.88, 0.5))
    ]
    if untrained:
        out.append(
            cases.make_result(cases.UNTRAINED_COLLAPSE, dataset=dataset, model="resnet18", recipe="untrained")
        )
    if recipes:
        for recipe, plateau in (("mixup", 0.01), ("manifold_mixup", 0.08), ("no_regularization", 0.03)):
            profile = cases.plateau_then(plateau, 0.1, 1.0)
            out.append(cases.make_result(profile, dataset=dataset, model="resnet18", recipe=recipe))
    for i, epoch in enumerate((2, 4, 6, 8)):
        profile = cases.plateau_then(0.05, 0.1, 0.4 + 0.1 * i)
        accuracy = 0.5 + 0.08 * i
        out.append(
            cases.make_result(profile, dataset=dataset, model="resnet18", epoch=epoch, accuracy=accuracy)
        )
    return out


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    directory = tmp_path_factory.mktemp("report")
    results = constructed_results()
    verdicts = C.evaluate_all(results)
    files = R.write_report(
        directory, verdicts, results, budget="smoke", settings=SETTINGS, extra_meta={"note": "constructed"}
    )
    return directory, files, verdicts, results


def test_the_package_exports_its_public_names():
    for name in R.__all__:
        assert hasattr(R, name), name
    assert R.LoadedReport.__module__ == "crlm_bench.replication.report.results"


# ---------------------------------------------------------------------------------------------
# write


def test_files_exist_and_the_report_checks(written):
    directory, files, _, _ = written
    assert {R.REPORT_MD, R.RESULTS_JSON} <= set(files)
    for name, path in files.items():
        assert path.is_file() and path.stat().st_size > 0 and path.parent == directory, name
    pngs = {n for n in files if n.endswith(".png")}
    assert pngs == {
        "profiles_cifar10.png",
        "untrained_cifar10.png",
        "recipes_cifar10.png",
        "gap_accuracy_cifar10.png",
    }
    for name in pngs:
        assert files[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert R.check_report(directory) == []


def test_an_empty_report_is_consistent(tmp_path):
    files = R.write_report(tmp_path, [], [], budget="smoke", settings={})
    assert set(files) == {R.REPORT_MD, R.RESULTS_JSON}
    assert R.check_report(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# markdown


def test_markdown_table_rows_match_the_main_verdicts(written):
    directory, _, verdicts, results = written
    loaded = R.load_report(directory)
    rows = loaded.verdict_table()
    main = [v for v in verdicts if v.variant == C.MAIN_VARIANT]
    assert len(rows) == len(main) > 0
    for row, v in zip(rows, main):
        named = (row["claim"], row["group"], row["variant"], row["statistic"])
        assert named == (v.claim, v.group, v.variant, v.statistic)
        assert row["holds"] == ("✓" if v.holds else "✗")
        assert row["threshold"] == v.threshold
        assert row["robust"] == R.robustness_label(v, verdicts)
    md = loaded.markdown
    assert md.startswith("# crlm_bench replication report")
    assert "Budget: **smoke**" in md
    for claim in {v.claim for v in verdicts}:
        assert f"### {claim}" in md
    for r in results:
        assert f"### {r.cell_id}" in md
    assert "| probe" in md and "NMAPC" in md and "sff_norm_median" in md
    assert "read from the paper's figure" in md  # paper values are labelled as read, never exact


def test_robust_column_reports_a_changed_verdict(tmp_path):
    results = [cases.make_result(cases.PAPER_LIKE, sff=[0.05] * 10, sff_input=0.05)]
    verdicts = C.evaluate_all(results, claims=["profile-shape"])
    R.write_report(tmp_path, verdicts, results, budget=None, settings={}, figures=False)
    (row,) = R.load_report(tmp_path).verdict_table()
    assert row["holds"] == "✓" and row["robust"] == "no (sff/knn-input ✗)"
    assert R.check_report(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# results


def test_json_round_trips(written):
    directory, _, verdicts, results = written
    data = json.loads((directory / R.RESULTS_JSON).read_text(encoding="utf-8"))
    assert data["budget"] == "smoke" and data["settings"] == SETTINGS
    assert data["extra"] == {"note": "constructed"}
    assert [v.to_dict() for v in verdicts] == data["verdicts"]
    assert [C.Verdict.from_dict(d).to_dict() for d in data["verdicts"]] == data["verdicts"]
    assert [p["cell_id"] for p in data["profiles"]] == [r.cell_id for r in results]
    first = data["profiles"][0]["profile"]
    assert len(first) == len(results[0].profile) and first[0]["probe"] == "input"
    assert data["counts"]["main"] == sum(v.variant == C.MAIN_VARIANT for v in verdicts)
    assert set(data["thresholds"]) == set(C.THRESHOLDS)


# ---------------------------------------------------------------------------------------------
# figures


def test_figures_are_skipped_without_their_data(tmp_path):
    results = constructed_results("fashion-mnist", untrained=False, recipes=False)
    files = R.write_report(tmp_path, C.evaluate_all(results), results, budget="cpu", settings={})
    pngs = {n for n in files if n.endswith(".png")}
    assert pngs == {"profiles_fashion-mnist.png", "gap_accuracy_fashion-mnist.png"}
    assert not list(tmp_path.glob("untrained_*.png")) and not list(tmp_path.glob("recipes_*.png"))
    assert R.check_report(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# provenance


def test_provenance_is_recorded(written):
    directory, _, _, _ = written
    data = json.loads((directory / R.RESULTS_JSON).read_text(encoding="utf-8"))
    assert data["crlm_bench_version"] == crlm_bench.__version__
    assert data["torch_version"]
    assert data["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", data["git_commit"])
    assert data["hardware"]["cpu_count"] >= 1 and "platform" in data["hardware"]


def test_budget_objects_are_summarised(tmp_path):
    cells = [SimpleNamespace(id="a"), SimpleNamespace(id="b")]
    budget = SimpleNamespace(name="tiny", description="two cells", cells=cells)
    R.write_report(tmp_path, [], [], budget=budget, settings={}, figures=False)
    data = R.load_report(tmp_path).results
    assert data["budget"] == {
        "name": "tiny",
        "description": "two cells",
        "cells": ["a", "b"],
        "checkpoint_runs": [],
    }
    assert "Budget: **tiny**" in R.load_report(tmp_path).markdown


# ---------------------------------------------------------------------------------------------
# check


def test_check_report_finds_problems(tmp_path):
    results = constructed_results("fashion-mnist", untrained=False, recipes=False)
    verdicts = C.evaluate_all(results)
    files = R.write_report(tmp_path, verdicts, results, budget="cpu", settings={})
    md = files[R.REPORT_MD].read_text(encoding="utf-8")
    row = next(line for line in md.splitlines() if line.startswith("| profile-shape"))
    files[R.REPORT_MD].write_text(md.replace(row + "\n", ""), encoding="utf-8")
    files["profiles_fashion-mnist.png"].unlink()
    problems = R.check_report(tmp_path)
    assert any("is in results.json but not in the report.md table" in p for p in problems)
    assert any("verdict rows" in p for p in problems)
    assert any("profiles_fashion-mnist.png" in p for p in problems)

    data = json.loads(files[R.RESULTS_JSON].read_text(encoding="utf-8"))
    data["counts"]["main"] += 1
    files[R.RESULTS_JSON].write_text(json.dumps(data), encoding="utf-8")
    assert any("counts.main" in p for p in R.check_report(tmp_path))

    files[R.RESULTS_JSON].unlink()
    assert R.check_report(tmp_path) == [f"results.json is missing from {tmp_path}"]
    with pytest.raises(FileNotFoundError, match="write_report"):
        R.load_report(tmp_path)
