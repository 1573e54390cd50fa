"""Regressions between two runs' results.json: regressions, fixed, new and gone verdicts of the main
variant; the ``crlm-bench compare`` exit codes (0 none, 1 a regression, 2 a bad file)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from crlm_bench import cli
from crlm_bench.replication import claims as C
from crlm_bench.replication import report as R
from crlm_bench.replication.regression import ResultsFileError, compare, load_results

MAIN, OTHER = C.MAIN_VARIANT, C.ROBUSTNESS_VARIANTS[0]


def verdict(
    claim: str, group: str, holds: bool, *, statistic: str = "shape", value: float = 1.0, variant: str = MAIN
) -> C.Verdict:
    return C.Verdict(
        claim,
        group,
        statistic,
        value,
        "> 0.5",
        0.5,
        holds,
        f"{claim} on {group}: value {value}",
        variant=variant,
    )


def document(verdicts, *, budget="paper", main: str = MAIN, commit: str = "a" * 40) -> dict:
    """A results.json document as write_report writes it (the fields compare reads)."""
    return {
        "format": 1,
        "created": "2026-12-01T01:17:00+00:00",
        "git_commit": commit,
        "budget": budget,
        "variants": {"main": main, "robustness": list(C.ROBUSTNESS_VARIANTS)},
        "verdicts": [v.to_dict() for v in verdicts],
    }


#: the previous night: four verdicts of the main variant (one failing) and one robustness verdict
PREVIOUS = [
    verdict("profile-shape", "cifar10-resnet18-baseline-s0-e200", True),
    verdict("profile-shape", "cifar10-vgg16-baseline-s0-e200", True),
    verdict("untrained-flattens", "cifar10-resnet18-untrained-vs-baseline", False, value=0.2),
    verdict("mixup-flattens", "cifar10-resnet50-mixup-vs-recipes", True),
    verdict("profile-shape", "cifar10-resnet18-baseline-s0-e200", True, variant=OTHER),
]


def judged(v: C.Verdict, holds: bool) -> C.Verdict:
    """``v`` holding or failing, its outcome with it."""
    return replace(v, holds=holds, outcome="holds" if holds else "fails")


def night(*changes: tuple[int, bool]) -> list[C.Verdict]:
    """PREVIOUS with verdict i's holds (and outcome) set."""
    out = list(PREVIOUS)
    for i, holds in changes:
        out[i] = judged(out[i], holds)
    return out


def test_identical_runs_have_no_change():
    found = compare(document(PREVIOUS), document(PREVIOUS))
    assert not found.failed
    assert (found.regressions, found.fixed, found.new, found.gone) == ((), (), (), ())
    assert len(found.unchanged) == 4  # the main variant's only
    assert "**No regressions**" in found.markdown()


def test_a_verdict_that_held_and_fails_now_is_a_regression():
    found = compare(document(PREVIOUS), document(night((1, False))))
    assert found.failed
    assert [c.key for c in found.regressions] == [
        ("profile-shape", "cifar10-vgg16-baseline-s0-e200", "shape")
    ]
    (c,) = found.regressions
    assert (c.held, c.holds) == (True, False)
    text = found.markdown()
    assert "**1 regression** (held before, fail now)" in text
    assert "### Regressions" in text and "cifar10-vgg16-baseline-s0-e200" in text


def test_a_verdict_that_failed_and_holds_now_is_fixed():
    found = compare(document(PREVIOUS), document(night((2, True))))
    assert not found.failed
    assert [c.group for c in found.fixed] == ["cifar10-resnet18-untrained-vs-baseline"]
    assert "### Fixed" in found.markdown()


def test_new_and_gone_verdicts_are_listed_and_not_regressions():
    added = verdict(
        "gap-tracks-accuracy", "cifar10-baseline-models", False, statistic="spearman across models"
    )
    found = compare(document(PREVIOUS), document([*PREVIOUS[1:], added]))
    assert not found.failed
    assert [c.key for c in found.new] == [added.key]
    assert found.new[0].holds is False and found.new[0].held is None
    assert [c.key for c in found.gone] == [PREVIOUS[0].key]
    assert found.gone[0].held is True and found.gone[0].holds is None
    text = found.markdown()
    assert "### New" in text and "### Gone" in text and "1 new · 1 gone" in text


