#!/usr/bin/env bash
# The main job, from nothing: create .venv, install crlm-bench, fetch real Fashion-MNIST where
# possible, and run the claims at the cpu budget (about 40 minutes on a 2-core CPU), writing the
# replication report to reports/fashion-mnist-cpu/ (override with REPORT=DIR).
# Cells are kept in the store ($CRLM_STORE, default ~/.cache/crlm-bench/store): a second run
# only re-evaluates. Extra arguments go to pytest (e.g. -k resnet8_narrow).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh test
source scripts/_fashion_mnist.sh
report=${REPORT:-reports/fashion-mnist-cpu}
set +e
.venv/bin/python -m pytest claims/ --budget cpu --report "$report" -p no:cacheprovider -rN "$@"
status=$?
set -e
# pytest exits 1 when a claim does not replicate: that is a result, not a failure of the job
if [ "$status" -le 1 ] && [ -f "$report/report.md" ]; then
    echo "replication report: $report/report.md"
    exit 0
fi
exit "$status"
