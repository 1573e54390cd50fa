"""Claim 5: mixup gives flatter representations than the other regularisers."""

from crlm_bench.pytest_plugin import check


def test_mixup_flattens(replication, recipe_set):
    check(replication.verdicts_for("mixup-flattens", recipe_set))
