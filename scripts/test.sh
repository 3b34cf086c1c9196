#!/usr/bin/env bash
# The whole test suite: install, make sure the broker answers, run pytest (unit and
# integration tests; the integration tests use the real broker). Extra arguments go
# to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
cd "$root"
exec "$root/.venv/bin/python" -m pytest "$@"
