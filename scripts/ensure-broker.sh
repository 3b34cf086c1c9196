#!/usr/bin/env bash
# Makes sure a RabbitMQ management API answers at $TOPOLOGY_URL (default
# http://127.0.0.1:15672): enables rabbitmq_management on a running local node, starts
# a stopped one, or installs rabbitmq-server from the distribution's packages; and enables
# the shovel and federation plugins (the tool manages their objects).
set -euo pipefail
url="${TOPOLOGY_URL:-http://127.0.0.1:15672}"
python="${PYTHON:-python3}"
sudo=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then sudo="sudo"; fi

answers() {
  TOPOLOGY_URL="$url" "$python" - <<'PY'
import base64, os, sys, urllib.request
url = os.environ["TOPOLOGY_URL"].rstrip("/") + "/api/overview"
user, password = os.environ.get("TOPOLOGY_USER", "guest"), os.environ.get("TOPOLOGY_PASSWORD", "guest")
request = urllib.request.Request(url, headers={"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()})
try:
    urllib.request.urlopen(request, timeout=5).read()
except Exception:
    sys.exit(1)
PY
}

# wait_until CHECK SECONDS WHAT: run CHECK every second until it succeeds, or fail naming WHAT.
wait_until() {
  for _ in $(seq 1 "$2"); do
    if "$1"; then return 0; fi
    sleep 1
  done
  echo "ensure-broker: $3 did not answer within $2 s" >&2
  return 1
}

wait_for_api() {
  wait_until answers 120 "the management API at $url"
}

# The plugins the tool manages objects of (shovels, federation), and the consistent-hash exchange
# type that a real-world definitions file of the tests uses: enabled on a local node when their
# management endpoints (or exchange type) do not answer.
PLUGINS="rabbitmq_management rabbitmq_shovel rabbitmq_shovel_management rabbitmq_federation rabbitmq_federation_management rabbitmq_consistent_hash_exchange"

has_plugins() {
  TOPOLOGY_URL="$url" "$python" - <<'PY'
import base64, os, sys, urllib.request
base = os.environ["TOPOLOGY_URL"].rstrip("/")
user, password = os.environ.get("TOPOLOGY_USER", "guest"), os.environ.get("TOPOLOGY_PASSWORD", "guest")
auth = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
import json
try:
    for path in ("/api/shovels", "/api/federation-links"):
        urllib.request.urlopen(urllib.request.Request(base + path, headers=auth), timeout=5).read()
    overview = json.loads(urllib.request.urlopen(urllib.request.Request(base + "/api/overview", headers=auth), timeout=5).read())
    if "x-consistent-hash" not in {t.get("name") for t in overview.get("exchange_types", [])}:
        sys.exit(1)
except Exception:
    sys.exit(1)
PY
}

is_local() {
  case "$url" in
    http://127.0.0.1:*|http://localhost:*) return 0 ;;
    *) return 1 ;;
  esac
}

ensure_plugins() {
  if has_plugins; then return 0; fi
  if ! is_local; then
    echo "ensure-broker: $url lacks the shovel, federation or consistent-hash plugins; their tests will fail" >&2
    return 0
  fi
  echo "ensure-broker: enabling the shovel, federation and consistent-hash plugins on the running node" >&2
  # shellcheck disable=SC2086
  $sudo rabbitmq-plugins enable $PLUGINS >/dev/null
  wait_until has_plugins 30 "the shovel and federation endpoints (and the consistent-hash exchange)"
}

if answers; then
  export PATH="$PATH:/usr/sbin:/usr/lib/rabbitmq/bin"
  ensure_plugins
  exit 0
fi

if ! is_local; then
  echo "ensure-broker: $url does not answer and is not local; start that broker yourself" >&2
  exit 1
fi

if ! command -v rabbitmq-server >/dev/null 2>&1 && [ ! -x /usr/sbin/rabbitmq-server ]; then
  echo "ensure-broker: installing rabbitmq-server from the distribution's packages" >&2
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q rabbitmq-server >/dev/null
fi
export PATH="$PATH:/usr/sbin:/usr/lib/rabbitmq/bin"

if $sudo rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
  echo "ensure-broker: enabling the management, shovel and federation plugins on the running node" >&2
  # shellcheck disable=SC2086
  $sudo rabbitmq-plugins enable $PLUGINS >/dev/null
else
  echo "ensure-broker: starting RabbitMQ with the management, shovel and federation plugins" >&2
  # shellcheck disable=SC2086
  $sudo rabbitmq-plugins --offline enable $PLUGINS >/dev/null
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $sudo systemctl start rabbitmq-server
  else
    $sudo rabbitmq-server -detached
  fi
fi
wait_for_api
ensure_plugins
