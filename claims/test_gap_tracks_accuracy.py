"""Claim 3: the curvature gap between the last two probes tracks test accuracy."""

from crlm_bench.pytest_plugin import check


def test_gap_tracks_accuracy_across_models(replication, dataset_models):
    check(replication.verdicts_for("gap-tracks-accuracy", dataset_models))


def test_gap_tracks_accuracy_along_training(replication, checkpoint_run):
    check(replication.verdicts_for("gap-tracks-accuracy", checkpoint_run))
