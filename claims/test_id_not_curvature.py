"""Claim 4: intrinsic dimension does not track curvature along the layers."""

from crlm_bench.pytest_plugin import check
from crlm_bench.replication.claims.id_not_curvature import ID_NOT_CURVATURE


def test_id_not_curvature(replication, dataset_models):
    check(replication.verdicts_for(ID_NOT_CURVATURE, dataset_models))
