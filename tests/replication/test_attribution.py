"""Attribution: measurement changes, the budget's changed cells, the seed-0 verdicts under each
change, the changes that turn a verdict, and the audit check every changed cell must pass."""

from __future__ import annotations

import dataclasses

import pytest

from crlm_bench.experiment.cell import (
    AUGMENTED_POINTS,
    MEASUREMENT_CHANGES,
    PRESETS,
    Cell,
    Measurement,
    Training,
)
from crlm_bench.replication.attribution import (
    COLLAPSE,
    attribution_variant,
    evaluate_attribution,
    flips,
    unflagged_collapses,
)
from crlm_bench.replication.budgets import ATTRIBUTION_CHANGES, ATTRIBUTION_SEED, Budget, get_budget
from crlm_bench.replication.claims import MAIN_VARIANT
from crlm_bench.replication.grid import ATTRIBUTION_KIND, groups_of
from tests.replication.claim_cases import PAPER_LIKE, make_profile, make_result

# ---------------------------------------------------------------------------------------------
# a measurement change


@pytest.mark.parametrize("change", MEASUREMENT_CHANGES)
def test_each_change_differs_from_the_default_and_only_by_that_change(change):
    m = Measurement(points=10, toggles=3)
    changed = m.changed(change)
    assert changed != m and changed.points == 10 and changed.toggles == 3
    if change == "float32":
        assert changed == dataclasses.replace(m, precision="float32")
    elif change == AUGMENTED_POINTS:
        assert changed == dataclasses.replace(m, split="train-augmented")
    elif change in PRESETS:
        assert changed == m.with_preset(change)
    else:
        assert changed.deviations == (change,) and changed.precision == m.precision


def test_a_deviation_already_named_is_not_named_twice():
    m = Measurement(deviations=("svd_fit",))
    assert m.changed("svd_fit") == m


def test_an_unknown_change_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="known: float32"):
        Measurement().changed("float16")
    with pytest.raises(ValueError, match="unknown measurement change"):
        Budget("b", "", (), changes=("float16",))


# ---------------------------------------------------------------------------------------------
# the budget's changed cells


def test_the_cpu_budget_measures_each_seed0_claim_cell_under_each_change_and_vgg16_under_three():
    budget = get_budget("cpu")
    triples = budget.attribution_cells()
    claim_keys = {c.key for c in budget.claim_cells()}
    on_claims = [t for t in triples if t[1].key in claim_keys]
    # the precision alone, each deviation of the preset alone, its points alone, and the preset
    expected = {"float32", AUGMENTED_POINTS, "authors", *PRESETS["authors"]["deviations"]}
    assert {t[0] for t in on_claims} == expected
    assert all(cell.training.seed == ATTRIBUTION_SEED for _, cell, _ in on_claims)
    seed0 = [c for c in budget.claim_cells() if c.training.seed == ATTRIBUTION_SEED]
    assert len(on_claims) == len(seed0) * len(ATTRIBUTION_CHANGES)
    shown = [t for t in triples if t[1].key not in claim_keys]
    assert [t[0] for t in shown] == ["float32", "unscaled_fit", "authors"]
    assert {t[1].training.model for t in shown} == {"vgg16"}
    for change, cell, changed in triples:
        assert changed.training == cell.training and changed.measurement == cell.measurement.changed(change)
    every = {c.key for c in budget.all_cells()}
    assert claim_keys | {c.key for _, _, c in triples} | {c.key for c in budget.demonstrations} == every
    # ids stay unique where a user names a cell by its id
    assert len({c.id for c in budget.claim_cells()}) == len(budget.claim_cells())


def test_each_changed_cell_is_an_attribution_test_parameter():
    budget = get_budget("cpu")
    groups = groups_of(budget)[ATTRIBUTION_KIND]
    assert [g.cells for g in groups] == [(cell, changed) for _, cell, changed in budget.attribution_cells()]
    assert groups[0].id == f"{groups[0].cells[0].id}-{ATTRIBUTION_CHANGES[0]}"


def test_a_budget_without_changes_has_no_attribution():
    budget = get_budget("smoke")
    assert budget.attribution_cells() == () and budget.all_cells() == budget.claim_cells()
    assert evaluate_attribution(budget, lambda cell: None) == []


def test_the_paper_budget_attributes_every_cell_and_its_untrained_vgg16_once_per_change():
    budget = get_budget("paper")
    triples = budget.attribution_cells()
    assert len({(change, changed.key) for change, _, changed in triples}) == len(triples)
    authors = [cell.key for change, cell, _ in triples if change == "authors"]
    assert sorted(authors) == sorted(c.key for c in budget.claim_cells())  # the VGG16 once, not twice
    (vgg16,) = budget.demonstrations
    assert (vgg16.training.dataset, vgg16.training.model, vgg16.training.recipe) == (
        "cifar10",
        "vgg16",
        "untrained",
    )
    # a claim cell too: each change once, the demonstration's (float32, unscaled_fit) among them
    assert [change for change, cell, _ in triples if cell == vgg16] == list(ATTRIBUTION_CHANGES)
    ids = [g.id for g in groups_of(budget)[ATTRIBUTION_KIND]]
    assert len(set(ids)) == len(ids)


