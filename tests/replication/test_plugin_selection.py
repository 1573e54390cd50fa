"""``-k`` in a claims session: the dataset and model names in claim test ids match whole names
(``-k cifar10`` is CIFAR-10, not CIFAR-100), and every other word and every other test keep pytest's
substring rule. Collection only (``--collect-only`` touches no data), through pytester."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _pytest.mark.expression import Expression

from crlm_bench.pytest_plugin import WHOLE_NAMES_PLUGIN, matches_whole_names
from crlm_bench.replication.budgets import get_budget
from crlm_bench.replication.grid import Group, groups_of

CLAIMS_DIR = Path(__file__).resolve().parents[2] / "claims"
CLAIM_FILES = {path.name for path in CLAIMS_DIR.glob("test_*.py")}

pytest_plugins = ["pytester"]

# tests that are not claim tests, in the same session: -k treats them as pytest does
NOT_A_CLAIM = """
import pytest


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "resnet18_narrow", "vgg13"])
def test_plain(name):
    pass


def test_cifar100_loader():
    pass
"""
PLAIN_FILE = "test_not_a_claim.py"


@pytest.fixture
def session_dir(pytester: pytest.Pytester) -> pytest.Pytester:
    for source in CLAIMS_DIR.glob("*.py"):
        shutil.copy(source, pytester.path / source.name)
    (pytester.path / PLAIN_FILE).write_text(NOT_A_CLAIM)
    return pytester


def collect(pytester: pytest.Pytester, budget: str, *args: str) -> tuple[list[str], list[str], str]:
    """The claim tests and the other tests collected (``file::name[id]``), and the whole output."""
    result = pytester.runpytest_inprocess(
        "--collect-only", "-q", "--budget", budget, "-p", "no:cacheprovider", "--store", "no-store", *args
    )
    out = result.stdout.str()
    assert result.ret in (0, 5), out[-3000:] + result.stderr.str()[-3000:]  # 5: every test deselected
    assert not (pytester.path / "no-store").exists()
    lines = [line for line in result.stdout.lines if "::" in line]
    claims = [line for line in lines if line.partition("::")[0] in CLAIM_FILES]
    return claims, [line for line in lines if line not in claims], out


_FULL: dict[str, tuple[list[str], list[str]]] = {}


def everything(pytester: pytest.Pytester, budget: str) -> tuple[list[str], list[str]]:
    """Every test of the session, without -k (collected once per budget)."""
    if budget not in _FULL:
        claims, plain, _ = collect(pytester, budget)
        _FULL[budget] = claims, plain
    return _FULL[budget]


def group_of(line: str, budget: str) -> Group:
    by_id = {g.id: g for kind in groups_of(get_budget(budget)).values() for g in kind}
    return by_id[line[line.index("[") + 1 : -1]]


def dataset(group: Group) -> str:
    return group.cells[0].training.dataset


def model(group: Group) -> str | None:
    """The model named in the group's id (a dataset's models are compared under the dataset alone)."""
    return None if group.kind == "dataset_models" else group.cells[0].training.model


def substring_rule(expression: str, line: str) -> bool:
    """pytest's -k on a collected line: each word a case-insensitive substring."""
    return Expression.compile(expression).evaluate(lambda word: word.lower() in line.lower())


NAME_CASES = [
    ("paper", "cifar10", lambda g: dataset(g) == "cifar10"),
    ("paper", "CIFAR10", lambda g: dataset(g) == "cifar10"),  # case-insensitive, as pytest's -k
    ("paper", "cifar100", lambda g: dataset(g) == "cifar100"),
    ("paper", "cifar10 and not cifar100", lambda g: dataset(g) == "cifar10"),  # the old workaround
    ("paper", "not cifar10", lambda g: dataset(g) == "cifar100"),  # substrings would drop CIFAR-100
    ("paper", "not cifar100", lambda g: dataset(g) == "cifar10"),
    ("paper", "resnet18", lambda g: model(g) == "resnet18"),
    ("paper", "resnet18 and not cifar10", lambda g: model(g) == "resnet18" and dataset(g) == "cifar100"),
    ("paper", "cifar10-resnet18", lambda g: model(g) == "resnet18" and dataset(g) == "cifar10"),
    ("paper", "resnet1", lambda g: False),  # a part of resnet18 and resnet101, a whole name of none
    ("paper", "vgg1", lambda g: False),  # nor vgg13, vgg16, vgg19
    ("paper", "not vgg1", lambda g: True),
    ("paper", "vgg13 or vgg16", lambda g: model(g) in ("vgg13", "vgg16")),
    ("paper", "cifar10 and mixup", lambda g: dataset(g) == "cifar10" and "mixup" in g.id),
    ("cpu", "vgg6_narrow", lambda g: model(g) == "vgg6_narrow"),
    ("cpu", "resnet8_narrow", lambda g: model(g) == "resnet8_narrow"),  # scripts/main.sh's example
    ("cpu", "vgg1", lambda g: False),  # not vgg11_narrow
    ("cpu", "fashion-mnist", lambda g: True),
    ("cpu", "mnist", lambda g: False),  # MNIST is not Fashion-MNIST
]