def test_robustness_variants_are_ignored():
    current = [*PREVIOUS[:4], judged(PREVIOUS[4], False)]
    found = compare(document(PREVIOUS), document(current))
    assert not found.failed and len(found.unchanged) == 4


def test_each_run_is_read_under_its_own_main_variant():
    swapped = [replace(v, variant=OTHER if v.variant == MAIN else MAIN) for v in night((0, False))]
    found = compare(document(PREVIOUS), document(swapped, main=OTHER))
    assert [c.group for c in found.regressions] == ["cifar10-resnet18-baseline-s0-e200"]
    assert "Main variants differ" in found.markdown()


def test_different_budgets_are_pointed_out():
    found = compare(document(PREVIOUS, budget={"name": "cpu"}), document(PREVIOUS))
    assert found.budgets == ("cpu", "paper")
    assert "Budgets differ (cpu → paper)" in found.markdown()


def test_a_verdict_twice_in_one_run_holds_only_if_both_hold():
    found = compare(document(PREVIOUS), document([*PREVIOUS, judged(PREVIOUS[0], False)]))
    assert [c.key for c in found.regressions] == [PREVIOUS[0].key]


def test_held_then_inconclusive_is_a_warning_and_fails_to_inconclusive_a_shift(tmp_path, capsys, caplog):
    current = list(PREVIOUS)
    current[0] = replace(current[0], outcome="inconclusive", interval=(0.4, 1.6))  # held before
    current[2] = replace(current[2], outcome="inconclusive", interval=(0.1, 0.6))  # failed before
    found = compare(document(PREVIOUS), document(current))
    assert not found.failed and found.regressions == ()
    assert [c.key for c in found.warnings] == [PREVIOUS[0].key]
    assert [c.key for c in found.shifted] == [PREVIOUS[2].key]
    text = found.markdown()
    assert "1 warning (held before, inconclusive now)" in text and "### Warnings: inconclusive now" in text
    assert "1 ?" in text  # the inconclusive verdict's mark
    # the command warns and keeps exit status 0
    prev, cur = tmp_path / "prev.json", tmp_path / "cur.json"
    prev.write_text(json.dumps(document(PREVIOUS)))
    cur.write_text(json.dumps(document(current)))
    with caplog.at_level("WARNING"):
        assert cli.main(["compare", str(prev), str(cur)]) == 0
    assert any("inconclusive: profile-shape" in r.getMessage() for r in caplog.records)


def test_documents_without_outcomes_read_holds_as_the_outcome():
    old = document(PREVIOUS)
    for v in old["verdicts"]:
        v.pop("outcome", None)
        v.pop("interval", None)
    found = compare(old, document(night((0, False))))
    assert [c.key for c in found.regressions] == [PREVIOUS[0].key]


def test_an_unevaluable_verdict_is_shown_as_n_a():
    current = night((0, False))
    current[0] = replace(current[0], value=math.nan)
    found = compare(document(PREVIOUS), document(current))
    assert "n/a ✗" in found.markdown() and "1 ✓" in found.markdown()


