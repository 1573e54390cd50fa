"""The pytest face of crlm_bench: ``pytest claims/ --budget cpu -k resnet8_narrow``.

Registered through the ``pytest11`` entry point, so any pytest in the environment knows it; it
stays inert unless a test asks for one of its fixtures. Options:

    --budget {smoke,cpu,paper}   the grid of cells (default paper)
    --store DIR                  artifact store (default $CRLM_STORE or ~/.cache/crlm-bench/store)
    --data-dir DIR               data root (default $CRLM_DATA or ~/.cache/crlm-bench/data)
    --download                   allow downloading missing data sets
    --device DEV                 torch device (default cuda when available)
    --report DIR                 where the replication report is written (default crlm-report)

With pytest-xdist (``pytest claims/ -n 8 --dist loadgroup``) each worker is pinned to one GPU of
the caller's ``CUDA_VISIBLE_DEVICES`` (worker i gets device i mod n) before CUDA starts, tests of
one model are grouped on one worker, the store's locks compute each cell once, and the controller
assembles one report from every worker's verdicts.

Claim tests take one of the group fixtures below, parametrised from the budget's grid alone (so
``--collect-only`` touches no data) with ids that carry dataset, model and recipe. A group's cells
are trained and profiled when a selected test first needs them — once per store, whichever tests
share them — and cells of deselected tests are never built. At the end of the session the report
(Markdown, JSON, figures) is written from every cell and verdict the session produced.

Before any test runs, the selection is checked (:func:`preflight`): the paper budget on a machine
without CUDA, asked for by default rather than by ``--budget paper``, and a data set the cells
to compute need but cannot find stop the session at once with what to type (exit status 4,
pytest's usage error, not 1: "a claim did not replicate"); the cost of what is left to compute
is printed, also with ``--collect-only``. While a cell is computed, :class:`Progress` shows which
cell, the training epoch or profiling stage, and the cells left, in pytest's terminal without
``-s`` (one line per step in a log; ``-q`` turns it off). At the end the verdict table is printed
beside the report's path.

In claim test ids ``-k`` matches dataset and model names whole (:class:`WholeNameKeywords`):
``-k cifar10`` selects CIFAR-10 and not CIFAR-100, ``-k "not cifar10"`` keeps CIFAR-100, ``-k
resnet18`` selects no model whose name merely contains it, and a word that is only part of names
(``-k resnet1``, ``-k narrow``) selects no claim test, with a line in the output saying so. A word
may not cut a name: ``cifar10-resnet18`` matches, ``cifar10-resnet1`` does not. Every other word
(recipes, seeds, epochs, test and file names), every expression's logic, and every test that is
not a claim test keep pytest's rule, a case-insensitive substring of the test's keywords.
``-p no:crlm-bench-whole-names`` leaves ``-k`` to pytest alone.

One module (about 800 lines, above the project's ~500): pytest discovers hooks in the module its
entry point names, so the hooks, options, preflight and progress stay where pytest looks for them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from crlm_bench import workers

log = logging.getLogger(__name__)


def _positive_int(text: str) -> int:
    """An option's value as a positive integer; anything else is pytest's usage error (exit 4)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    from crlm_bench.replication.budgets import budget_names

    group = parser.getgroup("crlm-bench", "crlm-bench: replication of Kaufman & Azencot (ICML 2023)")
    group.addoption(
        "--budget",
        default=None,
        choices=budget_names(),
        help="grid of cells to replicate on (default paper; without CUDA only when asked for)",
    )
    group.addoption(
        "--store",
        default=None,
        help="artifact store directory (default $CRLM_STORE, else ~/.cache/crlm-bench/store)",
    )
    group.addoption(
        "--data-dir",
        default=None,
        help="data root directory (default $CRLM_DATA, else ~/.cache/crlm-bench/data)",
    )
    group.addoption(
        "--download", action="store_true", default=False, help="allow downloading missing data sets"
    )
    group.addoption("--device", default=None, help="torch device (default cuda when available, else cpu)")
    group.addoption(
        "--report", default="crlm-report", help="replication report directory (default crlm-report)"
    )
    group.addoption(
        "--executor",
        default="local",
        choices=("local", "submitit"),
        help="local: compute cells in the test process; submitit: submit the missing cells of the "
        "selected tests as one job array first (the store must be on a shared file system)",
    )
    group.addoption(
        "--submitit-cluster", default=None, help="submitit cluster: auto (default), slurm, local, debug"
    )
    group.addoption("--submitit-folder", default=None, help="job logs (default <store>/.submitit)")
    group.addoption("--slurm-partition", default=None, help="Slurm partition")
    group.addoption("--slurm-gpus-per-task", type=int, default=None, help="GPUs per task")
    group.addoption("--slurm-time", type=int, default=None, help="time limit per job, minutes")
    group.addoption(
        "--submitit-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other submitit parameter (e.g. mem_gb=64, slurm_array_parallelism=8)",
    )
    group.addoption(
        "--threads",
        type=_positive_int,
        default=None,
        help="torch threads for computing cells, in every process and job (default: torch's; under "
        "xdist, the CPU count shared among the workers). Numbers are bit-identical across runs with "
        "the same thread count; other counts change training's rounding",
    )