@pytest.mark.parametrize("budget,expression,selected", NAME_CASES, ids=[f"{b}:{e}" for b, e, _ in NAME_CASES])
def test_dataset_and_model_names_in_claim_ids_match_whole(session_dir, budget, expression, selected):
    all_claims, all_plain = everything(session_dir, budget)
    claims, plain, _ = collect(session_dir, budget, "-k", expression)
    assert claims == [line for line in all_claims if selected(group_of(line, budget))]
    assert plain == [line for line in all_plain if substring_rule(expression, line)]


def test_k_cifar10_is_every_cifar10_claim_test_and_only_those(session_dir):
    all_claims, _ = everything(session_dir, "paper")
    claims, plain, out = collect(session_dir, "paper", "-k", "cifar10")
    assert claims and not any("cifar100" in line for line in claims)
    assert {line.split("[")[0] for line in claims} == {line.split("[")[0] for line in all_claims}
    assert len(claims) == sum(dataset(group_of(line, "paper")) == "cifar10" for line in all_claims)
    # the tests that are not claims match as pytest has them: cifar100 contains cifar10
    assert plain == [
        f"{PLAIN_FILE}::test_plain[cifar10]",
        f"{PLAIN_FILE}::test_plain[cifar100]",
        f"{PLAIN_FILE}::test_cifar100_loader",
    ]
    assert "crlm-bench: -k" not in out  # cifar10 is a whole name: nothing to say


@pytest.mark.parametrize(
    "budget,expression",
    [
        ("paper", "untrained"),
        ("paper", "profile_shape and resnet50"),
        ("paper", "test_mixup"),
        ("paper", "baseline-models or checkpoints"),
        ("paper", "e200 and not (mixup or untrained)"),
        ("cpu", "mixup"),
        ("cpu", "not gap_tracks"),
        ("cpu", "plain"),
    ],
)
def test_expressions_without_a_part_of_a_name_select_as_pytest_does(session_dir, budget, expression):
    ours = collect(session_dir, budget, "-k", expression)
    pytest_alone = collect(session_dir, budget, "-k", expression, "-p", f"no:{WHOLE_NAMES_PLUGIN}")
    assert ours[:2] == pytest_alone[:2]
    assert ours[0] or ours[1]
    all_claims, all_plain = everything(session_dir, budget)
    assert ours[0] + ours[1] == [line for line in all_claims + all_plain if substring_rule(expression, line)]


def test_m_still_applies_and_the_k_option_is_given_back(session_dir):
    all_claims, _ = everything(session_dir, "paper")  # before the files below
    session_dir.makeini("[pytest]\nmarkers =\n    slow: a slow test\n")
    session_dir.makepyfile(
        test_marked="import pytest\n\n@pytest.mark.slow\ndef test_cifar10_slow(): pass\n\n"
        "def test_cifar10_quick(): pass\n"
    )
    with open(session_dir.path / "conftest.py", "a") as conftest:  # the copy of claims/conftest.py
        conftest.write(
            "\ndef pytest_collection_finish(session):\n"
            "    open('keyword.txt', 'w').write(session.config.option.keyword)\n"
        )
    claims, others, _ = collect(session_dir, "paper", "-k", "cifar10", "-m", "not slow")
    assert claims == [line for line in all_claims if dataset(group_of(line, "paper")) == "cifar10"]
    assert [line for line in others if line.startswith("test_marked.py")] == [
        "test_marked.py::test_cifar10_quick"
    ]
    assert len(others) == 4
    assert (session_dir.path / "keyword.txt").read_text() == "cifar10"


def test_without_the_whole_name_plugin_k_is_pytests_substring_rule(session_dir):
    claims, _, _ = collect(session_dir, "paper", "-k", "cifar10", "-p", f"no:{WHOLE_NAMES_PLUGIN}")
    assert any("[cifar100-" in line for line in claims)  # what the README used to warn about


def test_a_word_that_is_only_part_of_names_is_explained(session_dir):
    claims, _, out = collect(session_dir, "cpu", "-k", "narrow")
    assert claims == []
    assert (
        "crlm-bench: -k 'narrow' matches no claim test (part of resnet14_narrow, resnet8_narrow, "
        "vgg11_narrow, vgg6_narrow): dataset and model names in claim test ids match whole only"
    ) in out