def test_reports_written_by_write_report_compare(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    R.write_report(before, PREVIOUS, [], budget="smoke", settings={}, figures=False)
    R.write_report(after, night((3, False)), [], budget="smoke", settings={}, figures=False)
    found = compare(load_results(before / R.RESULTS_JSON), load_results(after / R.RESULTS_JSON))
    assert [c.claim for c in found.regressions] == ["mixup-flattens"]
    assert len(found.unchanged) == 3


# ---------------------------------------------------------------------------------------------
# the command


def write(path, data) -> str:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return str(path)


def test_compare_exits_1_naming_the_regressed_claim_and_group(tmp_path, capsys, caplog):
    prev = write(tmp_path / "prev.json", document(PREVIOUS))
    cur = write(tmp_path / "cur.json", document(night((1, False), (2, True))))
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n", encoding="utf-8")
    assert cli.main(["compare", prev, cur, "--summary", str(summary)]) == 1
    out = capsys.readouterr().out
    assert "**1 regression**" in out and "1 fixed" in out
    assert "regression: profile-shape [cifar10-vgg16-baseline-s0-e200]" in caplog.text
    appended = summary.read_text(encoding="utf-8")
    assert appended.startswith("# earlier step\n")  # appended, not overwritten
    assert out.strip() in appended


def test_compare_of_identical_runs_exits_0(tmp_path, capsys):
    prev = write(tmp_path / "prev.json", document(PREVIOUS))
    assert cli.main(["compare", prev, prev]) == 0
    assert "**No regressions**" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content,words",
    [
        (None, "no such file"),
        ('{"verdicts": [', "not valid JSON"),
        ([1, 2], "expected a JSON object"),
        ({"verdicts": []}, "no variants.main entry"),
        ({"variants": {"main": MAIN}}, "no 'verdicts' list"),
        (
            {
                "variants": {"main": MAIN},
                "verdicts": [{"claim": "c", "group": "g", "statistic": "s", "variant": MAIN}],
            },
            "verdicts[0] lacks a valid holds",
        ),
        ({"format": 99, "variants": {"main": MAIN}, "verdicts": []}, "results format 99"),
    ],
)
def test_a_missing_or_invalid_file_exits_2_with_a_message(tmp_path, capsys, content, words):
    good = write(tmp_path / "good.json", document(PREVIOUS))
    bad = tmp_path / "bad.json"
    if content is not None:
        write(bad, content)
    for argv in (["compare", good, str(bad)], ["compare", str(bad), good]):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert words in err and str(bad) in err
    with pytest.raises(ResultsFileError, match="previous results"):
        compare({"verdicts": []}, document(PREVIOUS))


# ---------------------------------------------------------------------------------------------
# values, deltas and drift


def moved(i: int, value: float, verdicts=PREVIOUS) -> list[C.Verdict]:
    """``verdicts`` with verdict i's value set (its outcome unchanged)."""
    out = list(verdicts)
    out[i] = replace(out[i], value=value)
    return out


def values_table(text: str) -> dict[str, list[str]]:
    """The rows of the markdown's Values table, by group, as lists of cells."""
    section = text.split("### Values", 1)[1]
    rows = {}
    for line in section.strip().splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[1]] = cells
    return rows


def test_every_verdict_in_both_runs_has_its_value_before_now_and_the_change():
    found = compare(document(PREVIOUS), document(moved(0, 1.2)))
    assert [c.key for c in found.matched] == [v.key for v in PREVIOUS[:4]]
    (c,) = [c for c in found.matched if c.key == PREVIOUS[0].key]
    assert c.delta == pytest.approx(0.2) and c.relative_change == pytest.approx(0.2)
    rows = values_table(found.markdown())
    assert len(rows) == 4
    assert rows["cifar10-resnet18-baseline-s0-e200"][3:] == ["1 ✓", "1.2 ✓", "+0.2", "20 %", ""]
    assert rows["cifar10-vgg16-baseline-s0-e200"][5:7] == ["+0", "0 %"]


def test_without_a_tolerance_nothing_is_drift():
    found = compare(document(PREVIOUS), document(moved(0, 5.0)))
    assert found.drift == () and "drift" not in found.markdown()


def test_a_value_beyond_the_tolerance_with_the_same_outcome_is_drift():
    current = moved(2, 0.26, moved(0, 1.04))  # +4 % and +30 %, neither flips
    found = compare(document(PREVIOUS), document(current), tolerance=0.05)
    assert [c.key for c in found.drift] == [PREVIOUS[2].key]
    assert not found.failed
    text = found.markdown()
    assert "1 drift (value moved by more than 5 %)" in text
    assert "### Drift (same outcome, value moved by more than 5 %)" in text
    rows = values_table(text)
    assert rows["cifar10-resnet18-untrained-vs-baseline"][-1] == "drift"
    assert rows["cifar10-resnet18-baseline-s0-e200"][-1] == ""


def test_a_flip_is_a_regression_or_a_fix_not_drift():
    current = moved(1, 3.0, night((1, False), (2, True)))
    found = compare(document(PREVIOUS), document(current), tolerance=0.01)
    assert found.drift == ()
    rows = values_table(found.markdown())
    assert rows["cifar10-vgg16-baseline-s0-e200"][-1] == "regression"
    assert rows["cifar10-resnet18-untrained-vs-baseline"][-1] == "fixed"


