#!/usr/bin/env bash
# The main job on the example: install, make sure the broker answers, apply
# examples/shop, then show that a second plan has nothing left to do.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
topology="$root/.venv/bin/topology"
"$topology" validate "$root/examples/shop"
"$topology" apply "$root/examples/shop" --auto-approve
echo
echo "Second plan (expect no changes):"
"$topology" plan "$root/examples/shop" --detailed-exitcode
