#!/usr/bin/env bash
# The test suite: install, make sure the broker answers, run pytest against the real broker.
#
#   scripts/test.sh              what CI runs: the whole suite on the machine's broker (or
#                                TOPOLOGY_URL's), then the broker-marked tests on every broker that
#                                scripts/brokers.tsv marks for CI (started by scripts/brokers.sh)
#   scripts/test.sh ARGS...      pytest ARGS on one broker (TOPOLOGY_URL, default the machine's):
#                                ./scripts/test.sh tests/unit -q
#   TOPOLOGY_MATRIX="4.3" scripts/test.sh   the same as the first form, with those brokers only
#                                ("" or "none": the machine's broker alone)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
cd "$root"
python="$root/.venv/bin/python"

if [ $# -gt 0 ]; then
  exec "$python" -m pytest "$@"
fi

matrix="${TOPOLOGY_MATRIX-$("$root/scripts/brokers.sh" names --ci | tr '\n' ' ')}"
[ "$matrix" = none ] && matrix=""
results=()
failed=0

run() {  # run LABEL COMMAND...: one pass, its result remembered
  local label="$1" started=$SECONDS code=0
  shift
  echo "=== $label" >&2
  "$@" || code=$?
  if [ "$code" -eq 0 ]; then
    results+=("$label: passed in $((SECONDS - started)) s")
  else
    results+=("$label: FAILED (pytest exit $code) in $((SECONDS - started)) s")
    failed=1
  fi
}

run "the whole suite on the default broker" "$python" -m pytest -p no:cacheprovider
for name in $matrix; do
  # a fresh node each run: what an earlier run left (or broke) in its data does not carry over
  "$root/scripts/brokers.sh" stop "$name" --purge >/dev/null 2>&1 || true
  if ! lines="$("$root/scripts/brokers.sh" start "$name")"; then
    results+=("RabbitMQ $name: FAILED (the broker did not start)")
    failed=1
    continue
  fi
  # shellcheck disable=SC2086  # lines: TOPOLOGY_URL=… TOPOLOGY_AMQP_URL=…, no spaces inside
  run "broker-marked tests on RabbitMQ $name" env $lines "$python" -m pytest -p no:cacheprovider -m "broker and not cluster and not packaging"
  "$root/scripts/brokers.sh" stop "$name" >/dev/null 2>&1 || true
done

echo "=== summary" >&2
printf '  %s\n' "${results[@]}" >&2
passes=$(printf '%s\n' "${results[@]}" | grep -c ': passed' || true)
echo "matrix: $passes passed, $(( ${#results[@]} - passes )) failed"
exit "$failed"
