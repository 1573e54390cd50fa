"""Claim 2: an untrained network's curvature flattens instead of rising at the end."""

from crlm_bench.pytest_plugin import check


def test_untrained_flattens(replication, model_pair):
    check(replication.verdicts_for("untrained-flattens", model_pair))
