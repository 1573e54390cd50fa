"""The mutation score per module of the last run (``mutants/**/*.meta``, written by mutmut), leaving
out the mutants listed in ``mutation/equivalent.md``; then the surviving mutants by name.

A mutant counts as detected when a test failed (killed), ran out of time or crashed; it counts
against the score when every test passed (survived) or no selected test calls its function (no
tests). Exit status 1 when a module's score is under :data:`TARGET` or a listed equivalent mutant
was killed (the list is stale); 0 otherwise. ``python mutation/score.py`` from the repository root.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

#: The share of non-equivalent mutants each module's tests must detect (issue 15).
TARGET = 0.90

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
EQUIVALENT = Path(__file__).resolve().with_name("equivalent.md")

#: mutmut's exit codes (mutmut.stats.status_by_exit_code, 3.8.1) grouped as this score reads them.
DETECTED = {
    1: "killed",
    3: "killed",
    36: "timeout",
    24: "timeout",
    -24: "timeout",
    152: "timeout",
    255: "timeout",
    -11: "crashed",
    -9: "crashed",
}
UNDETECTED = {0: "survived", 5: "no tests", 33: "no tests"}


def status(exit_code: int | None) -> str:
    if exit_code is None:
        return "not checked"
    return DETECTED.get(exit_code) or UNDETECTED.get(exit_code) or "suspicious"


def equivalent_names(text: str) -> set[str]:
    """Every mutant name written in backquotes in ``text``."""
    return set(re.findall(r"`(crlm_bench\.[^`\s]+__mutmut_\d+)`", text))


def main() -> int:
    metas = sorted(MUTANTS.rglob("*.py.meta"))
    if not metas:
        print(f"no results under {MUTANTS}: run `bash scripts/mutation.sh` first", file=sys.stderr)
        return 1
    equivalent = equivalent_names(EQUIVALENT.read_text()) if EQUIVALENT.exists() else set()
    known: set[str] = set()
    rows, survivors, stale, failed = [], [], [], False
    for meta in metas:
        module = meta.relative_to(MUTANTS).as_posix().removesuffix(".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        known |= set(codes)
        counts = Counter()
        for name, code in codes.items():
            s = status(code)
            if name in equivalent:
                counts["equivalent"] += 1
                if s in DETECTED.values():
                    stale.append(f"{name} ({s})")
                continue
            counts[s] += 1
            if s in UNDETECTED.values() or s == "suspicious":
                survivors.append(f"{name} ({s})")
        detected = sum(counts[s] for s in set(DETECTED.values()))
        checked = detected + sum(counts[s] for s in set(UNDETECTED.values())) + counts["suspicious"]
        score = detected / checked if checked else float("nan")
        failed |= checked > 0 and score < TARGET
        rows.append((module, len(codes), counts, detected, checked, score))

    print(f"{'module':<48} {'mutants':>7} {'equiv.':>6} {'detected':>9} {'score':>7}  other")
    for module, total, counts, detected, checked, score in rows:
        other = ", ".join(
            f"{counts[s]} {s}"
            for s in ("survived", "no tests", "timeout", "crashed", "suspicious", "not checked")
            if counts[s]
        )
        shown = f"{100 * score:6.1f}%" if checked else "    n/a"
        print(
            f"{module:<48} {total:>7} {counts['equivalent']:>6} {detected:>5}/{checked:<3} {shown}  {other}"
        )
    if survivors:
        print(
            f"\n{len(survivors)} undetected, not listed as equivalent (see each: .venv/bin/mutmut show NAME):"
        )
        print("\n".join(f"  {s}" for s in survivors))
    missing = sorted(equivalent - known)
    if missing:
        print(f"\nlisted in {EQUIVALENT.name} but no longer generated (renumbered? check the list):")
        print("\n".join(f"  {m}" for m in missing))
    if stale:
        print(f"\nlisted in {EQUIVALENT.name} but detected by the tests (remove them from the list):")
        print("\n".join(f"  {s}" for s in stale))
    failed |= bool(stale)
    verdict = "missed" if failed else "met"
    print(f"\ntarget: ≥ {100 * TARGET:.0f}% of the non-equivalent mutants per module: {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
