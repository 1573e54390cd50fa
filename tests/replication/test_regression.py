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


def night(*changes: tuple[int, bool]) -> list[C.Verdict]:
    """PREVIOUS with verdict i's holds set."""
    out = list(PREVIOUS)
    for i, holds in changes:
        out[i] = replace(out[i], holds=holds)
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
    current = [*PREVIOUS[:4], replace(PREVIOUS[4], holds=False)]
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
    found = compare(document(PREVIOUS), document([*PREVIOUS, replace(PREVIOUS[0], holds=False)]))
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
