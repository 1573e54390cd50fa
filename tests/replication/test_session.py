"""The results of a budget from a store (replication/session.py): what the plugin and the command
line read and compute through, without naming the store's kinds or files."""

from __future__ import annotations

from crlm_bench.experiment import pipeline
from crlm_bench.experiment.cell import Cell, Measurement
from crlm_bench.experiment.store import Store
from crlm_bench.replication.session import StoredResults

#: an untrained network on synthetic data, measured small: seconds, no data set needed
MEASUREMENT = Measurement(points=6, toggles=3, id_runs=2, id_samples=64, precision="float64")
CELL = Cell.parse("synthetic-vgg6_narrow-untrained-s0-e0", measurement=MEASUREMENT)


def test_a_cell_is_computed_with_those_sharing_its_activations_and_read_back(tmp_path):
    store = Store(tmp_path / "store")
    results = StoredResults(store)
    shares, does_not = CELL.changed("float32"), CELL.changed("authors")
    assert results(CELL) is None and results(shares) is None  # looked up (and remembered) as missing
    assert not results.holds(CELL) and not results.holds(shares)

    got = results.compute(CELL, pipeline.Context(), alongside=[CELL, shares, does_not])
    assert got.cell_id == CELL.id
    assert results.holds(CELL) and results.holds(shares) and not results.holds(does_not)
    assert results(shares) is not None  # measured alongside: no longer remembered as missing
    assert [r.cell_id for r in results.found()] == [CELL.id, shares.id]
    assert results.of([CELL, does_not, CELL]) == [got]

    # a second reader finds the same without computing
    audit = store.audit()
    again = StoredResults(store)(CELL)
    assert again is not None and again.cell_id == got.cell_id
    assert store.audit() == audit


def test_a_store_that_does_not_exist_holds_nothing_and_is_not_created(tmp_path):
    results = StoredResults(Store(tmp_path / "none"))
    assert not results.holds(CELL) and results(CELL) is None
    assert not (tmp_path / "none").exists()
