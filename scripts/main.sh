#!/usr/bin/env bash
# The main job, from nothing: create .venv, install crlm-bench, run it.
# For now: the estimators against ground truth on synthetic manifolds (a table).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh ""
exec .venv/bin/crlm-bench demo "$@"
