"""The layer contracts and the style rules are enforced by tools in the test command: show that
each tool fails on a violation (an upward import, an import cycle, an over-long line)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed in this environment (pip install -e '.[test]')")
    return str(path)


def _copy(tmp_path: Path) -> Path:
    """A copy of the package and its pyproject.toml, for breaking on purpose."""
    shutil.copytree(
        ROOT / "crlm_bench", tmp_path / "crlm_bench", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint_imports(where: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(where), "COLUMNS": "400"}
    return subprocess.run(
        [_tool("lint-imports"), "--no-cache"], cwd=where, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_package_keeps_its_layer_contracts(tmp_path):
    result = _lint_imports(_copy(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_layers(tmp_path):
    where = _copy(tmp_path)
    module = where / "crlm_bench" / "geometry" / "neighbours.py"
    module.write_text(module.read_text() + "\nfrom crlm_bench.replication import claims  # noqa\n")
    result = _lint_imports(where)
    assert result.returncode == 1
    assert "crlm_bench.geometry is not allowed to import crlm_bench.replication" in result.stdout
    assert "crlm_bench.geometry.neighbours -> crlm_bench.replication.claims" in result.stdout


def test_an_import_cycle_between_sibling_modules_is_reported(tmp_path):
    where = _copy(tmp_path)
    module = where / "crlm_bench" / "experiment" / "cell.py"
    module.write_text(module.read_text() + "\nfrom crlm_bench.experiment import pipeline  # noqa\n")
    result = _lint_imports(where)
    assert result.returncode == 1
    assert "No cycles are allowed in crlm_bench.experiment" in result.stdout


def test_ruff_rejects_a_long_line_and_unformatted_code(tmp_path):
    where = _copy(tmp_path)
    module = where / "crlm_bench" / "files.py"
    module.write_text(module.read_text() + "\nLONG = " + repr("x" * 120) + "\n")
    ruff = _tool("ruff")
    check = subprocess.run([ruff, "check", str(module)], cwd=where, capture_output=True, text=True)
    assert check.returncode == 1 and "E501" in check.stdout
    fmt = subprocess.run([ruff, "format", "--check", str(module)], cwd=where, capture_output=True, text=True)
    assert fmt.returncode == 1
