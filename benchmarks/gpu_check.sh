#!/usr/bin/env bash
# The prepared GPU check, one short run on a lent accelerator (≈ 10 minutes in all):
#   1. one timed epoch set of ResNet18 training on CIFAR-sized synthetic data, batch 512,
#      projected to the paper's 200 epochs (target ≤ 600 s on one H200);
#   2. a paper-scale ResNet18 profile timed on 500 points and projected to 5000 (target ≤ 600 s).
# Writes both JSON lines to ${OUT:-.}/gpu_check.jsonl. Usage: bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
out=${OUT:-.}/gpu_check.jsonl
: > "$out"
timeout 300 "$py" benchmarks/gpu_check.py >> "$out" || echo '{"check": "training", "failed": true}' >> "$out"
timeout 300 "$py" benchmarks/gpu_profile_check.py --points 500 >> "$out" || echo '{"check": "profile", "failed": true}' >> "$out"
cat "$out"
