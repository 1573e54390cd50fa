"""The pytest plugin end to end: the claims suite at the smoke budget through pytester."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from crlm_bench.experiment.store import Store
from crlm_bench.replication.budgets import get_budget
from crlm_bench.replication.claims import CLAIM_GROUPS, PAPER_ORDER
from crlm_bench.replication.grid import ATTRIBUTION_KIND, groups_of
from crlm_bench.replication.report import check_report
from crlm_bench.workers import xdist_groups

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
        "--budget",
        "smoke",
        "--store",
        str(store),
        "--report",
        str(report),
        "-p",
        "no:cacheprovider",
        "--threads",
        "1",
        timeout=900,
    )
    outcomes = counted(result)
    groups = groups_of(get_budget("smoke"))
    expected = sum(len(groups[kind]) for _, kind in CLAIM_GROUPS)
    changed = len(groups[ATTRIBUTION_KIND])  # the audit test of each changed cell passes (none here)
    assert changed == len(get_budget("smoke").attribution_cells())
    kinds = ("passed", "failed", "xfailed")
    assert sum(outcomes.get(k, 0) for k in kinds) == expected + changed, result.stdout.str()[-3000:]
    assert "error" not in outcomes and "errors" not in outcomes
    assert check_report(report) == []
    data = json.loads((report / "results.json").read_text())
    claims_seen = {v["claim"] for v in data["verdicts"]}
    assert claims_seen == set(PAPER_ORDER)
    assert {v["variant"] for v in data["verdicts"]} >= {"mapc/knn-input"}
    assert data["budget"] == "smoke"
    # one main verdict per test: it passed, failed or xfailed exactly as that verdict's outcome
    main = [v for v in data["verdicts"] if v["variant"] == "mapc/knn-input"]
    by_outcome = {
        k: sum(v["outcome"] == o for v in main) for k, o in zip(kinds, ("holds", "fails", "inconclusive"))
    }
    by_outcome["passed"] += changed
    assert by_outcome == {k: outcomes.get(k, 0) for k in kinds}
    # the smoke budget names no measurement change: no attribution verdict
    assert data["variants"]["attribution"] == []
    assert all(v["interval"] is not None for v in main)  # the smoke cells store their points
    md = (report / "report.md").read_text()
    for v in main:
        assert v["claim"] in md and v["group"] in md

    # every cell was computed exactly once
    audit = Store(store).audit()
    profiles = [e["key"] for e in audit if e["kind"] == "profile"]
    assert len(profiles) == len(set(profiles)) == len(get_budget("smoke").all_cells())

    # the same verdicts again from the store alone, without computing
    from crlm_bench.cli import main as cli_main

    again = tmp_path_factory.mktemp("again")
    assert cli_main(["report", "--budget", "smoke", "--store", str(store), "--out", str(again)]) == 0
    data2 = json.loads((again / "results.json").read_text())
    assert sorted(map(verdict_key, data2["verdicts"])) == sorted(map(verdict_key, data["verdicts"]))
    assert Store(store).audit() == audit  # nothing recomputed

    # and with two xdist workers on a fresh store: the same verdicts, one report, each cell once
    store_x, report_x = tmp_path_factory.mktemp("store-x"), claims_copy / "report-x"
    result_x = pytester.runpytest_subprocess(
        "--budget",
        "smoke",
        "--store",
        str(store_x),
        "--report",
        str(report_x),
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
        "--dist",
        "loadgroup",
        "--threads",
        "1",
        "-v",
        timeout=900,
    )
    assert counted(result_x) == outcomes
    # the workers' progress reaches the controller's output, each line with its worker's id
    said_x = result_x.stdout.lines + result_x.stderr.lines
    computing = [line for line in said_x if "crlm-bench: computing " in line]
    assert {line.split()[0] for line in computing} == {"[gw0]", "[gw1]"}, "\n".join(said_x[-40:])
    assert any(
        line.startswith("[gw") and "crlm-bench: training " in line and ": epoch " in line for line in said_x
    )
    # the tests of one group ran on one worker (-v lines: "[gw1] [ 9%] PASSED file::test[id]")
    ran = [line.split() for line in result_x.stdout.lines if line.startswith("[gw") and "::test_" in line]
    assert len(ran) == expected + changed, result_x.stdout.str()[-3000:]
    group_of, workers = xdist_groups("smoke"), {}
    for words in ran:
        node = words[-1].partition("@")[0]
        workers.setdefault(group_of[node[node.index("[") + 1 : -1]], set()).add(words[0])
    assert len(workers) == 3 and all(len(w) == 1 for w in workers.values()), workers
    assert check_report(report_x) == []
    data_x = json.loads((report_x / "results.json").read_text())
    assert sorted(map(verdict_key, data_x["verdicts"])) == sorted(map(verdict_key, data["verdicts"]))
    audit_x = [e for e in Store(store_x).audit() if e["kind"] == "profile"]
    assert len(audit_x) == len({e["key"] for e in audit_x}) == len(profiles)
    assert len({e["pid"] for e in audit_x}) == 2  # both workers computed cells

    # and through submitit's local executor: cells computed as a job array before the tests
    store_s, report_s = tmp_path_factory.mktemp("store-s"), claims_copy / "report-s"
    args_s = [
        "--budget",
        "smoke",
        "--store",
        str(store_s),
        "--report",
        str(report_s),
        "-p",
        "no:cacheprovider",
        "--executor",
        "submitit",
        "--submitit-cluster",
        "local",
        "--slurm-time",
        "30",  # minutes per job: submitit's default of 5 is too short for 12 jobs on 2 shared cores
        "--threads",
        "1",
    ]
    result_s = pytester.runpytest_subprocess(*args_s, timeout=900)
    assert counted(result_s) == outcomes
    # the job array's state while it runs
    array = [line for line in result_s.stdout.lines if "crlm-bench: submitit array " in line]
    assert array, result_s.stdout.str()[-3000:]
    assert all(re.search(r"submitit array \S+: \d+/\d+ done; \d+ [A-Z]+", line) for line in array), array
    assert check_report(report_s) == []
    data_s = json.loads((report_s / "results.json").read_text())
    assert sorted(map(verdict_key, data_s["verdicts"])) == sorted(map(verdict_key, data["verdicts"]))
    audit_s = [e for e in Store(store_s).audit() if e["kind"] == "profile"]
    assert len(audit_s) == len({e["key"] for e in audit_s}) == len(profiles)
    # a rerun submits nothing: everything is stored
    before, logs_before = Store(store_s).audit(), sorted((store_s / ".submitit").rglob("*"))
    assert any(p.name.endswith("_log.out") for p in logs_before)  # the first run did submit jobs
    again_s = pytester.runpytest_subprocess(*args_s, timeout=900)
    assert counted(again_s) == outcomes
    assert Store(store_s).audit() == before
    assert sorted((store_s / ".submitit").rglob("*")) == logs_before  # no new job


def counted(result) -> dict:
    """pytest's outcome counts without ``deselected``: the smoke budget's attribution test, which
    has no parameter there, is deselected in one process, while an xdist controller does not count
    what its workers deselect."""
    return {k: n for k, n in result.parseoutcomes().items() if k != "deselected"}


def verdict_key(v: dict) -> tuple:
    value = None if v["value"] is None else round(v["value"], 9)
    return (v["claim"], v["group"], v["variant"], v["statistic"], v["holds"], value)


def test_collect_only_lists_cifar10_cells_without_touching_data(pytester: pytest.Pytester, claims_copy: Path):
    store, data = claims_copy / "no-store", claims_copy / "no-data"
    result = pytester.runpytest_subprocess(
        "--collect-only",
        "-q",
        "-k",
        "cifar10 and not cifar100",
        "--budget",
        "paper",
        "--store",
        str(store),
        "--data-dir",
        str(data),
        "-p",
        "no:cacheprovider",
    )
    out = result.stdout.str()
    assert "cifar10-resnet18-baseline-s0-e200" in out and "cifar10-resnet50-mixup-s0-e200" in out
    assert "cifar100" not in out
    assert "no tests ran" not in out.lower() or "collected" in out
    assert not store.exists() and not data.exists()


def test_ids_select_by_model_and_recipe(pytester: pytest.Pytester, claims_copy: Path):
    result = pytester.runpytest_subprocess(
        "--collect-only", "-q", "-k", "mixup", "--budget", "cpu", "-p", "no:cacheprovider"
    )
    lines = [l for l in result.stdout.str().splitlines() if "::" in l]
    assert lines and all("mixup" in l for l in lines)


@pytest.mark.parametrize("visible,index,expected", [("0,1,2,3", 5, "1"), ("3,7", 0, "3"), ("5", 2, "5")])
def test_workers_are_pinned_to_one_of_the_callers_gpus(visible, index, expected):
    from crlm_bench.workers import pin_device

    env = {"CUDA_VISIBLE_DEVICES": visible}
    assert pin_device(index, env) == expected
    assert env["CUDA_VISIBLE_DEVICES"] == expected


def test_a_crashing_job_fails_its_tests_with_the_log_path(
    pytester: pytest.Pytester, claims_copy: Path, tmp_path_factory
):
    store = tmp_path_factory.mktemp("store-crash")
    result = pytester.runpytest_subprocess(
        "--budget",
        "smoke",
        "--store",
        str(store),
        "-p",
        "no:cacheprovider",
        "--executor",
        "submitit",
        "--submitit-cluster",
        "local",
        "--device",
        "no-such-device",
        "-k",
        "test_profile_shape and resnet8_narrow",
        "--report",
        str(claims_copy / "report"),
        timeout=600,
    )
    assert result.parseoutcomes() == {"failed": 1, "deselected": result.parseoutcomes()["deselected"]}
    out = result.stdout.str()
    assert "the submitit job" in out and "failed" in out and "synthetic-resnet8_narrow-baseline-s0-e1" in out
    logs = [line.split("logs:")[1].strip() for line in out.splitlines() if "logs:" in line]
    assert logs and Path(logs[0]).exists()


def test_under_xdist_tests_comparing_a_datasets_models_are_collected_last(
    pytester: pytest.Pytester, claims_copy: Path
):
    result = pytester.runpytest_subprocess(
        "--collect-only", "-q", "--budget", "cpu", "-p", "no:cacheprovider", "--dist", "loadgroup"
    )
    lines = [l for l in result.stdout.str().splitlines() if "::" in l]
    dataset_level = [i for i, l in enumerate(lines) if "baseline-models" in l]
    assert dataset_level == list(range(len(lines) - len(dataset_level), len(lines)))


@pytest.mark.parametrize("value", ["-3", "0", "two"])
def test_a_bad_thread_count_is_a_usage_error_not_an_internal_error(pytester: pytest.Pytester, value):
    result = pytester.runpytest("--threads", value, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--threads: expected a positive integer*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_the_help_names_the_plugin_and_the_environment_variables(pytester: pytest.Pytester):
    text = pytester.runpytest("--help").stdout.str()
    assert "crlm-bench: replication of Kaufman & Azencot" in text
    assert "$CRLM_STORE" in text and "$CRLM_DATA" in text
