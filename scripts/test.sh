#!/usr/bin/env bash
# The test command, from nothing: create .venv, install crlm-bench with its test extra, fetch the
# real Fashion-MNIST from Debian where possible, check format, lint and the layer contracts (ruff,
# import-linter; configured in pyproject.toml), then run the tests and (once, untimed) the benchmarks
# on one xdist worker per core, at most four (each with its share of the torch threads), the ten
# slowest listed at the end. Arguments go to pytest after these: -n 0 runs in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh test
source scripts/_fashion_mnist.sh
export MPLBACKEND=Agg
echo "ruff format --check, ruff check, lint-imports"
.venv/bin/ruff format --check --quiet . || { echo "ruff format would change the files above: run .venv/bin/ruff format ." >&2; exit 1; }
.venv/bin/ruff check --quiet .
.venv/bin/lint-imports --no-cache >/dev/null || { .venv/bin/lint-imports --no-cache >&2; exit 1; }
exec .venv/bin/python -m pytest tests benchmarks --benchmark-disable -p no:cacheprovider \
    -n auto --maxprocesses 4 --dist worksteal --durations=10 "$@"
