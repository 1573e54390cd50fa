"""Claim 2: an untrained network's curvature flattens instead of rising at the end."""

from crlm_bench.pytest_plugin import check
from crlm_bench.replication.claims.untrained_flattens import UNTRAINED_FLATTENS


def test_untrained_flattens(replication, model_pair):
    check(replication.verdicts_for(UNTRAINED_FLATTENS, model_pair))
