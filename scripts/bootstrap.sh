#!/usr/bin/env bash
# Installs the tool into ./.venv (with the test extras) and makes sure a local RabbitMQ
# with the management plugin answers. Sourced by scripts/example.sh and scripts/test.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "bootstrap: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ ! -x "$root/.venv/bin/python" ]; then
  "$python" -m venv "$root/.venv" 2>/dev/null || {
    echo "bootstrap: cannot create a virtual environment; on Debian/Ubuntu: apt-get install python3-venv" >&2
    exit 1
  }
fi
"$root/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root[test]"
"$root/scripts/ensure-broker.sh"
