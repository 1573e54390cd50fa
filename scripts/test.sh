#!/usr/bin/env bash
# The test command, from nothing: create .venv, install crlm-bench with its test extra, fetch the
# real Fashion-MNIST from Debian where possible, run the tests and (once, untimed) the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh test
fmnist=/usr/share/datasets/fashion-mnist
if [ ! -d "$fmnist" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's dataset-fashion-mnist (real Fashion-MNIST, offline data for the CPU budget)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
        || echo "warning: could not install dataset-fashion-mnist; tests that need it will be skipped" >&2
fi
exec .venv/bin/python -m pytest tests benchmarks --benchmark-disable "$@"
