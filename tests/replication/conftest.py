"""Shared by the replication tests: every matplotlib module the report draws with, imported once
at collection.

The ``pytester`` fixture removes, when a test ends, every module first imported during that test,
while the ``matplotlib`` package keeps its attributes for the removed submodules. A test that
writes a report under ``pytester`` (the smoke budget's, through the command line in its process)
would thus leave figures drawn later in the process mixing classes of two imports of one module
(seen under xdist, where the test order differs: "Single argument to subplot must be a three-digit
integer, not GridSpec"). Drawing one figure here, as the report does, imports them all first.
"""

from __future__ import annotations

import io


def _draw_as_the_report_does() -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2), layout="constrained")
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2]})
    left.bar([0, 1], [1.0, 2.0], label="bars")
    left.errorbar([0], [1.0], yerr=[[0.5], [0.5]], fmt="none", capsize=3, label="interval")
    left.annotate("a", (0, 1), xytext=(2, 2), textcoords="offset points")
    left.legend(loc="upper right")
    right.plot([1, 2], [1, 10], marker="o")
    right.set_yscale("log")
    right.fill_between([1, 2], [0.5, 5], [2, 20], alpha=0.2)
    fig.suptitle("x ≤ 0.5 ✗")
    for kind in ("png", "svg"):
        fig.savefig(io.BytesIO(), format=kind, dpi=50)


_draw_as_the_report_does()
