"""The GitHub workflows: valid YAML with the triggers, runners and steps they promise.

The structural checks need PyYAML (the ``test`` extra); without it only the text checks run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

WORKFLOWS = Path(__file__).resolve().parents[1] / ".github" / "workflows"
NIGHTLY, CPU = WORKFLOWS / "nightly-gpu.yml", WORKFLOWS / "cpu.yml"


def load(path: Path) -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (the test extra adds it)")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a YAML mapping"
    return data


def triggers(data: dict) -> dict:
    """The ``on:`` mapping (YAML 1.1, as PyYAML reads it, turns the key ``on`` into True)."""
    on = data.get("on", data.get(True))
    return {on: None} if isinstance(on, str) else {name: None for name in on} if isinstance(on, list) else on


def steps(data: dict, job: str) -> list[dict]:
    return data["jobs"][job]["steps"]


def step(data: dict, job: str, words: str) -> dict:
    found = [s for s in steps(data, job) if words in s.get("run", "") or words in s.get("uses", "")]
    assert len(found) == 1, f"expected one step of {job} with {words!r}, found {len(found)}"
    return found[0]


def test_nightly_runs_every_night_and_on_demand_with_a_budget():
    on = triggers(load(NIGHTLY))
    (schedule,) = on["schedule"]
    minute, hour, day, month, weekday = schedule["cron"].split()
    assert (day, month, weekday) == ("*", "*", "*") and minute.isdigit() and hour.isdigit()
    budget = on["workflow_dispatch"]["inputs"]["budget"]
    assert budget["default"] == "paper" and set(budget["options"]) == {"smoke", "cpu", "paper"}


def test_nightly_runs_on_the_self_hosted_gpu_runner_with_persistent_paths():
    data = load(NIGHTLY)
    assert data["jobs"]["replicate"]["runs-on"] == ["self-hosted", "gpu"]
    env = data["env"]
    assert env["CRLM_STORE"].startswith("/") and env["CRLM_DATA"].startswith("/")
    assert "inputs.budget" in env["BUDGET"] and "'paper'" in env["BUDGET"]


def test_nightly_steps_replicate_upload_summarise_compare_and_keep():
    data = load(NIGHTLY)
    names = [s.get("uses", "").split("@")[0] or s["run"] for s in steps(data, "replicate")]
    assert names[0] == "actions/checkout"
    assert "bash -c 'source scripts/_venv.sh test'" in names

    claims = step(data, "replicate", "pytest claims/")
    assert claims["continue-on-error"] is True
    assert '--budget "$BUDGET"' in claims["run"] and "--report report" in claims["run"]

    upload = step(data, "replicate", "actions/upload-artifact@v4")
    assert upload["with"]["path"].rstrip("/") == "report" and "always()" in upload["if"]

    summary = step(data, "replicate", "report/report.md")
    assert "$GITHUB_STEP_SUMMARY" in summary["run"] and "always()" in summary["if"]

    comparing = step(data, "replicate", "crlm-bench compare")
    assert (
        "report/results.json" in comparing["run"] and '--summary "$GITHUB_STEP_SUMMARY"' in comparing["run"]
    )
    assert "continue-on-error" not in comparing  # a regression fails the job

    keep = step(data, "replicate", "cp report/results.json")
    assert "steps.claims.outputs.exit" in keep["if"]
    order = [steps(data, "replicate").index(s) for s in (claims, upload, summary, comparing, keep)]
    assert order == sorted(order)


def test_nightly_shows_every_value_change_and_adds_each_completed_run_to_the_history():
    data = load(NIGHTLY)
    comparing = step(data, "replicate", "crlm-bench compare")
    assert "--tolerance" in comparing["run"]
    keep = step(data, "replicate", "cp report/results.json")
    history = step(data, "replicate", "crlm-bench history")
    assert "--add report/results.json" in history["run"]
    assert '"$CRLM_LAST_RESULTS/history-$BUDGET.jsonl"' in history["run"]
    assert '--summary "$GITHUB_STEP_SUMMARY"' in history["run"]
    assert history["if"] == keep["if"]  # completed runs only, as the kept results
    assert steps(data, "replicate").index(history) > steps(data, "replicate").index(keep)


def test_the_nightly_crlm_bench_commands_parse():
    """Each `crlm-bench` command line of the nightly is one the command line accepts."""
    import shlex

    from crlm_bench import cli

    parser = cli.build_parser()
    found = []
    for s in steps(load(NIGHTLY), "replicate"):
        for line in s.get("run", "").replace("\\\n", " ").splitlines():
            if ".venv/bin/crlm-bench " in line:
                argv = shlex.split(line.split(".venv/bin/crlm-bench ", 1)[1])
                parser.parse_args(argv)  # exits 2 on an unknown option or command
                found.append(argv[0])
    assert sorted(found) == ["compare", "history"]


def test_cpu_workflow_runs_the_readme_test_command():
    data = load(CPU)
    on = triggers(data)
    assert {"push", "pull_request"} <= set(on)
    job = data["jobs"]["test"]
    assert job["runs-on"] == "ubuntu-latest"
    python = step(data, "test", "actions/setup-python")
    assert str(python["with"]["python-version"]) == "3.11"
    runs = [s.get("run", "") for s in job["steps"]]
    assert any("sudo apt-get install -y dataset-fashion-mnist" in r for r in runs)
    assert runs[-1].strip() == "bash scripts/test.sh"


@pytest.mark.parametrize(
    "path,words",
    [
        (
            NIGHTLY,
            [
                "schedule:",
                "cron:",
                "workflow_dispatch:",
                "runs-on: [self-hosted, gpu]",
                "CRLM_STORE:",
                "CRLM_DATA:",
                "actions/upload-artifact@v4",
                "crlm-bench compare",
                "crlm-bench history",
                "--tolerance",
                "$GITHUB_STEP_SUMMARY",
                "continue-on-error: true",
            ],
        ),
        (
            CPU,
            [
                "push:",
                "pull_request:",
                "runs-on: ubuntu-latest",
                'python-version: "3.11"',
                "dataset-fashion-mnist",
                "run: bash scripts/test.sh",
            ],
        ),
    ],
)
def test_workflow_text_has_the_required_keys(path, words):
    """Without PyYAML: the text at least names what the structural tests check; no tabs (YAML
    forbids them)."""
    text = path.read_text(encoding="utf-8")
    assert "\t" not in text
    for w in words:
        assert w in text, f"{path.name} lacks {w!r}"
