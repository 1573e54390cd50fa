"""What a claims session tells its user in pytest's terminal: a preflight that stops at once with
what to type (missing data, the paper grid on a machine without CUDA), the cost of what is left,
live progress while a cell is computed (without ``-s``), and the verdict table at the end."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pandas.core.arrays.arrow.extension_types  # noqa: F401 - see below
import pyarrow.parquet  # noqa: F401
import pytest
import torchvision.datasets  # noqa: F401 - once, here: in-process runs unload what they import

from crlm_bench.pytest_plugin import PREFLIGHT_EXIT
from crlm_bench.vision import datasets

CLAIMS_DIR = Path(__file__).resolve().parents[2] / "claims"

pytest_plugins = ["pytester"]


@pytest.fixture
def claims(pytester: pytest.Pytester) -> pytest.Pytester:
    for source in CLAIMS_DIR.glob("*.py"):
        shutil.copy(source, pytester.path / source.name)
    return pytester


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)


@pytest.fixture
def no_system_fashion_mnist(monkeypatch):
    monkeypatch.setattr(datasets, "FASHION_MNIST_SYSTEM_DIRS", ())


# (torch refuses to register its operator libraries a second time, so torchvision stays loaded)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    started = time.monotonic()
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--store", "store", *args)
    result.seconds = time.monotonic() - started  # type: ignore[attr-defined]
    return result


def test_missing_data_stops_the_session_before_any_work_with_what_to_type(claims, no_system_fashion_mnist):
    result = run(claims, "--budget", "cpu", "--data-dir", "empty", "-k", "vgg6_narrow")
    assert result.ret == PREFLIGHT_EXIT != 1  # not "a claim did not replicate"
    out = result.stdout.str() + result.stderr.str()
    assert "fashion-mnist" in out and "--data-dir" in out and "CRLM_DATA" in out and "--download" in out
    assert "crlm-bench fetch fashion-mnist --download" in out
    assert "Traceback" not in out and len(out.splitlines()) < 30
    assert not (claims.path / "store").exists()  # nothing built, nothing written
    assert result.seconds < 30  # type: ignore[attr-defined]


def test_the_paper_budget_without_cifar_names_cifar10_only(claims, no_cuda):
    result = run(claims, "--budget", "paper", "--data-dir", "empty", "-k", "cifar10")
    assert result.ret == PREFLIGHT_EXIT
    out = result.stdout.str()
    assert "cifar10 (looked in" in out and "cifar100" not in out.split("need data")[1]


def test_no_budget_and_no_cuda_stops_and_points_to_the_cpu_budget(claims, no_cuda):
    result = run(claims, "--data-dir", "empty")
    assert result.ret == PREFLIGHT_EXIT
    out = result.stdout.str()
    assert "no --budget given" in out and "--budget cpu" in out and "no CUDA device" in out
    # the grid's cost as the store's timings give it (none stored here: counted, not timed)
    assert re.search(
        r"the paper's grid \(\d+ cells: 0 stored, \d+ profiles and \d+ training runs to compute", out
    )
    asked = run(claims, "--budget", "paper", "--data-dir", "empty")  # asked for: on to the data check
    assert asked.ret == PREFLIGHT_EXIT and "no --budget given" not in asked.stdout.str()
    assert "need data not found" in asked.stdout.str()


def test_collect_only_says_what_is_left_to_compute_and_lists_each_file_once(claims, no_cuda):
    result = run(claims, "--collect-only", "--budget", "cpu")
    assert result.ret == 0
    out = result.stdout.str()
    # the claims' 31 cells, their 15 seed-0 cells under 8 changes, the untrained VGG16 under 4 measurements
    assert "crlm-bench: cpu budget, 155 cells: 0 stored, 155 profiles and 28 training runs to compute" in out
    for name in ("test_gap_tracks_accuracy.py", "test_profile_shape.py"):
        assert out.count(f"<Module {name}>") == 1, out
    assert not (claims.path / "store").exists()


def test_progress_of_the_computed_cell_shows_without_capture_off_and_the_verdict_table_at_the_end(claims):
    args = ("--budget", "smoke", "--threads", "1", "-k", "test_profile_shape and vgg6_narrow-baseline-s0-e1]")
    result = run(claims, *args, "--report", "report")
    out = result.stdout.str()
    assert result.ret in (0, 1), out[-3000:]
    # one line per step in a log (pytester's output is not a terminal)
    for line in (
        "crlm-bench: computing synthetic-vgg6_narrow-baseline-s0-e1 (1 cells of the selection left",
        "crlm-bench: training synthetic-vgg6_narrow-baseline-s0: epoch 1/1, test accuracy",
        "crlm-bench: profiling synthetic-vgg6_narrow-baseline-s0-e1: intrinsic dimension, run 1/2",
        "crlm-bench: profiling synthetic-vgg6_narrow-baseline-s0-e1: curvature, points 1-8 of 8, chunk 1/1",
        "crlm-bench: synthetic-vgg6_narrow-baseline-s0-e1 computed",
    ):
        assert line in out, out[-3000:]
    assert "\r" not in out
    # the verdict table and the report's path
    assert "crlm-bench: " in out and " verdicts hold" in out
    assert "| claim " in out and "| profile-shape " in out
    assert "replication report written to report/report.md" in out
    # stored now: a second session computes nothing and says so
    again = run(claims, *args, "--report", "report")
    assert "crlm-bench: computing" not in again.stdout.str()
    assert "1 cells, all stored: nothing to compute" in again.stdout.str()


def test_quiet_turns_the_progress_off(claims):
    args = ("--budget", "smoke", "--threads", "1", "-k", "test_profile_shape and vgg6_narrow-baseline-s0-e1]")
    out = run(claims, *args, "-q", "--report", "report").stdout.str()
    assert "crlm-bench: computing" not in out and "epoch 1/1" not in out


def test_under_xdist_the_controller_runs_the_preflight_before_any_test(claims):
    pytest.importorskip("xdist")
    result = claims.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--store",
        "store",
        "-n",
        "2",
        "--budget",
        "paper",
        "--data-dir",
        "empty",
        "-k",
        "cifar10",
        timeout=300,
    )
    assert result.ret == PREFLIGHT_EXIT
    out = result.stdout.str()
    assert "cifar10 (looked in" in out and "--data-dir" in out and "no tests ran" in out
    assert not (claims.path / "store").exists()


def test_under_xdist_a_test_that_is_not_a_claim_test_is_not_preflighted_for_its_cell_like_id(pytester):
    """A test of cell ids has a paper cell's id as its parameter: without a group fixture it is no
    claim test, and xdist's controller does not stop the session for the paper budget's cost."""
    pytest.importorskip("xdist")
    pytester.makepyfile(
        test_ids="""
        import pytest

        @pytest.mark.parametrize("text", ["cifar10-resnet18-baseline-s0-e200"])
        def test_id(text):
            assert text.startswith("cifar10")
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--data-dir", "empty", timeout=300
    )
    assert result.ret == 0, result.stdout.str()[-2000:]
    result.assert_outcomes(passed=1)
