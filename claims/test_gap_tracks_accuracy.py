"""Claim 3: the curvature gap between the last two probes tracks test accuracy."""

from crlm_bench.pytest_plugin import check
from crlm_bench.replication.claims.gap_across_models import GAP_ACROSS_MODELS
from crlm_bench.replication.claims.gap_along_training import GAP_ALONG_TRAINING


def test_gap_tracks_accuracy_across_models(replication, dataset_models):
    check(replication.verdicts_for(GAP_ACROSS_MODELS, dataset_models))


def test_gap_tracks_accuracy_along_training(replication, checkpoint_run):
    check(replication.verdicts_for(GAP_ALONG_TRAINING, checkpoint_run))
