"""Attribution: each claim's seed-0 cells and each demonstration measured again under a measurement
change (the budget's ``changes``: the ``authors`` preset in the cpu budget). The report shows which
change turns which verdict; this test asserts what makes that reading safe, that the numerical
audit flags every latent probe whose MAPC the change collapses."""

from crlm_bench.replication.attribution import unflagged_collapses


def test_audit_flags_every_collapse(replication, attribution):
    default, changed = (replication.result(cell) for cell in attribution.cells)
    missed = unflagged_collapses(default.profile, changed.profile)
    assert not missed, "the numerical audit missed a collapse: " + "; ".join(missed)
