#!/usr/bin/env bash
# The main job, from nothing: create .venv, install crlm-bench, fetch real Fashion-MNIST where
# possible, and run the claims at the cpu budget (about 40 minutes on a 2-core CPU with an
# empty store, up to 1.5x that when the host is slow), then print where the replication report went.
#
# The report goes to crlm-report/ (untracked: a plain run changes no tracked file) or to
# --report DIR. The committed report is refreshed only when asked for:
#     bash scripts/main.sh --report reports/fashion-mnist-cpu
# Every argument goes to pytest (e.g. -k resnet8_narrow, --report DIR); relative paths are relative
# to the repository. Cells are kept in the store ($CRLM_STORE, default ~/.cache/crlm-bench/store):
# a second run only re-evaluates the claims.
#
# Exit status:
#   0    the run completed and every selected claim held (report written)
#   1    the run completed and some claim did not replicate: a result, not a failure of the job
#        (report written; it says which)
#   2-5  pytest's own status, the run did not complete: 2 interrupted or a collection error,
#        3 internal error, 4 usage error (also: REPORT=DIR set, which is no longer read),
#        5 no test selected; any report written is partial
#   6    pytest finished but wrote no report: no verdict was formed (every test failed first)
#
# The functions below can be sourced without running anything (the tests source them and replace
# run_claims); executed, the script runs main.
set -euo pipefail

DEFAULT_REPORT=crlm-report

# The claims at the cpu budget, the arguments given to pytest.
run_claims() {
    .venv/bin/python -m pytest claims/ --budget cpu -p no:cacheprovider -rN "$@"
}

# The report directory that the arguments name (the last --report DIR or --report=DIR), else empty.
report_arg() {
    local arg previous="" report=""
    for arg in "$@"; do
        if [ "$previous" = --report ]; then
            report=$arg
        fi
        case $arg in
            --report=*) report=${arg#--report=} ;;
        esac
        previous=$arg
    done
    printf '%s' "$report"
}

# When FILE was last modified (to the nanosecond), or "none".
modified() {
    stat -c %y "$1" 2>/dev/null || echo none
}

# Run the claims with the arguments (adding --report DEFAULT_REPORT unless one is given), say
# where the report went, and return the exit status documented at the top.
replicate() {
    local report args=("$@") before after status
    report=$(report_arg "$@")
    if [ -z "$report" ]; then
        report=$DEFAULT_REPORT
        args=(--report "$report" "${args[@]}")
    fi
    case $report in
        /*) ;;
        *) report=$PWD/$report ;;
    esac
    before=$(modified "$report/report.md")
    set +e
    run_claims "${args[@]}"
    status=$?
    set -e
    after=$(modified "$report/report.md")
    if [ "$status" -ge 2 ]; then
        echo "main.sh: the run did not complete (pytest exit $status: 2 interrupted or a collection" \
            "error, 3 internal error, 4 usage error, 5 no test selected); see the output above" >&2
        if [ "$after" != none ] && [ "$after" != "$before" ]; then
            echo "main.sh: the report written to $report/report.md is partial" >&2
        fi
        return "$status"
    fi
    if [ "$after" = none ] || [ "$after" = "$before" ]; then
        echo "main.sh: pytest exited $status but wrote no report to $report: no verdict was formed" \
            "(every selected test failed before one; see the failures above)" >&2
        return 6
    fi
    echo "replication report: $report/report.md"
    if [ "$status" -eq 1 ]; then
        echo "some claims did not replicate: a result, not a failure of the job (the report says which)"
    fi
    return "$status"
}

main() {
    cd "$(dirname "${BASH_SOURCE[0]}")/.."
    if [ -n "${REPORT:-}" ]; then
        echo "main.sh: REPORT=DIR is no longer read; type: bash scripts/main.sh --report $REPORT" >&2
        return 4
    fi
    source scripts/_venv.sh test
    source scripts/_fashion_mnist.sh
    replicate "$@"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
