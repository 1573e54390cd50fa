# Sourced by the README's commands: create .venv from nothing and install crlm-bench into it.
# Idempotent: a second run only re-checks the install (seconds).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
extras="${1:-}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
stamp=".venv/.crlm-install${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    # torch and torchvision first, pinned (constraints.txt), then the package itself.
    .venv/bin/python -m pip install --quiet -c constraints.txt torch torchvision
    .venv/bin/python -m pip install --quiet -c constraints.txt -e ".${extras:+[$extras]}"
    touch "$stamp"
fi
