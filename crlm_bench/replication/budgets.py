"""Measurement sizes of the harness's budgets (the grids of cells come with the claims issue).

- ``smoke``: seconds, for testing the machinery only.
- ``cpu``: a few hundred points and 7 toggles (127 neighbours), for small networks on
  Fashion-MNIST on a 2-core CPU.
- ``paper``: the paper's sizes — 5000 points, 1023 neighbours, TwoNN over 10 runs of 5000.
"""

from __future__ import annotations

from crlm_bench.experiment.cell import Measurement

MEASUREMENTS: dict[str, Measurement] = {
    "smoke": Measurement(points=8, toggles=3, id_runs=2, id_samples=128),
    "cpu": Measurement(points=300, toggles=7, id_runs=3, id_samples=2000),
    "paper": Measurement(),
}