@pytest.mark.parametrize("expression", ["cifar10 and", "cifar10(epochs=2)", "(resnet18"])
def test_a_bad_expression_is_the_usage_error_pytest_gives(session_dir, expression):
    def error(*extra: str) -> tuple[int, list[str]]:
        result = session_dir.runpytest_inprocess(
            "--collect-only", "-q", "--budget", "paper", "-p", "no:cacheprovider", "-k", expression, *extra
        )
        return result.ret, [line for line in result.stderr.lines if line.startswith("ERROR")]

    ours = error()
    assert ours[0] == pytest.ExitCode.USAGE_ERROR and ours[1], ours
    assert ours == error("-p", f"no:{WHOLE_NAMES_PLUGIN}")


WHOLE_NAME_CASES = [
    # (word, text, names, matches)
    ("cifar10", "test_x[cifar10-resnet18-baseline-s0-e200]", ["cifar10", "resnet18"], True),
    ("cifar10", "test_x[cifar100-resnet18-baseline-s0-e200]", ["cifar100", "resnet18"], False),
    ("CIFAR100", "test_x[cifar100-resnet18-baseline-s0-e200]", ["cifar100", "resnet18"], True),
    ("resnet18", "test_x[cifar10-resnet18_narrow-baseline-s0-e8]", ["cifar10", "resnet18_narrow"], False),
    ("resnet18_narrow", "test_x[cifar10-resnet18_narrow-baseline-s0-e8]", ["resnet18_narrow"], True),
    ("narrow", "test_x[cifar10-resnet18_narrow-baseline-s0-e8]", ["cifar10", "resnet18_narrow"], False),
    ("resnet1", "test_x[cifar10-resnet101-baseline-s0-e200]", ["cifar10", "resnet101"], False),
    ("cifar10-resnet18", "test_x[cifar10-resnet18-baseline-s0-e200]", ["cifar10", "resnet18"], True),
    ("cifar10-resnet1", "test_x[cifar10-resnet18-baseline-s0-e200]", ["cifar10", "resnet18"], False),
    ("0-resnet18", "test_x[cifar10-resnet18-baseline-s0-e200]", ["cifar10", "resnet18"], False),
    ("mnist", "test_x[fashion-mnist-vgg6_narrow-baseline-s0-e8]", ["fashion-mnist", "vgg6_narrow"], False),
    ("fashion-mnist-vgg", "test_x[fashion-mnist-vgg6_narrow-s0-e8]", ["fashion-mnist", "vgg6_narrow"], False),
    ("shion-mnist-vgg6_narrow", "test_x[fashion-mnist-vgg6_narrow-e8]", ["fashion-mnist"], False),
    ("baseline", "test_x[cifar10-resnet18-baseline-s0-e200]", ["cifar10", "resnet18"], True),
    ("e20", "test_x[cifar10-resnet18-baseline-s0-e200]", ["cifar10", "resnet18"], True),  # not a name
    ("st_x", "test_x[cifar10-resnet18-baseline-s0-e200]", ["cifar10", "resnet18"], True),
    ("test_x[cifar10", "test_x[cifar10-resnet18-baseline-s0-e200]", ["cifar10", "resnet18"], True),
    # a name stands whole only between characters that cannot be part of one
    ("cifar10", "test_x[cifar10_extra-resnet18-s0]", ["cifar10", "resnet18"], True),
    ("resnet18", "test_cifar10-resnet18", ["resnet18"], True),
    ("cifar10", "cifar100", [], True),  # no names: pytest's substring rule
    ("vgg", "test_x[cifar10-vgg13-x]", ["cifar10", "vgg13"], False),
    ("vgg13", "test_x[cifar10-vgg13-x-vgg13]", ["vgg13"], True),
]


@pytest.mark.parametrize("word,text,names,matches", WHOLE_NAME_CASES)
def test_a_word_may_not_cut_a_name(word, text, names, matches):
    assert matches_whole_names(word, text, names) is matches


def test_the_pytest_internals_the_selection_relies_on(pytester: pytest.Pytester):
    """Private pytest 9.2 behaviour the whole-name selection builds on (crlm_bench.pytest_plugin's
    WholeNameKeywords): if an upgrade changes one of these, this test says which."""
    from _pytest.mark import KeywordMatcher, deselect_by_keyword

    items = pytester.getitems(
        "import pytest\n@pytest.mark.slow\n@pytest.mark.parametrize('x', ['cifar100'])\ndef test_a(x): pass\n"
    )
    (item,) = items
    names = KeywordMatcher.from_item(item)._names
    assert item.name == "test_a[cifar100]" and {item.name, item.parent.name, "slow"} <= set(names)
    assert KeywordMatcher(frozenset({"test_a[cifar100]"}))("CIFAR10")  # the substring rule
    assert Expression.compile("a and not b").evaluate(lambda w: w == "a")
    # the mark plugin reads -k from config.option.keyword alone
    config = item.config
    config.option.keyword = ""
    kept = list(items)
    deselect_by_keyword(kept, config)
    assert kept == items
    config.option.keyword = "nothing_matches"
    deselect_by_keyword(kept, config)
    assert kept == []
