"""The ``crlm-bench`` command line. Exit codes: 0 success, 1 failure, 2 usage error.

    crlm-bench demo                       estimators against ground truth on synthetic manifolds
    crlm-bench train CELL…                train (or resume) the cells' networks into the store
    crlm-bench profile CELL…              measure the cells' profiles (training first if needed)
    crlm-bench show CELL|KEY              a stored profile as a table (CELL --budget B: a budget's cell)
    crlm-bench report --budget B          the replication report from the store alone
    crlm-bench grid --budget B --list     a budget's cells and which of them are stored
    crlm-bench claims                     the claims: statistic, thresholds, where each is defined
    crlm-bench fetch NAME [--download]    check (or fetch) a data set
    crlm-bench compare PREV.json CUR.json verdicts that held before and fail now (exit 1 if any),
                                          every value's change, drift beyond --tolerance
    crlm-bench history FILE [--add R.json] one line per run; the last runs' values side by side
    crlm-bench store ls|verify|gc         inspect and clean the artifact store

A CELL is an id such as ``fashion-mnist-resnet8_narrow-baseline-s0-e10`` (dataset, model, recipe,
seed, epoch; ``-e5of10`` for epoch 5 of a 10-epoch run; ``-untrained-s0-e0`` for the
initialisation); measurement settings are options.

One module for every command (about 940 lines, above the project's ~500): each command is a short
function over the layers below, kept beside the parser that names its options.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shlex
import sys
import time
from collections.abc import Callable

from crlm_bench import __version__

log = logging.getLogger("crlm_bench")

#: default bound on the activations held while profiling, MiB
MEMORY_MB = 2048

CELL_HELP = """\
CELL is a cell id, DATASET-MODEL-RECIPE-sSEED-eEPOCH: e.g. fashion-mnist-vgg6_narrow-baseline-s0-e6
(epoch 6 of a 6-epoch run), cifar10-resnet18-baseline-s0-e50of200 (epoch 50 of a 200-epoch run:
a checkpoint), fashion-mnist-vgg6_narrow-untrained-s0-e0 (the initialisation). Training settings
beyond the id are --override NAME=VALUE; measurement settings are the options above."""


SHOW_HELP = """\
Which profile: CELL with the measurement and training options it was profiled with (the paper's
sizes when none are given); CELL --budget B, that budget's cell (as crlm-bench grid --budget B
--list calls it); or KEY, a profile's key or its first 8 or more hex digits (grid --list's key
column, or store ls)."""


class UsageError(Exception):
    """Bad arguments discovered after parsing (exit code 2)."""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


# --------------------------------------------------------------------------------------------
# shared options


def _add_store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store", metavar="DIR", help="artifact store (default $CRLM_STORE or ~/.cache/crlm-bench/store)"
    )


def _add_compute_options(p: argparse.ArgumentParser) -> None:
    _add_store_options(p)
    p.add_argument(
        "--data-dir", metavar="DIR", help="data root (default $CRLM_DATA or ~/.cache/crlm-bench/data)"
    )
    p.add_argument(
        "--download", action="store_true", help="allow downloading missing data sets (never done otherwise)"
    )
    p.add_argument("--device", help="torch device (default cuda when available, else cpu)")
    p.add_argument("--save-at", metavar="E,E,…", help="extra epochs at which to keep a checkpoint")
    p.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="training override, a recipe field or train option (lr=0.05, batch_size=64, train_subset=5000)",
    )


def _add_measurement_options(p: argparse.ArgumentParser) -> None:
    from crlm_bench.experiment.cell import (
        DEVIATIONS,
        INPUT_PROBES,
        POINT_SPLITS,
        PRECISIONS,
        PRESETS,
        Measurement,
    )

    d = Measurement()
    g = p.add_argument_group("measurement (defaults: the paper's)")
    g.add_argument("--points", type=int, default=d.points, help=f"points measured (default {d.points})")
    g.add_argument(
        "--toggles",
        type=int,
        default=d.toggles,
        help=f"smallest singular values toggled; 2^t − 1 neighbours (default {d.toggles})",
    )
    g.add_argument("--id-runs", type=int, default=d.id_runs, help=f"TwoNN runs (default {d.id_runs})")
    g.add_argument(
        "--id-samples", type=int, default=d.id_samples, help=f"images per TwoNN run (default {d.id_samples})"
    )
    g.add_argument(
        "--split",
        choices=POINT_SPLITS,
        default=d.split,
        help=f"where the points come from (default {d.split})",
    )
    g.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=d.precision,
        help=f"dtype of the fits (default {d.precision})",
    )
    g.add_argument(
        "--input-probe", choices=INPUT_PROBES, default=d.input_probe, help=f"(default {d.input_probe})"
    )
    g.add_argument(
        "--deviation",
        action="append",
        default=[],
        help=f"a named deviation from the paper (repeatable): {', '.join(DEVIATIONS)}",
    )
    g.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="a named set of settings and deviations; authors: the released code's procedure",
    )


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _cells(args: argparse.Namespace, with_measurement: bool) -> list:
    from crlm_bench.experiment.cell import Cell, Measurement
    from crlm_bench.experiment.pipeline import validate

    overrides = {}
    for item in getattr(args, "override", []) or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--override {item!r}: expected NAME=VALUE")
        overrides[name] = _value(value)
    save_at = ()
    if getattr(args, "save_at", None):
        try:
            save_at = tuple(int(e) for e in args.save_at.split(","))
        except ValueError:
            raise UsageError(f"--save-at {args.save_at!r}: expected comma-separated epochs") from None
    measurement = Measurement()
    try:
        if with_measurement:
            measurement = Measurement(
                points=args.points,
                toggles=args.toggles,
                id_runs=args.id_runs,
                id_samples=args.id_samples,
                split=args.split,
                precision=args.precision,
                input_probe=args.input_probe,
                deviations=tuple(args.deviation),
            )
            if args.preset:
                measurement = measurement.with_preset(args.preset)
        cells = []
        for text in args.cells:
            # --save-at may name epochs beyond a checkpoint cell's own epoch; keep those within the run
            cell = Cell.parse(text, measurement=measurement, overrides=overrides)
            if save_at:
                cell = Cell.parse(
                    text,
                    measurement=measurement,
                    overrides=overrides,
                    save_at=tuple(e for e in save_at if e <= cell.training.epochs),
                )
            cells.append(validate(cell))
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError(str(error)) from None
    return cells


def _context(args: argparse.Namespace):
    from crlm_bench.experiment.pipeline import Context

    memory_mb = getattr(args, "memory_mb", MEMORY_MB)  # only profiling holds activations
    if memory_mb < 1:
        raise UsageError(f"--memory-mb must be positive, got {memory_mb}")
    try:
        return Context(
            data_root=args.data_dir,
            download=args.download,
            device=args.device,
            memory_bytes=memory_mb * 2**20,
        ).check()
    except ValueError as error:
        raise UsageError(f"--device: {error}") from None


def _store(args: argparse.Namespace, *, missing_ok: bool = True):
    """The store at --store (else $CRLM_STORE, else the cache). A file, or a directory of other
    files, is a usage error; so is a missing path unless ``missing_ok`` (commands that make entries
    start a store there)."""
    from crlm_bench.experiment.store import NotAStoreError, Store

    store = Store(args.store)
    try:
        store.check(missing_ok=missing_ok)
    except NotAStoreError as error:
        raise UsageError(str(error)) from None
    return store


# --------------------------------------------------------------------------------------------
# commands


def _demo(args: argparse.Namespace) -> int:
    from crlm_bench.demo import render

    start = time.monotonic()

    def progress(step: str) -> None:  # stderr, so that stdout is the table alone
        print(f"demo [{time.monotonic() - start:6.1f} s] {step}", file=sys.stderr, flush=True)

    table = render(seed=args.seed, progress=progress)
    progress("done")
    sys.stdout.write(table)
    return 0


def _train(args: argparse.Namespace) -> int:
    from crlm_bench.experiment.pipeline import ensure_training

    ctx, cells = _context(args), _cells(args, with_measurement=False)  # checked before the store is
    store = _store(args)
    for cell in cells:
        entry = ensure_training(cell.training, store, ctx)
        acc = entry.meta["test_accuracy"]
        print(f"{cell.id}: test accuracy " + ", ".join(f"e{e} {float(a):.4f}" for e, a in acc.items()))
    return 0


def _profile(args: argparse.Namespace) -> int:
    from crlm_bench.experiment.pipeline import ensure_profile

    ctx, cells = _context(args), _cells(args, with_measurement=True)  # checked before the store is
    store = _store(args)
    for cell in cells:
        entry = ensure_profile(cell, store, ctx)
        print(f"{cell.id}: profile {entry.path}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from crlm_bench.experiment.pipeline import stored_profile
    from crlm_bench.replication.budgets import get_budget
    from crlm_bench.replication.session import (
        ProfileKeyError,
        budget_cell,
        find_stored_profile,
        is_key_prefix,
    )

    (target,) = args.cells
    budget = None
    if is_key_prefix(target.lower()):  # a cell id always has dashes; a key is hex
        if args.budget:
            raise UsageError(
                f"{target} reads as a key, which names a profile by itself: drop --budget {args.budget}, "
                "or give a cell id with --budget"
            )
        _refuse_settings(args, f"the key {target} names the profile's settings")
        store = _store(args)
        try:
            cell = find_stored_profile(store, target.lower())
        except ValueError as error:
            raise UsageError(str(error)) from None
        except ProfileKeyError as error:
            if error.ambiguous:
                raise UsageError(str(error)) from None
            log.error("%s", error)
            return 1
    elif args.budget:
        _refuse_settings(args, f"--budget {args.budget} gives the cell's settings")
        budget = get_budget(args.budget)
        try:
            cell = budget_cell(budget, target)
        except LookupError as error:
            raise UsageError(f"{error} (crlm-bench grid --budget {args.budget} --list)") from None
        store = _store(args)
    else:
        (cell,) = _cells(args, with_measurement=True)
        store = _store(args)
    frame = stored_profile(cell, store)
    if frame is None:
        log.error("%s", _missing_profile_advice(args, cell, store, budget))
        return 1
    _print_profile(cell, frame, store, as_json=args.json)
    return 0


def _print_profile(cell, frame, store, as_json: bool = False) -> None:
    from tabulate import tabulate

    from crlm_bench.experiment.pipeline import stored_provenance

    if as_json:  # every column of every row at full precision, NaN as null
        import json

        from crlm_bench.replication.claims import jsonable

        records = jsonable(frame.to_dict("records"))
        print(json.dumps({"cell": cell.id, "key": cell.key, "rows": records}, indent=1, allow_nan=False))
        return

    columns = [
        "probe",
        "neighbourhood",
        "relative_depth",
        "ambient_dim",
        "id_mean",
        "pca_dim",
        "d",
        "K",
        "m",
        "mapc",
        "nmapc",
        "sff_norm_median",
        "mean_curvature_median",
        "scalar_curvature_median",
        "radius",
        "mapc_dimensionless",
        "unresolved",
    ]
    columns = [c for c in columns if c in frame.columns]  # profiles of earlier formats lack some
    print(f"{cell.id}  test accuracy {float(frame['test_accuracy'].iloc[0]):.4f}  (key {cell.key})")
    made = stored_provenance(cell, store)
    print(
        "; ".join(
            f"{verb} with {made[kind].get('threads') or '?'} torch threads "
            f"on {made[kind].get('device') or '?'}"
            for verb, kind in (("trained", "training"), ("profiled", "profile"))
        )
        + (" (? = not recorded by the version that computed it)" if None in _values(made) else "")
    )
    print(tabulate(frame[columns], headers="keys", showindex=False, tablefmt="github", floatfmt=".4g"))


#: measurement fields and the options that set them
_MEASUREMENT_OPTIONS = (
    ("points", "--points"),
    ("toggles", "--toggles"),
    ("id_runs", "--id-runs"),
    ("id_samples", "--id-samples"),
    ("split", "--split"),
    ("precision", "--precision"),
    ("input_probe", "--input-probe"),
)


def _measurement_options(measurement) -> list[str]:
    """The options that give ``measurement`` (those that differ from the paper's defaults)."""
    from crlm_bench.experiment.cell import Measurement

    default = Measurement()
    out = []
    if measurement.preset:  # the preset's name, then what differs from it
        default = default.with_preset(measurement.preset)
        out.append(f"--preset {measurement.preset}")
    out += [
        f"{option} {getattr(measurement, name)}"
        for name, option in _MEASUREMENT_OPTIONS
        if getattr(measurement, name) != getattr(default, name)
    ]
    extra = [d for d in measurement.deviations if d not in default.deviations]
    return out + [f"--deviation {shlex.quote(d)}" for d in extra]


def _override_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _cell_options(cell) -> str:
    """The options of ``crlm-bench profile`` (and ``show``) that, after the cell's id, give ``cell``
    exactly: measurement, training overrides and the run's other saved epochs."""
    t = cell.training
    options = _measurement_options(cell.measurement)
    options += [f"--override {shlex.quote(f'{n}={_override_text(v)}')}" for n, v in t.overrides]
    extra = [e for e in t.save_at if e not in (t.epochs, cell.at)]  # parse adds both
    if extra:
        options.append("--save-at " + ",".join(map(str, extra)))
    return "".join(f" {o}" for o in options)


def _refuse_settings(args: argparse.Namespace, why: str) -> None:
    """A usage error if settings options were given where ``why`` says they are fixed."""
    from crlm_bench.experiment.cell import Measurement

    default = Measurement()
    given = [
        f"{option} {getattr(args, name)}"
        for name, option in _MEASUREMENT_OPTIONS
        if getattr(args, name) != getattr(default, name)
    ]
    given += [f"--deviation {d}" for d in args.deviation]
    given += [f"--preset {args.preset}"] if args.preset else []
    given += [f"--override {o}" for o in args.override]
    given += [f"--save-at {args.save_at}"] if args.save_at else []
    if given:
        raise UsageError(f"{why}; drop {', '.join(given)}")


def _paper_size_on_cpu(measurement) -> bool:
    """Whether ``measurement`` is the paper's (the defaults) and no CUDA device is visible."""
    import torch

    from crlm_bench.experiment.cell import Measurement

    return measurement == Measurement() and not torch.cuda.is_available()


def _missing_profile_advice(args: argparse.Namespace, cell, store, budget) -> str:
    """What to type when ``cell``'s profile is not stored; never a paper-size profile on a CPU."""
    from crlm_bench.replication.budgets import CPU_BUDGET, MEASUREMENTS
    from crlm_bench.replication.session import budgets_with_cell, smallest_group

    at = f" --store {shlex.quote(args.store)}" if args.store else ""
    m = cell.measurement
    sizes = f"{m.points} points × {m.neighbours} neighbours, TwoNN {m.id_runs} × {m.id_samples}"
    cpu = (
        "these are the paper's measurement sizes (" + sizes + "), which take hours per cell without a "
        "GPU, and no CUDA device is visible here"
    )
    whose = f"the {budget.name} budget's cell " if budget is not None else ""
    head = f"no stored profile for {whose}{cell.id} (key {cell.key[:12]}) in {store.root}"
    if budget is not None:
        if _paper_size_on_cpu(m):
            return (
                f"{head}; {cpu}: compute the {budget.name} budget on a GPU machine (README: Replicating "
                "the claims), or use the cpu budget's cells here (crlm-bench grid --budget cpu --list)"
            )
        lines = [f"{head}; compute it with"]
        group = smallest_group(budget, cell)
        if group is not None:
            lines.append(
                f"  pytest claims/ --budget {budget.name}{at} -k {group.id}"
                f"    (the claim test that needs it; computes its {len(group.cells)} cell(s))"
            )
            lines.append("or, this cell alone,")
        lines.append(f"  crlm-bench profile {cell.id}{_cell_options(cell)}{at}")
        return "\n".join(lines)
    hints = [
        f"the {name} budget has a cell {cell.id} (its profile is {'stored' if stored else 'not stored'}): "
        f"crlm-bench show {cell.id} --budget {name}{at}"
        for name, other, stored in budgets_with_cell(cell.id, store)
        if other.key != cell.key
    ]
    if _paper_size_on_cpu(m):
        smaller = _cell_options(type(cell)(cell.training, cell.at, MEASUREMENTS[CPU_BUDGET]))
        text = (
            f"{head} with these settings; {cpu}. Give the options it was profiled with, or measure "
            f"it smaller (the cpu budget's sizes): crlm-bench profile {cell.id}{smaller}{at}, then show "
            "it with the same options"
        )
    else:
        text = f"{head} with these settings; run: crlm-bench profile {cell.id} (same options)"
    return "\n".join([text, *hints])


def _values(nested: dict[str, dict]) -> list:
    return [v for inner in nested.values() for v in (inner.values() if inner else [None])]


def _report(args: argparse.Namespace) -> int:
    from crlm_bench.replication.budgets import get_budget
    from crlm_bench.replication.session import evaluate_stored, write_budget_report

    store = _store(args)
    verdicts, results, skipped = evaluate_stored(get_budget(args.budget), store)
    for s in skipped:
        log.warning("not in the store, left out: %s", s)
    if not verdicts:
        log.error(
            "no stored profiles for the %s budget in %s; run: pytest claims/ --budget %s",
            args.budget,
            store.root,
            args.budget,
        )
        return 1
    write_budget_report(args.out, verdicts, results, budget=args.budget, store_root=store.root)
    print(f"report written to {args.out}/report.md ({len(verdicts)} verdicts, {len(results)} cells)")
    return 0


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give whole numbers separated by commas, e.g. 100,300"
        ) from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be at least 1")
    return values


