#!/usr/bin/env bash
# Mutation testing, on demand (not in CI): create .venv with the test and mutation extras, mutate the
# math core and the claim statistics with mutmut (configured under [tool.mutmut] in pyproject.toml),
# run each mutant against the selected tests that call its function, one child process per core
# (one torch thread each) with hypothesis' "mutation" profile (8 derandomised examples, conftest.py),
# and print the score per module (mutation/score.py; equivalent mutants in mutation/equivalent.md).
#   bash scripts/mutation.sh            every module
#   bash scripts/mutation.sh claims     crlm_bench/replication/claims only, against tests/replication
#   bash scripts/mutation.sh geometry   crlm_bench/geometry only, against tests/geometry
# Each run starts from a fresh mutants/ directory. Exit status 1 when a module run is under the
# target. Details: mutation/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
group="${1:-all}"
case "$group" in
    all) mutants=() tests="" ;;
    claims) mutants=("crlm_bench.replication.claims.*") tests="tests/replication/" ;;
    geometry) mutants=("crlm_bench.geometry.*") tests="tests/geometry/" ;;
    *) echo "usage: bash scripts/mutation.sh [all|claims|geometry]" >&2; exit 2 ;;
esac
source scripts/_venv.sh mutation
export CRLM_MUTATION_TESTS="$tests"  # read by mutation/guard.py
export MPLBACKEND=Agg CUDA_VISIBLE_DEVICES="" PYTHONHASHSEED=0 HYPOTHESIS_PROFILE=mutation
# one thread per child: mutmut forks after torch is imported, and the children share the cores
# (nproc --all: plain nproc honours the OMP_NUM_THREADS=1 set here and would answer 1)
children=$(nproc --all)
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
rm -rf mutants
start=$(date +%s)
.venv/bin/mutmut run --max-children "$children" "${mutants[@]}"
echo "mutmut run ($group, $children children): $(( $(date +%s) - start )) s"
exec .venv/bin/python mutation/score.py
