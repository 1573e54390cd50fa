"""Claim 4: intrinsic dimension does not track curvature along the layers."""

from crlm_bench.pytest_plugin import check


def test_id_not_curvature(replication, dataset_models):
    check(replication.verdicts_for("id-not-curvature", dataset_models))