def budget_of(config: pytest.Config) -> str:
    """The session's budget: ``--budget``, else the paper's (``budgets.DEFAULT_BUDGET``)."""
    from crlm_bench.replication.budgets import DEFAULT_BUDGET

    return config.getoption("--budget", None) or DEFAULT_BUDGET


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "xdist_group(name): run on the same xdist worker (--dist loadgroup)")
    index = workers.worker_index()
    if index is not None and "CRLM_NO_PIN" not in os.environ:
        chosen = workers.pin_device(index)
        if chosen is not None:
            log.info("xdist worker %d pinned to CUDA device %s", index, chosen)
    threads = workers.worker_threads(config.getoption("--threads", None))
    if threads:
        import torch

        torch.set_num_threads(threads)
    config.pluginmanager.register(WholeNameKeywords(), WHOLE_NAMES_PLUGIN)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group the tests of one model on one xdist worker (``--dist loadgroup``), and run the tests
    that compare a dataset's models last: by then the workers have computed those models in
    parallel, instead of one worker computing them in turn while the others wait on its locks."""
    per_model: list[pytest.Item] = []
    per_dataset: list[pytest.Item] = []
    spread = config.getvalue("dist") not in (None, "no")  # only xdist gains from the order
    # a budget without measurement changes has no attribution test: deselected, not skipped
    unchanged = [i for i in items if _ATTRIBUTION in getattr(i, "fixturenames", ()) and not _item_groups(i)]
    if unchanged:
        config.hook.pytest_deselected(items=unchanged)
        items[:] = [i for i in items if i not in unchanged]
    for item in items:
        target = per_model
        for kind, group in _item_groups(item):
            item.add_marker(pytest.mark.xdist_group(workers.worker_group(kind, group)))
            if kind == "dataset_models" and spread:
                target = per_dataset
        target.append(item)
    items[:] = per_model + per_dataset  # one process: each file's tests together, as collected


#: the attribution test's fixture (crlm_bench.replication.grid.ATTRIBUTION_KIND; a test checks they agree)
_ATTRIBUTION = "attribution"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    from crlm_bench.replication.budgets import get_budget
    from crlm_bench.replication.grid import TEST_KINDS, groups_of

    wanted = [name for name in TEST_KINDS if name in metafunc.fixturenames]
    if not wanted:
        return
    groups = groups_of(get_budget(budget_of(metafunc.config)))
    for name in wanted:
        # function scope: pytest would otherwise reorder the tests that share a group across files
        metafunc.parametrize(name, groups[name], ids=[g.id for g in groups[name]])


class Progress:
    """Which cell this process computes and how far it is, in pytest's terminal without ``-s``.

    Called as ``progress(message, step)`` (the pipeline's ``report``). On a terminal one line is
    rewritten in place, at most every :attr:`REFRESH_S` seconds; in a log (not a TTY) each step
    (an epoch, an ID run, a chunk of points) gets a line of its own and nothing else does. An
    xdist worker writes its lines, prefixed with its id, to its standard error, which is the
    controller's terminal or log. pytest's ``-q`` turns it off."""

    REFRESH_S = 1.0

    def __init__(self, config: pytest.Config):
        self.reporter = config.pluginmanager.get_plugin("terminalreporter")
        self.capman = config.pluginmanager.get_plugin("capturemanager")
        self.worker = getattr(config, "workerinput", {}).get("workerid")
        self.enabled = config.get_verbosity() >= 0 and (self.reporter is not None or self.worker is not None)
        self.live = bool(self.worker is None and self.reporter is not None and self.reporter.isatty())
        self.left: int | None = None  # cells of the selection left to compute (set by preflight)
        self.started = self.last = 0.0
        self._open = False  # a rewritten line is on the screen without its newline

    def begin(self) -> None:
        """Count the elapsed time from now (a cell, the job array)."""
        self.started = time.monotonic()

    def start(self, cell_id: str) -> None:
        self.begin()
        left = f" ({self.left} cells of the selection left to compute)" if self.left else ""
        self(f"computing {cell_id}{left}", True)

    def done(self, cell_id: str) -> None:
        if self.left:
            self.left -= 1
        self(f"{cell_id} computed", True, final=True)

    def __call__(self, message: str, step: bool = True, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not step and (not self.live or now - self.last < self.REFRESH_S):
            return
        self.last = now
        line = f"crlm-bench: {message} [{now - self.started:.0f} s]"
        with self._uncaptured():
            if self.worker is not None:
                sys.stderr.write(f"[{self.worker}] {line}\n")
                sys.stderr.flush()
            elif self.live:
                if not self._open:
                    self.reporter.ensure_newline()
                self.reporter.rewrite(line, erase=True)
                self._open = not final
                if final:
                    self.reporter.write("\n", flush=True)
            else:
                self.reporter.ensure_newline()
                self.reporter.write_line(line)
                self.reporter.flush()

    def _uncaptured(self):
        import contextlib

        return (
            self.capman.global_and_fixture_disabled() if self.capman is not None else contextlib.nullcontext()
        )


@dataclass
class Replication:
    """Session state: the store, lazily computed cell results, and the verdicts of the tests run."""

    config: pytest.Config
    failures: dict = field(default_factory=dict)  # cell key -> JobFailure (submitit)
    cells: dict = field(default_factory=dict)  # cell key -> the cell's settings (to_dict)
    verdicts: list = field(default_factory=list)

    def __post_init__(self) -> None:
        from crlm_bench.experiment.pipeline import Context
        from crlm_bench.experiment.store import Store
        from crlm_bench.replication.session import StoredResults

        opt = self.config.getoption
        self.store = Store(opt("--store"))
        self.stored = StoredResults(self.store)
        self.context = Context(
            data_root=opt("--data-dir"), download=opt("--download"), device=opt("--device"), progress=False
        )
        self.budget = budget_of(self.config)
        self.progress = Progress(self.config)

    def result(self, cell):
        """The cell's result, computed (trained, profiled) once per store and cached for the session."""
        if cell.key in self.failures:
            pytest.fail(self.failures[cell.key].message(), pytrace=False)
        result = self.stored(cell)  # looked up once: StoredResults keeps what it read
        if result is None:
            import dataclasses

            self.progress.start(cell.id)
            # the selected tests' cells on the same activations are measured with this one
            context = dataclasses.replace(self.context, report=self.progress)
            result = self.stored.compute(cell, context, alongside=self.config.stash.get(_SELECTED, ()))
            self.progress.done(cell.id)
        self.cells[cell.key] = cell.to_dict()
        return result

    def verdicts_for(self, claim, group) -> list:
        """Every variant's verdicts of ``claim`` (a claim object or its name) on ``group``; the main
        variant's are returned."""
        from crlm_bench.replication.claims import MAIN_VARIANT
        from crlm_bench.replication.grid import evaluate_group

        found = evaluate_group(claim, group, self.result)
        self.verdicts.extend(found)
        return [v for v in found if v.variant == MAIN_VARIANT]


_STATE = pytest.StashKey[Replication]()
#: the cells of the selected tests (set at the end of collection, in every process)
_SELECTED = pytest.StashKey[list]()


def _state(config: pytest.Config) -> Replication:
    state = config.stash.get(_STATE, None)
    if state is None:
        state = Replication(config)
        config.stash[_STATE] = state
    return state


@pytest.fixture(scope="session")
def replication(request: pytest.FixtureRequest) -> Replication:
    """The session's :class:`Replication` (store, cached results, collected verdicts)."""
    return _state(request.config)


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # before xdist's own choice of scheduler
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadgroup`` that groups the claim tests by their parameters, not by node ids
    (:func:`crlm_bench.workers.claim_group_scheduler`)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    return workers.claim_group_scheduler(config, log)


def _item_groups(item: pytest.Item) -> list:
    """The (kind, Group) parameters a claim test item was given by pytest_generate_tests."""
    from crlm_bench.replication.grid import TEST_KINDS

    params = getattr(getattr(item, "callspec", None), "params", {})
    # a kind the budget has no group of is parametrized with an empty set: no Group, no cells
    return [(kind, params[kind]) for kind in TEST_KINDS if hasattr(params.get(kind), "cells")]


WHOLE_NAMES_PLUGIN = "crlm-bench-whole-names"
_NAME_CHARS = "a-z0-9_"  # a dataset or model name stands whole where no such character touches it


def matches_whole_names(word: str, text: str, names: Iterable[str]) -> bool:
    """Whether the ``-k`` word ``word`` matches ``text`` as pytest's ``-k`` does (a case-insensitive
    substring) without cutting one of ``names`` where it stands whole in ``text``: an occurrence of
    ``word`` that overlaps such a name must cover all of it. So in ``cifar100-resnet18-baseline-s0-e200``
    with the names cifar100 and resnet18, ``cifar100``, ``resnet18``, ``cifar100-resnet18``,
    ``baseline`` and ``s0-e20`` match, and ``cifar10``, ``resnet1`` and ``0-resnet18`` do not."""
    word, text = word.lower(), text.lower()
    if word not in text:
        return False
    spans = [
        (m.start(), m.end())
        for name in names
        for m in re.finditer(rf"(?<![{_NAME_CHARS}]){re.escape(name.lower())}(?![{_NAME_CHARS}])", text)
    ]
    start = text.find(word)
    while start != -1:
        end = start + len(word)
        if all(start <= a and b <= end for a, b in spans if start < b and a < end):
            return True
        start = text.find(word, start + 1)
    return False


@dataclass(frozen=True)
class _WholeNameMatcher:
    """pytest's ``-k`` matcher for a claim test, except that the dataset and model names in its id
    match whole only (:func:`matches_whole_names`). ``keywords`` are the names pytest's own matcher
    holds for the item; ``own`` is the test's name (``test_x[<id>]``); ``names`` its group's
    datasets and models. ``hits`` collects the words that matched, ``missed`` the words that
    occur in ``own`` but did not match, each with the names it is a part of."""

    keywords: frozenset[str]
    own: str
    names: frozenset[str]
    hits: set[str]
    missed: dict[str, set[str]]

    def __call__(self, word: str, /, **kwargs: object) -> bool:
        if kwargs:  # pytest's KeywordMatcher says the same
            raise pytest.UsageError("Keyword expressions do not support call parameters.")
        if any(matches_whole_names(word, k, self.names if k == self.own else ()) for k in self.keywords):
            self.hits.add(word)
            return True
        lowered = word.lower()
        if lowered in self.own.lower():
            self.missed.setdefault(word, set()).update(n for n in self.names if lowered in n.lower())
        return False


class WholeNameKeywords:
    """``-k`` for a session with claim tests: the dataset and model names in claim test ids match
    whole, every other word and every other test as pytest defines.

    pytest evaluates ``-k`` once, in its mark plugin's ``pytest_collection_modifyitems``, with a
    substring rule. Narrowing it afterwards cannot work: ``-k "not cifar10"`` would already have
    dropped the CIFAR-100 tests, and pytest has no hook to select them again. So this wrapper takes
    ``-k`` over when the session holds claim tests: while the other implementations run it hides
    the expression from the mark plugin (``option.keyword``, which only that plugin reads; ``-m``
    still applies there), then evaluates it once over every item, claim tests with
    :class:`_WholeNameMatcher` and all others with pytest's own ``KeywordMatcher``, deselects
    through ``pytest_deselected`` as pytest does, and puts the option back. That is almost where
    pytest evaluates it: its mark plugin is registered first, so its implementation runs after
    every other plain one, and this wrapper's second half runs after all of them and before the
    second half of ``tryfirst`` wrappers such as ``--lf``'s. Only other plugins' ``trylast``
    implementations, and the second half of plain wrappers registered before this one, now see the
    items before ``-k`` rather than after it.
    Without claim tests, or without ``-k``, it does nothing, and ``-p no:crlm-bench-whole-names``
    leaves ``-k`` to pytest alone.

    This relies on pytest internals: ``_pytest.mark.KeywordMatcher`` (and its ``_names``),
    ``_pytest.mark.expression.Expression``, and the mark plugin reading ``config.option.keyword``.
    tests/replication/test_plugin_selection.py pins each of them.
    """

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]):
        expression = config.option.keyword
        if not expression.strip() or not any(_item_groups(item) for item in items):
            return (yield)
        config.option.keyword = ""
        try:
            result = yield
        finally:
            config.option.keyword = expression
        _deselect_by_keyword(config, items, expression.lstrip())
        return result