@pytest.mark.parametrize(
    "before,after,relative,drifts",
    [
        (0.0, 0.1, math.inf, True),
        (0.0, 0.0, 0.0, False),
        (0.2, math.nan, math.inf, True),  # became unevaluable, failing before and after
        (math.nan, math.nan, 0.0, False),
        (-0.5, -0.4, 0.2, True),
    ],
)
def test_zero_and_null_values(before, after, relative, drifts):
    found = compare(document(moved(2, before)), document(moved(2, after)), tolerance=0.1)
    (c,) = [c for c in found.matched if c.key == PREVIOUS[2].key]
    assert c.relative_change == pytest.approx(relative)
    assert (c in found.drift) is drifts


def test_compare_lists_drift_as_a_warning_and_keeps_its_exit_status(tmp_path, capsys, caplog):
    prev = write(tmp_path / "prev.json", document(PREVIOUS))
    drifted = write(tmp_path / "drifted.json", document(moved(0, 1.5)))
    assert cli.main(["compare", prev, drifted, "--tolerance", "0.1"]) == 0
    assert (
        "drift: profile-shape [cifar10-resnet18-baseline-s0-e200] (shape) moved from 1.0 to 1.5"
        in caplog.text
    )
    assert "1 drift" in capsys.readouterr().out
    both = write(tmp_path / "both.json", document(moved(0, 1.5, night((1, False)))))
    assert cli.main(["compare", prev, both, "--tolerance", "0.1"]) == 1


@pytest.mark.parametrize("tolerance", ["-0.1", "nan"])
def test_a_negative_or_nan_tolerance_is_a_usage_error(tmp_path, capsys, tolerance):
    prev = write(tmp_path / "prev.json", document(PREVIOUS))
    with pytest.raises(SystemExit) as info:
        cli.main(["compare", prev, prev, "--tolerance", tolerance])
    assert info.value.code == 2
    assert "give a relative change >= 0" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# history


def test_history_keeps_one_line_per_run_and_shows_the_last_runs_side_by_side(tmp_path, capsys):
    history = tmp_path / "history.jsonl"
    first = write(tmp_path / "1.json", document(PREVIOUS, commit="1" * 40))
    second = write(tmp_path / "2.json", document(moved(0, 1.5, night((1, False))), commit="2" * 40))
    summary = tmp_path / "summary.md"
    assert cli.main(["history", str(history), "--add", first]) == 0
    capsys.readouterr()
    assert cli.main(["history", str(history), "--add", second, "--summary", str(summary)]) == 0
    out = capsys.readouterr().out
    assert len(history.read_text().splitlines()) == 2
    assert "the last 2 of 2 runs" in out
    assert "| 111111111111 |" in out and "| 222222222222 |" in out
    assert "3 of 4" in out and "2 of 4" in out  # main verdicts held in each run
    row = next(line for line in out.splitlines() if "cifar10-resnet18-baseline-s0-e200" in line)
    assert row.rstrip().endswith("| 1 ✓     | 1.5 ✓   |")
    assert out.strip() in summary.read_text()
    assert cli.main(["history", str(history), "--last", "1"]) == 0
    shown = capsys.readouterr().out
    assert "the last 1 of 2 runs" in shown and "111111111111" not in shown


def test_a_damaged_history_line_is_skipped_with_a_warning(tmp_path, capsys, caplog):
    history = tmp_path / "history.jsonl"
    assert cli.main(["history", str(history), "--add", write(tmp_path / "1.json", document(PREVIOUS))]) == 0
    with history.open("a") as f:
        f.write('{"created": "cut sh\n')
    assert cli.main(["history", str(history)]) == 0
    assert "the last 1 of 1 runs" in capsys.readouterr().out
    assert f"{history}:2: not a history entry, skipped" in caplog.text


def test_history_refuses_a_missing_history_or_a_bad_results_file(tmp_path, capsys):
    history = tmp_path / "history.jsonl"
    with pytest.raises(SystemExit) as info:
        cli.main(["history", str(history)])
    assert info.value.code == 2
    assert f"start one with crlm-bench history {history} --add RESULTS.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main(["history", str(history), "--add", write(tmp_path / "bad.json", {"verdicts": []})])
    assert info.value.code == 2 and "no variants.main entry" in capsys.readouterr().err
    assert not history.exists()  # nothing appended
