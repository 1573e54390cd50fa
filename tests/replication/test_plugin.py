"""The pytest plugin end to end: the claims suite at the smoke budget through pytester."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from crlm_bench.replication.grid import CLAIM_GROUPS, get_budget, groups_of
from crlm_bench.replication.report import check_report

CLAIMS_DIR = Path(__file__).resolve().parents[2] / "claims"

pytest_plugins = ["pytester"]


@pytest.fixture
def claims_copy(pytester: pytest.Pytester) -> Path:
    for source in CLAIMS_DIR.glob("*.py"):
        shutil.copy(source, pytester.path / source.name)
    return pytester.path


def test_smoke_budget_reaches_a_verdict_for_every_claim_and_writes_a_consistent_report(
    pytester: pytest.Pytester, claims_copy: Path, tmp_path_factory
):
    store = tmp_path_factory.mktemp("store")
    report = claims_copy / "report"
    result = pytester.runpytest_subprocess(
        "--budget", "smoke", "--store", str(store), "--report", str(report), "-p", "no:cacheprovider",
        "-p", "no:randomly", timeout=900,
    )  # fmt: skip
    outcomes = result.parseoutcomes()
    groups = groups_of(get_budget("smoke"))
    expected = sum(len(groups[kind]) for _, kind in CLAIM_GROUPS)
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == expected, result.stdout.str()[-3000:]
    assert "error" not in outcomes and "errors" not in outcomes
    assert check_report(report) == []
    data = json.loads((report / "results.json").read_text())
    claims_seen = {v["claim"] for v in data["verdicts"]}
    assert claims_seen == {claim for claim, _ in CLAIM_GROUPS}
    assert {v["variant"] for v in data["verdicts"]} >= {"mapc/knn-input"}
    assert data["budget"] == "smoke"
    # a test failed exactly when one of its group's main verdicts does not hold
    main = [v for v in data["verdicts"] if v["variant"] == "mapc/knn-input"]
    failed_groups = {v["group"] for v in main if not v["holds"]}
    assert outcomes.get("failed", 0) >= 1 if failed_groups else outcomes.get("failed", 0) == 0
    md = (report / "report.md").read_text()
    for v in main:
        assert v["claim"] in md and v["group"] in md

    # the same verdicts again from the store alone, without computing
    from crlm_bench.cli import main as cli_main

    again = tmp_path_factory.mktemp("again")
    assert cli_main(["report", "--budget", "smoke", "--store", str(store), "--out", str(again)]) == 0
    data2 = json.loads((again / "results.json").read_text())
    key = lambda v: (v["claim"], v["group"], v["variant"], v["statistic"], v["holds"])  # noqa: E731
    assert sorted(map(key, data2["verdicts"])) == sorted(map(key, data["verdicts"]))


def test_collect_only_lists_cifar10_cells_without_touching_data(pytester: pytest.Pytester, claims_copy: Path):
    store, data = claims_copy / "no-store", claims_copy / "no-data"
    result = pytester.runpytest_subprocess(
        "--collect-only", "-q", "-k", "cifar10 and not cifar100", "--budget", "paper",
        "--store", str(store), "--data-dir", str(data), "-p", "no:cacheprovider",
    )  # fmt: skip
    out = result.stdout.str()
    assert "cifar10-resnet18-baseline-s0-e200" in out and "cifar10-resnet50-mixup-s0-e200" in out
    assert "cifar100" not in out
    assert "no tests ran" not in out.lower() or "collected" in out
    assert not store.exists() and not data.exists()


def test_ids_select_by_model_and_recipe(pytester: pytest.Pytester, claims_copy: Path):
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-k", "mixup", "--budget", "cpu",
                                           "-p", "no:cacheprovider")
    lines = [l for l in result.stdout.str().splitlines() if "::" in l]
    assert lines and all("mixup" in l for l in lines)
