"""``bash scripts/main.sh``: the report goes where ``--report`` says (by default an untracked
directory), the path printed is that one, and the exit status tells a completed run (0 every claim
held, 1 some did not replicate) from one that did not complete (pytest's 2-5) or formed no verdict
(6).

The script's functions are sourced with ``run_claims`` replaced by a stub (no venv, no pytest);
one test runs the real pytest invocation on the smoke budget's synthetic data."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "main.sh"

#: a stand-in for pytest: records its arguments, writes report.md to the --report directory when
#: STUB_WRITES is set, and exits with STUB_EXIT
STUB = r"""
run_claims() {
    printf '%s\n' "$@" > "$STUB_ARGS"
    if [ -n "${STUB_WRITES:-}" ]; then
        local dir
        dir=$(report_arg "$@")
        mkdir -p "$dir"
        echo "# report" > "$dir/report.md"
    fi
    return "$STUB_EXIT"
}
"""


def replicate(tmp_path: Path, *args: str, exit: int, writes: bool, env: dict | None = None):
    """``replicate ARGS`` from the sourced script, in the repository root, with the stub."""
    record = tmp_path / "args.txt"
    script = f'source "{SCRIPT}"\n{STUB}\nreplicate "$@"\n'
    result = subprocess.run(
        ["bash", "-c", script, "main.sh", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "STUB_ARGS": str(record),
            "STUB_EXIT": str(exit),
            "STUB_WRITES": "1" if writes else "",
            **(env or {}),
        },
    )
    passed = record.read_text().splitlines() if record.exists() else None
    return result, passed


@pytest.mark.parametrize("form", ["separate", "equals"])
def test_the_report_given_is_the_report_printed(tmp_path, form):
    report = tmp_path / "my report"
    given = ["--report", str(report)] if form == "separate" else [f"--report={report}"]
    result, passed = replicate(tmp_path, "-k", "resnet8_narrow", *given, exit=0, writes=True)
    assert result.returncode == 0, result.stderr
    assert f"replication report: {report}/report.md" in result.stdout
    assert passed == ["-k", "resnet8_narrow", *given]  # passed on unchanged, no second --report
    assert (report / "report.md").is_file()


def test_a_claim_that_did_not_replicate_exits_1_with_the_report(tmp_path):
    report = tmp_path / "r"
    result, _ = replicate(tmp_path, "--report", str(report), exit=1, writes=True)
    assert result.returncode == 1
    assert f"replication report: {report}/report.md" in result.stdout
    assert "some claims did not replicate" in result.stdout


@pytest.mark.parametrize("exit", [2, 3, 4, 5])
def test_a_run_that_did_not_complete_keeps_pytests_status(tmp_path, exit):
    report = tmp_path / "r"
    result, _ = replicate(tmp_path, "--report", str(report), exit=exit, writes=exit == 2)
    assert result.returncode == exit
    assert f"pytest exit {exit}" in result.stderr and "did not complete" in result.stderr
    assert "replication report:" not in result.stdout
    assert ("is partial" in result.stderr) is (exit == 2)


@pytest.mark.parametrize("exit", [0, 1])
def test_a_finished_run_that_wrote_no_report_exits_6(tmp_path, exit):
    result, _ = replicate(tmp_path, "--report", str(tmp_path / "r"), exit=exit, writes=False)
    assert result.returncode == 6
    assert f"pytest exited {exit} but wrote no report to {tmp_path / 'r'}" in result.stderr
    assert "replication report:" not in result.stdout


def test_an_earlier_report_is_not_taken_for_this_runs(tmp_path):
    report = tmp_path / "r"
    report.mkdir()
    (report / "report.md").write_text("# last week's\n")
    result, _ = replicate(tmp_path, "--report", str(report), exit=0, writes=False)
    assert result.returncode == 6 and "wrote no report" in result.stderr


def test_by_default_the_report_goes_to_an_untracked_directory(tmp_path):
    # exit 5 and no report: nothing is written into the repository
    result, passed = replicate(tmp_path, "-k", "nothing", exit=5, writes=False)
    assert result.returncode == 5
    assert passed[:2] == ["--report", "crlm-report"] and passed[2:] == ["-k", "nothing"]
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "crlm-report/report.md"], cwd=ROOT, capture_output=True
    )
    tracked = subprocess.run(["git", "ls-files", "crlm-report"], cwd=ROOT, capture_output=True, text=True)
    if ignored.returncode == 128 or tracked.returncode != 0:
        pytest.skip("not a git checkout")
    assert ignored.returncode == 0, "crlm-report/ is not ignored by git"
    assert tracked.stdout == ""


def test_the_old_report_variable_is_refused_with_what_to_type(tmp_path):
    result = subprocess.run(
        ["bash", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "REPORT": "somewhere"},
    )
    assert result.returncode == 4
    assert "bash scripts/main.sh --report somewhere" in result.stderr


def test_the_real_run_writes_the_report_it_prints(tmp_path):
    """The script's own pytest invocation, on one smoke-budget cell (synthetic images)."""
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("no .venv (bash scripts/test.sh creates it)")
    report = tmp_path / "report"
    script = f'source "{SCRIPT}"\nreplicate "$@"\n'
    args = ["--budget", "smoke", "--store", str(tmp_path / "store"), "--report", str(report)]
    result = subprocess.run(
        ["bash", "-c", script, "main.sh", *args, "-k", "profile_shape and vgg6_narrow-baseline-s0-e1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "2", "MPLBACKEND": "Agg"},
    )
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-3000:]
    assert f"replication report: {report}/report.md" in result.stdout
    assert "1 passed" in result.stdout or "1 failed" in result.stdout  # one claim test ran
    assert (report / "results.json").is_file()