def _deselect_by_keyword(config: pytest.Config, items: list[pytest.Item], expression: str) -> None:
    """pytest's ``deselect_by_keyword``, with :class:`_WholeNameMatcher` for claim tests."""
    from _pytest.mark import KeywordMatcher
    from _pytest.mark.expression import Expression

    try:
        compiled = Expression.compile(expression)
    except SyntaxError as e:  # pytest's own message (_pytest.mark._parse_expression)
        raise pytest.UsageError(
            f"Wrong expression passed to '-k': {e.text}: at column {e.offset}: {e.msg}"
        ) from None
    remaining, deselected = [], []
    hits: set[str] = set()
    missed: dict[str, set[str]] = {}
    for item in items:
        matcher = KeywordMatcher.from_item(item)
        groups = _item_groups(item)
        if groups:
            names = {n for _, g in groups for c in g.cells for n in (c.training.dataset, c.training.model)}
            keywords = frozenset(matcher._names)  # the names pytest's -k would match the item on
            matcher = _WholeNameMatcher(keywords, item.name, frozenset(names), hits, missed)
        (remaining if compiled.evaluate(matcher) else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = remaining
    _note_missed(config, {w: n for w, n in missed.items() if w not in hits})


def _note_missed(config: pytest.Config, missed: dict[str, set[str]]) -> None:
    """Say which ``-k`` words matched no claim test only because they are part of a name."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    for word, names in sorted(missed.items()):
        inside = f" (part of {', '.join(sorted(names))})" if names else ""
        reporter.write_line(
            f"crlm-bench: -k {word!r} matches no claim test{inside}: dataset and model names in "
            "claim test ids match whole only"
        )


def _selected_cells(items: list[pytest.Item]) -> list:
    return [cell for item in items for _, group in _item_groups(item) for cell in group.cells]


def _submitit_parameters(config: pytest.Config) -> dict:
    opt = config.getoption
    params: dict = {}
    if opt("--slurm-partition"):
        params["slurm_partition"] = opt("--slurm-partition")
    if opt("--slurm-gpus-per-task") is not None:
        params["slurm_gpus_per_task"] = opt("--slurm-gpus-per-task")
    if opt("--slurm-time") is not None:
        params["timeout_min"] = opt("--slurm-time")
    for item in opt("--submitit-option"):
        name, sep, value = item.partition("=")
        if not sep:
            raise pytest.UsageError(f"--submitit-option {item!r}: expected KEY=VALUE")
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                pass
        params[name] = value
    return params


#: pytest's exit status for a session stopped before any work by :func:`preflight`
PREFLIGHT_EXIT = pytest.ExitCode.USAGE_ERROR


def _budget_asked(config: pytest.Config) -> bool:
    return config.getoption("--budget", None) is not None


def preflight(config: pytest.Config, cells: list) -> str | None:
    """Why the session must stop before any work (what to type instead), or None to go on.

    Runs at the end of collection, over the cells of the selected tests: the paper budget by
    default on a machine with no CUDA device (and no ``--device``), then every data set that the
    cells still to compute need and that is not where the run will look (files only; nothing is
    read, built or written). Prints the cost of what is left to compute from the store's timings.
    """
    from crlm_bench.experiment.cost import estimate
    from crlm_bench.replication.budgets import CPU_BUDGET, DEFAULT_BUDGET
    from crlm_bench.vision import datasets

    state = _state(config)
    if not cells:
        return None
    cost = estimate(cells, state.store)
    state.progress.left = cost.profiles
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"crlm-bench: {state.budget} budget, {cost.describe()}")
    if not _budget_asked(config) and state.budget == DEFAULT_BUDGET and not config.getoption("--device"):
        import torch

        if cost.profiles and not torch.cuda.is_available():
            return (
                f"no --budget given, so the {DEFAULT_BUDGET} budget was chosen: the paper's grid "
                f"({cost.describe()}; GPU hours, each network trained for up to 200 epochs), and no "
                "CUDA device is visible on this machine.\n"
                f"  On a CPU, run the small grid:      pytest claims/ --budget {CPU_BUDGET}\n"
                f"  To run the paper grid here anyway: pytest claims/ --budget {DEFAULT_BUDGET}"
            )
    if config.option.collectonly or config.getoption("--download"):
        return None
    todo = {c.training.dataset for c in cells if not state.stored.holds(c)}
    lost = {name: datasets.missing(name, config.getoption("--data-dir")) for name in sorted(todo)}
    lost = {name: where for name, where in lost.items() if where}
    if lost:
        where = "; ".join(
            f"{name} (looked in {', '.join(map(str, folders))})" for name, folders in lost.items()
        )
        names = " ".join(lost)
        return (
            f"the selected tests need data not found on this machine: {where}.\n"
            "  Point to it:    --data-dir DIR   (or CRLM_DATA=DIR)\n"
            "  Or fetch it:    --download       (or, once: "
            + "; ".join(f"crlm-bench fetch {n} --download" for n in lost)
            + ")\n"
            f"Nothing was computed or written. (data sets: {names})"
        )
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids: list[str]) -> None:
    """xdist controller: the preflight over the first worker's collection (every worker collects
    the same tests), before any test is scheduled."""
    config = node.config
    if config.stash.get(_PREFLOWN, False):
        return
    config.stash[_PREFLOWN] = True
    stop = preflight(config, _cells_of_ids(config, ids))
    if stop is not None:
        pytest.exit(f"crlm-bench: {stop}", returncode=PREFLIGHT_EXIT)


_PREFLOWN = pytest.StashKey[bool]()


def _cells_of_ids(config: pytest.Config, ids: list[str]) -> list:
    """The cells of the claim tests among node ids ``file::test[GROUP]``.

    A node id is a claim test's only where its test function takes a group fixture, the rule
    :func:`pytest_generate_tests` applies: the controller does not collect, so it reads the
    function's parameters from the file (an id of another test may carry a cell's id as its
    parameter, e.g. a test of cell ids)."""
    from crlm_bench.replication.budgets import get_budget
    from crlm_bench.replication.grid import groups_of

    by_id = {g.id: g for groups in groups_of(get_budget(budget_of(config))).values() for g in groups}
    claim_tests: dict[str, frozenset[str]] = {}
    cells = []
    for node_id in ids:
        group = by_id.get(node_id.rpartition("[")[2].rstrip("]")) if node_id.endswith("]") else None
        if group is None:
            continue
        path, _, name = node_id.partition("[")[0].partition("::")
        if path not in claim_tests:
            claim_tests[path] = _claim_test_functions(config.rootpath / path)
        if name in claim_tests[path]:
            cells += list(group.cells)
    return cells


def _claim_test_functions(path: Path) -> frozenset[str]:
    """Names of the module-level test functions in ``path`` that take a group fixture (none where
    the file cannot be read or parsed: pytest's own collection reports that)."""
    import ast

    from crlm_bench.replication.grid import TEST_KINDS

    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return frozenset()
    functions = (n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
    return frozenset(
        f.name for f in functions if {a.arg for a in (*f.args.args, *f.args.kwonlyargs)} & set(TEST_KINDS)
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    """Check the selection before any work (:func:`preflight`); then, with ``--executor
    submitit``, compute the selected tests' missing cells as a job array first."""
    config = session.config
    config.stash[_SELECTED] = _selected_cells(session.items)
    if hasattr(config, "workerinput"):
        return
    stop = preflight(config, config.stash[_SELECTED])
    if stop is not None:
        pytest.exit(f"crlm-bench: {stop}", returncode=PREFLIGHT_EXIT)
    if config.getoption("--executor") != "submitit" or config.option.collectonly:
        return
    from crlm_bench.experiment.executors import missing_cells, submit

    state = _state(config)
    missing = missing_cells(config.stash[_SELECTED], state.store)
    if not missing:
        return
    folder = config.getoption("--submitit-folder") or str(Path(state.store.root) / ".submitit")
    state.progress.begin()
    cluster = config.getoption("--submitit-cluster")
    failures = submit(
        missing,
        state.store,
        state.context,
        folder=folder,
        cluster=None if cluster in (None, "auto") else cluster,
        parameters=_submitit_parameters(config),
        threads=config.getoption("--threads"),
        report=state.progress,
    )
    state.failures.update(failures)


def check(verdicts: list, *, selection: str | None = None) -> None:
    """Pass when every (selected) verdict holds, fail when one fails, and xfail when none fails but
    one is inconclusive: its interval straddles the threshold (the data cannot decide).

    An xfail shows in pytest's summary line as its own kind ("xfailed"), with the reason in
    ``-rx``, and never counts as a pass; a strict xfail or a skip would hide it (the first turns a
    later pass red, the second reads as "not run"). No verdict at all is a failure."""
    chosen = [v for v in verdicts if selection is None or selection in v.statistic]
    if not chosen:
        pytest.fail(f"no verdict could be formed{f' for {selection!r}' if selection else ''}", pytrace=False)
    failed = [v for v in chosen if v.outcome == "fails"]
    if failed:
        pytest.fail("\n".join(f"{v.claim} [{v.group}] {v.explanation}" for v in failed), pytrace=False)
    undecided = [v for v in chosen if v.outcome == "inconclusive"]
    if undecided:
        pytest.xfail(
            "inconclusive: " + "\n".join(f"{v.claim} [{v.group}] {v.explanation}" for v in undecided)
        )


_WORKER_KEY = "crlm_bench"
_COLLECTED = pytest.StashKey[list]()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """xdist controller: keep what a finished worker found, for the one report."""
    payload = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
    if payload:
        node.config.stash.setdefault(_COLLECTED, []).append(json.loads(payload))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = config.stash.get(_STATE, None)
    if hasattr(config, "workerinput"):  # an xdist worker: hand the verdicts to the controller
        if state is not None and state.verdicts:
            payload = {
                "budget": state.budget,
                "store": str(state.store.root),
                "verdicts": [v.to_dict() for v in state.verdicts],
                "cells": list(state.cells.values()),
            }
            config.workeroutput[_WORKER_KEY] = json.dumps(payload)
        return
    collected = config.stash.get(_COLLECTED, [])
    if collected:  # the xdist controller: one report from every worker
        verdicts, results = _merge(config, collected)
        budget, root = collected[0]["budget"], collected[0]["store"]
    elif state is not None and state.verdicts:
        verdicts, results = state.verdicts, state.stored.found()
        budget, root = state.budget, state.store.root
    else:
        return
    from crlm_bench.replication.session import write_budget_report

    directory = write_budget_report(
        config.getoption("--report"), verdicts, results, budget=budget, store_root=root
    )
    config.stash[_SUMMARY] = (verdicts, Path(directory))


_SUMMARY = pytest.StashKey[tuple]()


def verdict_table(verdicts: list) -> str:
    """The main variant's verdicts as a table: claim, group, statistic, value, threshold, verdict."""
    from tabulate import tabulate

    from crlm_bench.replication.claims import MAIN_VARIANT, fmt

    def short(text: str) -> str:  # the details in parentheses are in the report
        text = text.split(" (")[0]
        return text if len(text) <= 40 else text[:39] + "…"

    rows = [
        [
            v.claim,
            v.group,
            short(v.statistic),
            fmt(v.value),
            v.interval_text(),
            short(v.threshold),
            {"holds": "holds", "fails": "FAILS"}.get(v.outcome, v.outcome),
        ]
        for v in verdicts
        if v.variant == MAIN_VARIANT
    ]
    headers = ["claim", "group", "statistic", "value", "95 % interval", "threshold", "outcome"]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """The verdict table and the report's path, after pytest's own summary."""
    summary = config.stash.get(_SUMMARY, None)
    if summary is None:
        return
    verdicts, directory = summary
    main = [v for v in verdicts if v.variant == _main_variant()]
    held = sum(v.outcome == "holds" for v in main)
    undecided = sum(v.outcome == "inconclusive" for v in main)
    headline = f"crlm-bench: {held} of {len(main)} verdicts hold"
    if undecided:
        headline += f", {undecided} inconclusive"
    terminalreporter.section(headline, sep="=")
    for line in verdict_table(verdicts).splitlines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"crlm-bench: replication report written to {directory}/report.md")


def _main_variant() -> str:
    from crlm_bench.replication.claims import MAIN_VARIANT

    return MAIN_VARIANT


def _merge(config: pytest.Config, collected: list[dict]) -> tuple[list, list]:
    """Verdicts of all workers, and their cells' results read back from the shared store."""
    from crlm_bench.experiment.cell import Cell
    from crlm_bench.experiment.store import Store
    from crlm_bench.replication.claims import Verdict
    from crlm_bench.replication.session import StoredResults

    verdicts = [Verdict.from_dict(v) for part in collected for v in part["verdicts"]]
    cells = [Cell.from_dict(data) for part in collected for data in part["cells"]]
    return verdicts, StoredResults(Store(collected[0]["store"])).of(cells)
