"""A pytest plugin for mutation runs (``-p mutation.guard`` in ``[tool.mutmut]``): stop the run unless
every ``crlm_bench`` module the tests import is the mutated copy under ``mutants/``, and keep only
the tests of the group being mutated (``bash scripts/mutation.sh claims``).

mutmut runs pytest inside ``mutants/`` with that directory first on ``sys.path``. Two things could
still import the unmutated package and let every mutant "survive" (or, from another checkout's
editable install, test other code altogether): the ``pytest11`` entry point that loads
``crlm_bench.pytest_plugin``, and the editable install's import finder, which serves any
``crlm_bench`` module missing from the copy. The guard checks after the plugins are loaded and
again after collection, when the tests have imported what they need.

A partial run sets :data:`TESTS_VARIABLE` to the test paths of its group, so that the run neither
waits for nor depends on the other group's tests (mutmut runs every selected test once first).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

#: pytest's exit status for a usage error: mutmut stops on it, where a failure would count as a kill.
USAGE_ERROR = 4

#: Set by scripts/mutation.sh for a partial run: comma-separated test path prefixes to keep.
TESTS_VARIABLE = "CRLM_MUTATION_TESTS"


def foreign_modules(root: Path) -> list[str]:
    """``name (file)`` of each loaded crlm_bench module whose file is not under ``root``."""
    out = []
    for name, module in sorted(sys.modules.items()):
        if name != "crlm_bench" and not name.startswith("crlm_bench."):
            continue
        path = getattr(module, "__file__", None)
        if path is None or not Path(path).resolve().is_relative_to(root):
            out.append(f"{name} ({path})")
    return out


def _check(when: str) -> None:
    root = Path.cwd().resolve()  # mutmut runs pytest inside mutants/
    if root.name != "mutants":
        pytest.exit(f"mutation.guard: expected to run inside mutants/, not {root}", returncode=USAGE_ERROR)
    import crlm_bench  # noqa: F401  (at least the package itself must come from the copy)

    foreign = foreign_modules(root)
    if foreign:
        pytest.exit(
            f"mutation.guard ({when}): these crlm_bench modules are not the mutated copy under {root}, "
            "so the mutants would not be tested: " + "; ".join(foreign),
            returncode=USAGE_ERROR,
        )


def pytest_configure(config: pytest.Config) -> None:
    _check("after loading plugins")


def pytest_collection_finish(session: pytest.Session) -> None:
    _check("after collection")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    prefixes = tuple(p for p in os.environ.get(TESTS_VARIABLE, "").split(",") if p)
    if not prefixes:
        return
    dropped = [item for item in items if not item.nodeid.startswith(prefixes)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item.nodeid.startswith(prefixes)]