def _sensitivity(args: argparse.Namespace) -> int:
    import dataclasses

    from crlm_bench.replication.budgets import get_budget
    from crlm_bench.replication.sensitivity import measure_settings, settings_grid, stability

    ctx = _context(args)
    try:
        settings = settings_grid(args.points, args.toggles)
        budget = get_budget(args.budget)
        for setting in settings:  # every size is checked before anything is computed
            dataclasses.replace(budget.cells[0].measurement, points=setting.points, toggles=setting.toggles)
    except (TypeError, ValueError) as error:
        raise UsageError(f"--points/--toggles: {error}") from None
    store = _store(args)

    def progress(line: str) -> None:
        print(f"crlm-bench sensitivity: {line}", file=sys.stderr, flush=True)

    per_setting = measure_settings(budget, store, settings, ctx, progress=progress)
    path = stability(per_setting).write(args.out)
    print(path.read_text(encoding="utf-8"))
    print(f"stability table written to {path} (and sensitivity.json beside it)")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from crlm_bench.vision import fetch

    logging.getLogger(fetch.log.name).setLevel(logging.INFO)  # what was found is the command's output
    return fetch.check(args.name, root=args.data_dir, download=args.download)


def _claims(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from crlm_bench.replication.claims import ALL_CLAIMS

    rows = []
    for claim in ALL_CLAIMS:
        bounds = "; ".join(f"{name} {t.text}" for name, t in claim.thresholds.items())
        rows.append([claim.name, claim.group_kind, claim.statistic, bounds, claim.where])
    print(
        tabulate(
            rows, headers=["claim", "judged on", "statistic", "thresholds", "defined at"], tablefmt="github"
        )
    )
    return 0


def _grid(args: argparse.Namespace) -> int:
    import json

    from tabulate import tabulate

    from crlm_bench.experiment.store import NotAStoreError
    from crlm_bench.replication.budgets import get_budget
    from crlm_bench.replication.session import grid_status

    store = _store(args)
    budget = get_budget(args.budget)
    try:
        cells, counts = grid_status(budget, store)
    except NotAStoreError as error:
        raise UsageError(str(error)) from None
    if args.json:
        document = {
            "budget": budget.name,
            "description": budget.description,
            "store": str(store.root),
            "cells": cells,
            "checkpoint_runs": [[c.id for c in run] for run in budget.checkpoint_runs],
            "counts": counts,
        }
        print(json.dumps(document, indent=1))
        return 0
    rows = [
        [
            c["id"] + (f" [{c['change']}]" if c["change"] else ""),
            c["key"][:12],
            c["training_key"][:12],
            c["profile"],
            c["training"],
            f"{c['at']}/{c['epochs']}" if c["at"] != c["epochs"] else c["epochs"],
            c["points"],
            c["neighbours"],
            "/".join(str(c[f] or "-") for f in ("training_threads", "profile_threads")),
        ]
        for c in cells
    ]
    headers = [
        "cell",
        "key",
        "training key",
        "profile",
        "training",
        "epochs",
        "points",
        "neighbours",
        "threads (train/profile)",
    ]
    print(f"budget {budget.name}: {budget.description}  (store {store.root})")
    print(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
    print(
        f"{counts['cells']} cells: {counts['stored']} stored, {counts['to_compute']} to compute; "
        f"{counts['training_runs_to_compute']} distinct training runs to compute "
        f"({counts['training_runs']} in the budget, {counts['training_runs_stored']} stored)"
    )
    return 0


def _compare(args: argparse.Namespace) -> int:
    from crlm_bench.replication.regression import ResultsFileError, compare, load_results

    try:
        previous, current = load_results(args.previous), load_results(args.current)
    except ResultsFileError as error:
        raise UsageError(str(error)) from None
    if args.tolerance is not None and not (math.isfinite(args.tolerance) and args.tolerance >= 0):
        raise UsageError(f"--tolerance {args.tolerance}: give a relative change >= 0, e.g. 0.05 for 5 %")
    found = compare(previous, current, tolerance=args.tolerance)
    text = found.markdown(previous_label=args.previous, current_label=args.current)
    print(text)
    _append_summary(args.summary, text)
    for c in found.drift:
        log.warning(
            "drift: %s [%s] (%s) moved from %s to %s, more than %g relative; same outcome",
            c.claim,
            c.group,
            c.statistic,
            c.value_before,
            c.value_after,
            args.tolerance,
        )
    for c in found.warnings:
        log.warning(
            "inconclusive: %s [%s] (%s) held in %s and is inconclusive in %s: %s",
            c.claim,
            c.group,
            c.statistic,
            args.previous,
            args.current,
            c.explanation,
        )
    for c in found.regressions:
        log.error(
            "regression: %s [%s] (%s) held in %s and fails in %s: %s",
            c.claim,
            c.group,
            c.statistic,
            args.previous,
            args.current,
            c.explanation,
        )
    return 1 if found.failed else 0


def _append_summary(path: str | None, text: str) -> None:
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text + "\n")
    except OSError as error:
        raise UsageError(f"--summary {path}: cannot append to it ({error})") from None


def _history(args: argparse.Namespace) -> int:
    from crlm_bench.replication.regression import (
        HistoryFileError,
        ResultsFileError,
        append_history,
        history_markdown,
        load_results,
        read_history,
    )

    try:
        if args.add:
            entry = append_history(args.file, load_results(args.add))
            log.info("added %s (created %s) to %s", args.add, entry["created"], args.file)
        runs = read_history(args.file)
    except (ResultsFileError, HistoryFileError) as error:
        raise UsageError(str(error)) from None
    text = history_markdown(runs, last=args.last)
    print(text)
    _append_summary(args.summary, text)
    return 0


def _store_cmd(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    if args.verify:
        raise UsageError(
            "--verify is gone from store ls: type crlm-bench store verify (hashes every file, lists "
            "each problem, exit 1 if any); crlm-bench store ls lists the entries, checking sizes"
        )
    store = _store(args, missing_ok=False)  # ls, verify and gc only read or clean a store
    if args.action == "ls":
        rows = [
            [l.kind, l.key[:12], l.status, l.summary, f"{l.size / 2**20:.1f}"] for l in store.ls(verify=False)
        ]
        print(tabulate(rows, headers=["kind", "key", "status", "summary", "MiB"], tablefmt="github"))
        return 0
    if args.action == "verify":
        problems = store.verify()
        for p in problems:
            print(p)
        print(f"{len(problems)} problem(s) in {store.root}")
        return 1 if problems else 0
    removed = store.gc(workdirs=args.workdirs)
    for path in removed:
        print(f"removed {path}")
    print(f"{len(removed)} path(s) removed from {store.root}")
    return 0


# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from crlm_bench.replication.budgets import DEFAULT_BUDGET, budget_names

    parser = argparse.ArgumentParser(
        prog="crlm-bench",
        description="Replication harness for Kaufman & Azencot, Data Representations' Study of Latent "
        "Image Manifolds (ICML 2023).",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("--version", action="version", version=f"crlm-bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_: str, func: Callable, *, cells: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_,
            description=help_,
            epilog=CELL_HELP if cells else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(func=func)
        return p

    demo = command("demo", "estimated against true curvature on synthetic manifolds", _demo)
    demo.add_argument("--seed", type=int, default=0, help="seed of the synthetic samples (default 0)")

    train = command("train", "train (or resume) the cells' networks into the store", _train, cells=True)
    train.add_argument("cells", nargs="+", metavar="CELL")
    _add_compute_options(train)

    prof = command(
        "profile", "measure the cells' curvature profiles (training first if needed)", _profile, cells=True
    )
    prof.add_argument("cells", nargs="+", metavar="CELL")
    _add_compute_options(prof)
    prof.add_argument(
        "--memory-mb",
        type=int,
        default=MEMORY_MB,
        help=f"bound on the neighbour activations held at once while profiling (default {MEMORY_MB})",
    )
    _add_measurement_options(prof)

    show = command("show", "a stored profile as a table", _show, cells=True)
    show.epilog = SHOW_HELP + "\n\n" + CELL_HELP
    show.add_argument("cells", nargs=1, metavar="CELL|KEY")
    show.add_argument("--json", action="store_true", help="the profile's rows as JSON records (every column)")
    show.add_argument(
        "--budget",
        choices=budget_names(),
        help="the budget's cell of that id, with the budget's settings (no options to retype)",
    )
    _add_store_options(show)
    show.add_argument("--save-at", metavar="E,E,…", help="as given to profile")
    show.add_argument(
        "--override", action="append", default=[], metavar="NAME=VALUE", help="as given to profile"
    )
    _add_measurement_options(show)

    report = command(
        "report", "the replication report of a budget, from the store alone (no computing)", _report
    )
    report.add_argument("--budget", choices=budget_names(), default=DEFAULT_BUDGET)
    report.add_argument("--out", default="crlm-report", help="report directory (default crlm-report)")
    _add_store_options(report)

    grid = command("grid", "the cells of a budget, and which of them the store already holds", _grid)
    grid.add_argument("--budget", choices=budget_names(), required=True)
    shape = grid.add_mutually_exclusive_group(required=True)
    shape.add_argument("--list", action="store_true", help="a table and a summary line")
    shape.add_argument("--json", action="store_true", help="one JSON document (budget, cells, counts)")
    _add_store_options(grid)

    command("claims", "the claims: statistic, thresholds and where each is defined", _claims)

    sens = command(
        "sensitivity",
        "the verdicts under other measurement sizes (points × toggles) and a stability table; "
        "measures the profiles missing from the store (the training runs are the budget's own)",
        _sensitivity,
    )
    sens.add_argument("--budget", choices=budget_names(), required=True)
    sens.add_argument(
        "--points",
        type=_int_list,
        default=(100, 300),
        metavar="N,N,…",
        help="points measured (default 100,300)",
    )
    sens.add_argument(
        "--toggles", type=_int_list, default=(5, 7), metavar="T,T,…", help="toggles (default 5,7)"
    )
    sens.add_argument("--out", default="crlm-sensitivity", help="output directory (default crlm-sensitivity)")
    _add_store_options(sens)
    sens.add_argument(
        "--data-dir", metavar="DIR", help="data root (default $CRLM_DATA or ~/.cache/crlm-bench/data)"
    )
    sens.add_argument(
        "--download", action="store_true", help="allow downloading missing data sets (never done otherwise)"
    )
    sens.add_argument("--device", help="torch device (default cuda when available, else cpu)")

    fetch = command("fetch", "check that a data set loads; with --download, fetch what is missing", _fetch)
    fetch.add_argument("name", metavar="NAME", help="data set: cifar10, cifar100, fashion-mnist, synthetic")
    fetch.add_argument(
        "--data-dir", metavar="DIR", help="data root (default $CRLM_DATA or ~/.cache/crlm-bench/data)"
    )
    fetch.add_argument("--download", action="store_true", help="allow downloading what is missing")

    comp = command(
        "compare", "compare two runs' results.json: exit 1 if a verdict that held fails now", _compare
    )
    comp.add_argument("previous", metavar="PREVIOUS.json", help="the earlier run's results.json")
    comp.add_argument("current", metavar="CURRENT.json", help="the later run's results.json")
    comp.add_argument(
        "--summary",
        metavar="FILE",
        help="also append the Markdown summary to FILE (e.g. $GITHUB_STEP_SUMMARY)",
    )
    comp.add_argument(
        "--tolerance",
        type=float,
        metavar="X",
        help="list as drift every verdict of the same outcome whose value moved by more than X "
        "relative to the previous value (0.05: 5 %%); drift does not change the exit status",
    )

    hist = command(
        "history",
        "a run history: one line per results.json, and the last runs' values side by side",
        _history,
    )
    hist.add_argument("file", metavar="FILE", help="the history, a JSON-lines file (one run a line)")
    hist.add_argument(
        "--add", metavar="RESULTS.json", help="first append this run's results (the file is created)"
    )
    hist.add_argument(
        "--last", type=_positive, default=10, metavar="N", help="how many runs to show (default 10)"
    )
    hist.add_argument("--summary", metavar="FILE", help="also append the Markdown to FILE")

    store = command("store", "inspect and clean the artifact store", _store_cmd)
    store.add_argument(
        "action",
        choices=["ls", "verify", "gc"],
        help="ls: list entries; verify: check every checksum (exit 1 on a problem); gc: remove "
        "partial and corrupt entries and leftovers",
    )
    store.add_argument("--verify", action="store_true", help=argparse.SUPPRESS)  # gone: store verify
    store.add_argument("--workdirs", action="store_true", help="gc: also remove resumable progress")
    _add_store_options(store)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.func(args)
    except BrokenPipeError:  # the reader stopped early (`crlm-bench grid --json | head`): not a failure
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing left to flush at exit
        return 0
    except UsageError as error:
        parser.exit(2, f"crlm-bench: error: {error}\n")
    except KeyboardInterrupt:
        log.error("interrupted")
        return 1
    except Exception as error:  # noqa: BLE001 - a failure, reported without a traceback unless -vv
        if args.verbose >= 2:
            raise
        log.error("%s: %s", type(error).__name__, error)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
