"""The grid: which cells each claim test compares."""

from __future__ import annotations

from crlm_bench.replication.budgets import CPU_SEEDS, get_budget
from crlm_bench.replication.grid import groups_of


def test_every_trained_network_of_the_cpu_budget_pools_its_seeds_though_one_keeps_checkpoints():
    """vgg6_narrow's seed-0 run keeps earlier epochs for the checkpoint series and its other seeds
    do not: the kept epochs change no weight, so the three seeds are still one network."""
    budget = get_budget("cpu")
    (series,) = budget.checkpoint_runs
    assert len(set(series[0].training.save_at)) > 1
    baselines = [g for g in groups_of(budget)["trained_cell"] if "-baseline-" in g.id]
    assert len(baselines) == 4
    for group in baselines:
        assert sorted(c.training.seed for c in group.cells) == list(CPU_SEEDS), group.id
        assert group.id.endswith("-baseline-s0+1+2-e6")
