"""Claim 5: mixup gives flatter representations than the other regularisers."""

from crlm_bench.pytest_plugin import check
from crlm_bench.replication.claims.mixup_flattens import MIXUP_FLATTENS


def test_mixup_flattens(replication, recipe_set):
    check(replication.verdicts_for(MIXUP_FLATTENS, recipe_set))