# ---------------------------------------------------------------------------------------------
# the seed-0 verdicts under each change


def _budget() -> Budget:
    m = Measurement(points=10, toggles=3)
    cells = tuple(
        Cell(Training("fashion-mnist", "vgg6_narrow", "baseline", seed=s, epochs=10), measurement=m)
        for s in (0, 1)
    )
    return Budget("t", "", cells, changes=("authors",))


def _lookup(budget: Budget, by_change: dict[str, list[float]]):
    """Results by cell: seed s of the default measurement, or the seed-0 cell under a change."""
    table = {}
    for cell in budget.claim_cells():
        table[cell.key] = make_result(PAPER_LIKE, model="vgg6_narrow", seed=cell.training.seed)
    for change, _, changed in budget.attribution_cells():
        table[changed.key] = make_result(by_change[change], model="vgg6_narrow", seed=0)
    return lambda cell: table.get(cell.key)


def test_attribution_verdicts_name_the_main_group_and_say_which_change_turns_them():
    budget = _budget()
    flat = [0.1] * len(PAPER_LIKE)  # no rise anywhere: the shape fails under the change
    found = evaluate_attribution(budget, _lookup(budget, {"authors": flat}))
    shape = [v for v in found if v.claim == "profile-shape"]
    assert [v.variant for v in shape] == [attribution_variant(""), attribution_variant("authors")]
    assert {v.group for v in shape} == {"fashion-mnist-vgg6_narrow-baseline-s0+1-e10"}
    default, changed = shape
    assert default.outcome == "holds" and changed.outcome == "fails"
    main = dataclasses.replace(default, variant=MAIN_VARIANT)
    assert flips(main, [main, *shape]) == ["authors ✗"]


def test_a_change_that_keeps_the_outcome_turns_nothing():
    budget = _budget()
    found = evaluate_attribution(budget, _lookup(budget, {"authors": [2 * x for x in PAPER_LIKE]}))
    shape = [v for v in found if v.claim == "profile-shape"]
    main = dataclasses.replace(shape[0], variant=MAIN_VARIANT)
    assert [v.outcome for v in shape] == ["holds", "holds"] and flips(main, [main, *shape]) == []


def test_a_change_not_stored_is_left_out():
    budget = _budget()
    lookup = _lookup(budget, {"authors": PAPER_LIKE})
    changed_keys = {c.key for _, _, c in budget.attribution_cells()}
    found = evaluate_attribution(budget, lambda cell: None if cell.key in changed_keys else lookup(cell))
    assert {v.variant for v in found} == {attribution_variant("")}


# ---------------------------------------------------------------------------------------------
# the audit check


def _frame(latent, unresolved):
    frame = make_profile(latent)
    frame["unresolved"] = [False, False, *unresolved]
    return frame


def test_a_collapse_the_audit_flags_passes_and_one_it_misses_is_named():
    latent = [1.0, 2.0, 3.0]
    collapsed = [1.0, 2.0 * COLLAPSE, 3.0 * COLLAPSE / 10]
    assert unflagged_collapses(_frame(latent, [False] * 3), _frame(collapsed, [False, True, True])) == []
    missed = unflagged_collapses(_frame(latent, [False] * 3), _frame(collapsed, [False, True, False]))
    assert len(missed) == 1 and missed[0].startswith("linear: MAPC")


def test_a_drop_short_of_a_collapse_needs_no_flag_and_the_input_is_left_out():
    latent = [1.0, 2.0, 3.0]
    dropped = [1.0, 2.0 * COLLAPSE * 1.01, 3.0]
    assert unflagged_collapses(_frame(latent, [False] * 3), _frame(dropped, [False] * 3)) == []
    flat_input = _frame(latent, [False] * 3)
    flat_input.loc[flat_input["depth"] == 0, "mapc"] = 1e-30  # the authors' input patch is flat
    assert unflagged_collapses(_frame(latent, [False] * 3), flat_input) == []


def test_a_profile_without_the_audit_is_refused():
    with pytest.raises(ValueError, match="no 'unresolved' column"):
        unflagged_collapses(make_profile([1.0]), make_profile([1.0]))


def test_the_plugin_names_the_attribution_fixture_as_the_grid_does():
    from crlm_bench import pytest_plugin

    assert pytest_plugin._ATTRIBUTION == ATTRIBUTION_KIND
