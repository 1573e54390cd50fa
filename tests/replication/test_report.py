"""The replication report (:mod:`crlm_bench.replication.report`), in the order of its modules:
the files :func:`write_report` writes, the layout of the Markdown (caveat first, verdicts before
the figures, no table line wider than a screen), the JSON round trip (no absolute local path, the
threads that computed each cell), the figures (each PNG at 150 dpi with its SVG twin, skipped when
their data is absent), the provenance and budget description, and :func:`check_report`.

The figures' content is tested in test_figures.py; here a report is written with figures once per
module (``written``), and other reports skip them where they are not the subject."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import struct
from types import SimpleNamespace

import pytest

import crlm_bench
from crlm_bench.experiment.cell import DEVIATIONS
from crlm_bench.experiment.pipeline import PROFILE_KIND, TRAINING_KIND
from crlm_bench.experiment.store import Store
from crlm_bench.replication import claims as C
from crlm_bench.replication import report as R
from crlm_bench.replication.budgets import CPU_EPOCHS, get_budget
from crlm_bench.replication.report import figures as F
from crlm_bench.replication.report import markdown as M
from tests.replication import claim_cases as cases

SETTINGS = {"device": "cpu", "points": 300, "toggles": 7}
FIGURES = {"profiles", "untrained", "recipes", "gap_accuracy", "gap_training"}


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
    assert pngs == {f"{kind}_cifar10.png" for kind in FIGURES}
    for name in pngs:
        assert files[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert R.check_report(directory) == []


def test_an_empty_report_is_consistent(tmp_path):
    files = R.write_report(tmp_path, [], [], budget="smoke", settings={})
    assert set(files) == {R.REPORT_MD, R.RESULTS_JSON}
    assert R.check_report(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# markdown: what it says


def test_markdown_table_rows_match_the_main_verdicts(written):
    directory, _, verdicts, results = written
    loaded = R.load_report(directory)
    rows = loaded.verdict_table()
    main = [v for v in verdicts if v.variant == C.MAIN_VARIANT]
    assert len(rows) == len(main) > 0
    in_order = sorted(main, key=lambda v: C.PAPER_ORDER.index(v.claim))  # the paper's order, stable
    for row, v in zip(rows, in_order):
        assert (row["claim"], row["group"]) == (v.claim, R.short_group(v.group, {"cifar10"}))
        assert row["result"] == R.OUTCOME_MARKS[v.outcome]
        assert v.threshold.startswith(row["needs"])
        assert row["robust"] == M.robustness_short(v, verdicts)
        assert row["paper"] == ("—" if v.paper_value is None else f"≈{C.fmt(v.paper_value)}")
    md = loaded.markdown
    assert md.startswith("# crlm_bench replication report")
    assert "Budget: **smoke**" in md
    for claim in {v.claim for v in verdicts}:
        assert f"### {claim}" in md
    for v in main:  # the full group names are in the claim sections
        assert v.group in md
    for r in results:
        assert f"### {r.cell_id}" in md
    assert "| probe" in md and "NMAPC" in md and "sff_norm_median" in md
    assert "read from the paper's figure" in md  # paper values are labelled as read, never exact


def test_robust_column_reports_a_changed_verdict(tmp_path):
    results = [cases.make_result(cases.PAPER_LIKE, sff=[0.05] * 10, sff_input=0.05)]
    verdicts = C.evaluate_all(results, claims=["profile-shape"])
    R.write_report(tmp_path, verdicts, results, budget=None, settings={}, figures=False)
    (row,) = R.load_report(tmp_path).verdict_table()
    assert row["result"] == "✓" and row["robust"] == "no: sff ✗"
    assert "paper" not in row  # no verdict has a paper value: no paper column
    assert R.robustness_label(verdicts[0], verdicts) == "no (sff/knn-input ✗)"  # the claim section's
    assert R.check_report(tmp_path) == []


def test_robust_column_and_claim_section_compare_outcomes_not_point_verdicts(tmp_path):
    """A variant whose point value holds but whose interval straddles the bound does not confirm a
    verdict that holds: the robust column and the claim's table show it inconclusive (?), as the
    attribution section shows every outcome."""
    results = [cases.make_result(cases.PAPER_LIKE)]
    verdicts = C.evaluate_all(results, claims=["profile-shape"])
    main = next(v for v in verdicts if v.variant == C.MAIN_VARIANT)
    sff = next(v for v in verdicts if v.variant == "sff/knn-input")
    assert main.outcome == sff.outcome == "holds" and sff.holds
    straddling = dataclasses.replace(
        sff, interval=(0.5 * sff.threshold_value, 2.0 * sff.value), outcome="inconclusive"
    )
    verdicts = [straddling if v is sff else v for v in verdicts]
    assert R.robustness_label(main, verdicts) == "no (sff/knn-input ?)"
    R.write_report(tmp_path, verdicts, results, budget=None, settings={}, figures=False)
    (row,) = R.load_report(tmp_path).verdict_table()
    assert row["result"] == "✓" and row["robust"] == "no: sff ?"
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    claim_table = md[md.index("### profile-shape") :]
    first_row = next(
        line for line in claim_table.splitlines() if line.startswith("| ") and "group" not in line
    )
    cells = [c.strip() for c in first_row.strip("|").split("|")]
    assert cells[1].endswith("✓") and cells[2].endswith("?")  # main holds, sff inconclusive
    assert R.check_report(tmp_path) == []


def test_a_verdict_table_too_wide_for_a_screen_is_two_tables_read_back_as_one(tmp_path):
    results = [cases.make_result(cases.PAPER_LIKE, sff=[0.05] * 10, sff_input=0.05)]
    long = "a-network-with-a-very-long-group-name-s0+1+2+3+4+5-e200"
    verdicts = [dataclasses.replace(v, group=long) for v in C.evaluate_all(results, claims=["profile-shape"])]
    R.write_report(tmp_path, verdicts, results, budget=None, settings={}, figures=False)
    section = (tmp_path / "report.md").read_text(encoding="utf-8").split("## Verdicts")[1].split("\n## ")[0]
    heads = [line for line in section.splitlines() if line.startswith("| claim")]
    assert len(heads) == 2 and "robust" not in heads[0] and "| robust" in heads[1]
    assert all(len(line) <= R.MAX_LINE for line in section.splitlines() if line.startswith("|"))
    (row,) = R.load_report(tmp_path).verdict_table()
    assert (row["group"], row["result"], row["robust"]) == (long, "✓", "no: sff ✗")
    assert R.check_report(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# markdown: layout


def test_the_caveat_comes_first_then_the_verdicts_then_the_figures(written):
    directory, files, _, _ = written
    lines = files[R.REPORT_MD].read_text(encoding="utf-8").splitlines()
    caveat = get_budget("smoke").caveat
    assert caveat and "machinery only" in caveat.lower()
    verdicts_at, figures_at = lines.index(R.VERDICTS_HEADING), lines.index(R.FIGURES_HEADING)
    quoted = [i for i, line in enumerate(lines) if line.startswith("> ") and caveat in line]
    assert quoted and quoted[0] < verdicts_at < figures_at < lines.index("## Claims")
    assert quoted[0] <= 3  # right under the title
    table = [i for i in range(verdicts_at, figures_at) if lines[i].startswith("|")]
    assert table and table[-1] < figures_at
    embedded = [line for line in lines[figures_at:] if line.startswith("![")]
    assert embedded == [f"![{n}]({n})" for n in files if n.endswith(".png")]
    for name in (n for n in files if n.endswith(".svg")):
        assert f"[{name}]({name})" in lines
    data = json.loads(files[R.RESULTS_JSON].read_text(encoding="utf-8"))
    assert data["caveat"] == caveat


def test_each_budget_has_a_caveat_and_an_unknown_one_says_so(tmp_path):
    texts = {name: get_budget(name).caveat for name in ("smoke", "cpu", "paper")}
    assert "not the paper's conditions" in texts["cpu"] and f"{CPU_EPOCHS} epochs" in texts["cpu"]
    assert "paper's grid" in texts["paper"]
    R.write_report(tmp_path, [], [], budget=None, settings={}, figures=False)
    md = (tmp_path / R.REPORT_MD).read_text(encoding="utf-8")
    assert md.splitlines()[2].startswith("> **Budget unspecified.** no caveat")
    assert R.check_report(tmp_path) == []


def test_no_table_line_is_wider_than_a_screen(written, tmp_path):
    # two datasets (no prefix dropped), long recipe names and the paper column: the widest table
    results = constructed_results("cifar100") + constructed_results("cifar10")
    verdicts = C.evaluate_all(results)
    R.write_report(tmp_path, verdicts, results, budget="paper", settings={}, figures=False)
    for directory in (written[0], tmp_path):
        lines = (directory / R.REPORT_MD).read_text(encoding="utf-8").splitlines()
        tables = [line for line in lines if line.startswith("|")]
        assert len(tables) > 50
        assert max(map(len, tables)) <= R.MAX_LINE, max(tables, key=len)
    assert R.check_report(tmp_path) == []
    rows = R.load_report(tmp_path).verdict_table()
    assert {r["group"] for r in rows} >= {"cifar100", "cifar10-resnet18-no_reg-s0-e10"}


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


def _strings(obj):
    if isinstance(obj, dict):
        for value in obj.values():
            yield from _strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value)
    elif isinstance(obj, str):
        yield obj


def test_no_absolute_local_path_is_written(tmp_path, monkeypatch):
    store, data_dir = tmp_path / "stores" / "my-store", tmp_path / "data"
    monkeypatch.setenv("CRLM_DATA", str(data_dir))
    monkeypatch.delenv("CRLM_STORE", raising=False)
    settings = {"budget": "cpu", "store": str(store), "data": str(data_dir), "note": "a/b"}
    R.write_report(tmp_path / "r", [], [], budget="cpu", settings=settings, extra_meta={"log": "/var/x.log"})
    data = json.loads((tmp_path / "r" / R.RESULTS_JSON).read_text(encoding="utf-8"))
    assert data["settings"] == {"budget": "cpu", "store": "my-store", "data": "$CRLM_DATA", "note": "a/b"}
    assert data["extra"] == {"log": "x.log"}
    assert "absolute local paths are not written" in data["paths"]
    found = [s for s in _strings(data) if s.startswith(("/", "~")) or str(tmp_path) in s]
    assert found == []
    monkeypatch.setenv("CRLM_STORE", str(store))
    R.write_report(tmp_path / "r", [], [], budget="cpu", settings=settings, figures=False)
    assert R.load_report(tmp_path / "r").results["settings"]["store"] == "$CRLM_STORE"
    assert R.check_report(tmp_path / "r") == []

    data["settings"]["store"] = str(store)  # check_report finds one written anyway
    (tmp_path / "r" / R.RESULTS_JSON).write_text(json.dumps(data), encoding="utf-8")
    assert any("absolute local path" in p and "settings.store" in p for p in R.check_report(tmp_path / "r"))


def test_threads_are_not_recorded_without_a_store(written):
    directory, _, _, results = written
    threads = R.load_report(directory).results["threads"]
    assert threads["summary"] == R.NOT_RECORDED
    assert set(threads["cells"]) == {r.cell_id for r in results}
    for entry in threads["cells"].values():
        assert entry == {
            k: {"threads": R.NOT_RECORDED, "device": R.NOT_RECORDED} for k in ("training", "profile")
        }
    md = (directory / R.REPORT_MD).read_text(encoding="utf-8")
    assert f"torch threads: {R.NOT_RECORDED}" in md.splitlines()[4]


def test_threads_and_device_are_read_per_cell_from_the_store(tmp_path):
    smoke = get_budget("smoke")
    recorded, old = smoke.cells[0], smoke.cells[1]
    store = Store(tmp_path / "store")
    store.put(TRAINING_KIND, recorded.training.key, {"w.pt": b"w"}, {}, {"threads": 1, "device": "cpu"})
    store.put(PROFILE_KIND, recorded.key, {"p.parquet": b"p"}, {}, {"threads": 2, "device": "cpu"})
    store.put(TRAINING_KIND, old.training.key, {"w.pt": b"w"}, {}, {"test_accuracy": 0.5})  # before threads
    results = [
        C.CellResult.from_profile(c, cases.make_profile(cases.PAPER_LIKE, cell=c.id)) for c in (recorded, old)
    ]
    settings = {"budget": "smoke", "store": str(store.root)}
    R.write_report(tmp_path / "r", [], results, budget="smoke", settings=settings, figures=False)
    data = R.load_report(tmp_path / "r").results
    cells = data["threads"]["cells"]
    assert cells[recorded.id] == {
        "training": {"threads": 1, "device": "cpu"},
        "profile": {"threads": 2, "device": "cpu"},
    }
    assert cells[old.id]["training"] == {"threads": R.NOT_RECORDED, "device": R.NOT_RECORDED}
    assert data["threads"]["summary"] == f"1 (training), 2 (profiles); {R.NOT_RECORDED} for 1 of 2 cells"
    md = (tmp_path / "r" / R.REPORT_MD).read_text(encoding="utf-8")
    assert "1 thread on cpu" in md and "2 threads on cpu" in md
    assert R.check_report(tmp_path / "r") == []


# ---------------------------------------------------------------------------------------------
# figures


def _png_size(path) -> tuple[int, int]:
    return struct.unpack(">II", path.read_bytes()[16:24])  # IHDR: width, height


def test_each_png_has_an_svg_twin_at_150_dpi(written):
    directory, files, _, _ = written
    listed = R.load_report(directory).results["figures"]
    pngs = [n for n in files if n.endswith(".png")]
    assert R.DPI >= 150
    for name in pngs:
        svg = name[: -len(".png")] + ".svg"
        assert svg in files and svg in listed and name in listed
        assert files[svg].read_text(encoding="utf-8").lstrip().startswith("<?xml")
        assert R.png_dpi(files[name]) == pytest.approx(R.DPI, abs=0.5)
        width, height = _png_size(files[name])
        assert width >= 8 * R.DPI and height >= 4 * R.DPI  # a slide's worth of pixels


def test_check_report_finds_a_missing_svg_and_a_low_resolution_png(written, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(written[0], copy)
    (copy / "recipes_cifar10.svg").unlink()
    from matplotlib.figure import Figure

    Figure(figsize=(2, 2)).savefig(copy / "gap_accuracy_cifar10.png", dpi=72)
    problems = R.check_report(copy)
    assert any("recipes_cifar10.png has no SVG twin" in p for p in problems)
    assert any("gap_accuracy_cifar10.png is 72 dpi" in p for p in problems)
    assert R.png_dpi(copy / "gap_accuracy_cifar10.png") == pytest.approx(72, abs=0.5)


def test_figures_are_skipped_without_their_data(monkeypatch, tmp_path):
    drawn = []
    monkeypatch.setattr(F, "_save", lambda fig, directory, stem: drawn.append(stem) or {})
    results = constructed_results("fashion-mnist", untrained=False, recipes=False)
    F.write_figures(tmp_path, results, C.evaluate_all(results))
    assert drawn == ["profiles_fashion-mnist", "gap_accuracy_fashion-mnist", "gap_training_fashion-mnist"]
    drawn.clear()
    final = [r for r in results if r.final]  # no checkpoint series: no along-training figure
    F.write_figures(tmp_path, final, C.evaluate_all(final))
    assert drawn == ["profiles_fashion-mnist", "gap_accuracy_fashion-mnist"]
    assert not list(tmp_path.iterdir())


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
    budget = SimpleNamespace(name="tiny", description="two cells", cells=cells, caveat="toy cells only")
    R.write_report(tmp_path, [], [], budget=budget, settings={}, figures=False)
    data = R.load_report(tmp_path).results
    assert data["budget"] == {
        "name": "tiny",
        "description": "two cells",
        "cells": ["a", "b"],
        "checkpoint_runs": [],
    }
    assert data["caveat"] == "toy cells only"
    md = R.load_report(tmp_path).markdown
    assert "Budget: **tiny**" in md and "> **Budget tiny.** toy cells only" in md


# ---------------------------------------------------------------------------------------------
# check


def test_check_report_finds_problems(written, tmp_path):
    directory = tmp_path / "copy"
    shutil.copytree(written[0], directory)
    files = {p.name: p for p in directory.iterdir()}
    md = files[R.REPORT_MD].read_text(encoding="utf-8")
    row = next(line for line in md.splitlines() if line.startswith("| profile-shape"))
    files[R.REPORT_MD].write_text(md.replace(row + "\n", ""), encoding="utf-8")
    files["profiles_cifar10.png"].unlink()
    problems = R.check_report(directory)
    assert any("is in results.json but not in the report.md table" in p for p in problems)
    assert any("verdict rows" in p for p in problems)
    assert any("profiles_cifar10.png" in p for p in problems)

    data = json.loads(files[R.RESULTS_JSON].read_text(encoding="utf-8"))
    data["counts"]["main"] += 1
    del data["threads"]
    files[R.RESULTS_JSON].write_text(json.dumps(data), encoding="utf-8")
    problems = R.check_report(directory)
    assert any("counts.main" in p for p in problems)
    assert "results.json has no 'threads' entry" in problems

    lines = md.splitlines()
    verdicts = lines.index(R.VERDICTS_HEADING)
    figures = lines.index(R.FIGURES_HEADING)
    claims = lines.index("## Claims")
    # the caveat dropped, the figures moved before the verdicts, and a table line too long
    moved = lines[:2] + lines[figures:claims] + lines[verdicts:figures] + lines[claims:]
    moved.append("| " + "x" * R.MAX_LINE + " |")
    files[R.REPORT_MD].write_text("\n".join(moved), encoding="utf-8")
    problems = R.check_report(directory)
    assert any("does not state the budget's caveat" in p for p in problems)
    assert any("figures before the verdicts" in p for p in problems)
    assert any(f"longer than {R.MAX_LINE} characters" in p for p in problems)

    files[R.RESULTS_JSON].unlink()
    assert R.check_report(directory) == [f"results.json is missing from {directory}"]
    with pytest.raises(FileNotFoundError, match="write_report"):
        R.load_report(directory)


def _demonstration_frames():
    """An untrained network under the default (growing MAPC) and under a change that collapses
    its last two probes (flagged) and one measured the same way as the default."""
    latent = [1.0, 10.0, 100.0, 1e3]
    default = cases.make_result(latent, model="vgg16", recipe="untrained")
    frame = default.profile.copy()
    frame["radius"], frame["mapc_dimensionless"], frame["unresolved"] = 0.5, frame["mapc"] * 0.5, False
    default = dataclasses.replace(default, profile=frame)
    collapsed = frame.copy()
    last_two = collapsed["depth"] >= 3
    collapsed.loc[last_two, "mapc"] = 1e-13
    collapsed.loc[last_two, "unresolved"] = True
    return [
        ("", default),
        ("float32", dataclasses.replace(default, profile=frame.copy())),
        ("authors", dataclasses.replace(default, profile=collapsed)),
    ]


def test_the_attribution_section_names_the_changes_that_turn_a_verdict_and_shows_the_demonstration(tmp_path):
    from crlm_bench.replication.attribution import attribution_variant

    results = [cases.make_result(cases.PAPER_LIKE)]
    main = C.evaluate_all(results, claims=["profile-shape"], variants=[C.VARIANTS[0]])
    flat = C.evaluate_all([cases.make_result([0.1] * 10)], claims=["profile-shape"], variants=[C.VARIANTS[0]])
    seed0 = [
        dataclasses.replace(main[0], variant=attribution_variant("")),
        dataclasses.replace(flat[0], group=main[0].group, variant=attribution_variant("authors")),
    ]
    demonstrations = _demonstration_frames()
    files = R.write_report(
        tmp_path, [*main, *seed0], results, budget=None, settings={}, demonstrations=demonstrations
    )
    md = (tmp_path / "report.md").read_text()
    section = md[md.index(M.ATTRIBUTION_HEADING) : md.index("## Figures")]
    row = next(line for line in section.splitlines() if line.startswith("| profile-shape ·"))
    assert row.rstrip(" |").endswith("authors ✗")  # the change that turns it, with its outcome
    header = next(line for line in section.splitlines() if line.startswith("| claim · group"))
    assert [h.strip() for h in header.strip("|").split("|")] == [
        "claim · group",
        "main",
        "default",
        "authors",
        "turned by",
    ]
    assert "Demonstration: fashion-mnist-vgg16-untrained-s0-e0" in section
    table = section[section.index("| probe ") :]
    linear = next(line for line in table.splitlines() if line.startswith("| linear"))
    assert linear.count("†") == 1 and "1e-13 †" in linear  # only the collapsed, flagged value
    assert "attribution_fashion-mnist-vgg16-untrained-s0-e0.png" in files
    data = json.loads((tmp_path / "results.json").read_text())
    assert [d["change"] for d in data["demonstrations"]] == ["", "float32", "authors"]
    assert data["variants"]["attribution"] == ["s0 authors", "s0 default"]
    assert R.check_report(tmp_path) == []


def test_the_attribution_lists_the_changes_in_a_fixed_order_each_table_naming_its_rows(tmp_path):
    """Changes come in MEASUREMENT_CHANGES order (precision, deviations, presets) whatever the
    verdicts' order; a table too wide for a line is split, each part keeping the claim · group."""
    from crlm_bench.replication.attribution import attribution_variant

    results = [cases.make_result(cases.PAPER_LIKE)]
    main = C.evaluate_all(results, claims=["profile-shape"], variants=[C.VARIANTS[0]])
    changes = [
        "authors",
        "point_among_neighbours",
        "",
        "train_augmented",
        "authors_neighbourhoods",
        "float32",
        "unscaled_fit",
    ]
    seed0 = [dataclasses.replace(main[0], variant=attribution_variant(c)) for c in changes]
    R.write_report(tmp_path, [*main, *seed0], results, budget=None, settings={})
    md = (tmp_path / "report.md").read_text()
    section = md[md.index(M.ATTRIBUTION_HEADING) :]
    headers = [
        [h.strip() for h in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| claim · group")
    ]
    assert len(headers) > 1  # too wide for one table
    assert all(h[0] == "claim · group" for h in headers)
    columns = [c for h in headers for c in h[1:]]
    order = ["main", "default", "float32", "unscaled_fit", "authors_neighbourhoods", "point_among_neighbours"]
    assert columns == [*order, "train_augmented", "authors", "turned by"]
    # the caption says what each change is
    assert "**float32**: the curvature fits in float32 instead of float64" in section
    assert "**train_augmented**: the points and TwoNN samples from the augmented training images" in section
    assert (
        "**authors**: the preset precision float32, split train-augmented, authors_neighbourhoods" in section
    )
    assert f"**unscaled_fit**: {DEVIATIONS['unscaled_fit']}" in section
    assert R.check_report(tmp_path) == []


def test_a_report_without_attribution_has_no_attribution_section(written):
    directory, *_ = written
    assert M.ATTRIBUTION_HEADING not in (directory / "report.md").read_text()


def test_threads_are_read_for_a_demonstration_cell_and_for_a_claim_cell_by_default(tmp_path):
    """A report can hold a cell that is no claim cell (the plugin's holds the cpu budget's VGG16
    demonstration): its threads come from its default measurement's entries, and a claim cell's
    from its own, never from a changed measurement's sharing its id."""
    from crlm_bench.replication.report.provenance import computed_with

    budget = get_budget("cpu")
    claim_ids = {c.id for c in budget.claim_cells()}
    demo = next(c for c in budget.all_cells() if c.id not in claim_ids)
    _, default, claim = next(a for a in budget.attribution_cells() if a[1].id in claim_ids)
    store = Store(tmp_path / "store")
    for cell, threads in ((demo, 3), (default, 2), (claim, 5)):
        meta = {"threads": threads, "device": "cpu"}
        store.put(PROFILE_KIND, cell.key, {"x.bin": b"0"}, cell.to_dict(), meta, summary=cell.id)
        if store.get(TRAINING_KIND, cell.training.key) is None:
            store.put(TRAINING_KIND, cell.training.key, {"x.bin": b"0"}, cell.training.to_dict(), meta)
    got = computed_with([demo.id, default.id], "cpu", store.root)
    assert got[demo.id]["profile"] == {"threads": 3, "device": "cpu"}
    assert got[default.id]["profile"] == {"threads": 2, "device": "cpu"}
