"""The cost of a selection, estimated from the store's own timings (experiment/cost.py)."""

from __future__ import annotations

import pytest

from crlm_bench.experiment.cell import Cell
from crlm_bench.experiment.cost import estimate
from crlm_bench.experiment.pipeline import PROFILE_KIND, TRAINING_KIND
from crlm_bench.experiment.store import Store

#: a stored 6-epoch run took 60 s (10 s per epoch), a stored 200-point profile 40 s (0.2 s per point)
RUN_S, PROFILE_S = 60.0, 40.0


def _cell(model: str = "vgg6_narrow", seed: int = 0, points: int = 200, epochs: int = 6) -> Cell:
    return Cell.parse(f"fashion-mnist-{model}-baseline-s{seed}-e{epochs}", points=points)


def _timed(store: Store, cell: Cell) -> None:
    """Store ``cell``'s training run and profile as if computed here, with their seconds."""
    t = cell.training
    store.put(TRAINING_KIND, t.key, {"x.bin": b"0"}, t.to_dict(), {"seconds": RUN_S}, summary=cell.id)
    store.put(
        PROFILE_KIND, cell.key, {"x.bin": b"0"}, cell.to_dict(), {"seconds": PROFILE_S}, summary=cell.id
    )


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(tmp_path / "store")
    _timed(s, _cell())
    return s


def test_a_stored_cell_costs_nothing(store):
    cost = estimate([_cell(), _cell()], store)
    assert (cost.cells, cost.stored, cost.profiles, cost.trainings) == (1, 1, 0, 0)
    assert cost.describe() == "1 cells, all stored: nothing to compute"


def test_another_seed_is_estimated_from_the_stored_run_and_profile(store):
    cost = estimate([_cell(), _cell(seed=1), _cell(seed=2, points=100)], store)
    assert (cost.cells, cost.stored, cost.profiles, cost.trainings, cost.unestimated) == (3, 1, 2, 2, 0)
    # two 6-epoch runs at 10 s per epoch; profiles of 200 and 100 points at 0.2 s per point
    assert cost.seconds == pytest.approx(2 * RUN_S + PROFILE_S + PROFILE_S / 2)
    assert cost.describe().endswith(
        "2 profiles and 2 training runs to compute; about 3 min by this store's timings"
    )


def test_epochs_scale_the_run_and_a_checkpoint_shares_its_run(store):
    twelve = Cell.parse("fashion-mnist-vgg6_narrow-baseline-s0-e12", points=200, save_at=(6,))
    at_six = Cell.parse("fashion-mnist-vgg6_narrow-baseline-s0-e6of12", points=200, save_at=(12,))
    assert twelve.training.key == at_six.training.key
    cost = estimate([twelve, at_six], store)
    assert (cost.profiles, cost.trainings, cost.unestimated) == (2, 1, 0)
    assert cost.seconds == pytest.approx(2 * RUN_S + 2 * PROFILE_S)


def test_what_has_no_comparable_timing_is_counted_not_guessed(store):
    cost = estimate([_cell(seed=1), _cell(model="resnet8_narrow")], store)
    assert (cost.profiles, cost.trainings, cost.unestimated) == (2, 2, 2)  # resnet8's run and profile
    assert cost.seconds == pytest.approx(RUN_S + PROFILE_S)
    assert cost.describe().endswith("about 2 min by this store's timings (+ 2 without a comparable timing)")
    alone = estimate([_cell(model="resnet8_narrow")], store)
    assert alone.describe().endswith("no comparable timing in the store to estimate the time from")


def test_an_empty_or_missing_store_estimates_nothing(tmp_path):
    cost = estimate([_cell()], Store(tmp_path / "none"))
    assert (cost.stored, cost.profiles, cost.trainings, cost.unestimated, cost.seconds) == (0, 1, 1, 2, 0.0)
