#!/usr/bin/env bash
# The test command, from nothing: create .venv, install crlm-bench with its test extra, fetch the
# real Fashion-MNIST from Debian where possible, run the tests and (once, untimed) the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh test
source scripts/_fashion_mnist.sh
export MPLBACKEND=Agg
exec .venv/bin/python -m pytest tests benchmarks --benchmark-disable -p no:cacheprovider "$@"
