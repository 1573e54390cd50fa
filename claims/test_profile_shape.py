"""Claim 1: a trained network's curvature rises steeply, plateaus, and rises again at the end."""

from crlm_bench.pytest_plugin import check
from crlm_bench.replication.claims.profile_shape import PROFILE_SHAPE


def test_profile_shape(replication, trained_cell):
    check(replication.verdicts_for(PROFILE_SHAPE, trained_cell))
