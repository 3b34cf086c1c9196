#!/usr/bin/env bash
# Makes sure a RabbitMQ management API answers at $TOPOLOGY_URL (default
# http://127.0.0.1:15672): enables rabbitmq_management on a running local node, starts
# a stopped one, or installs rabbitmq-server from the distribution's packages.
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

wait_for_api() {
  for _ in $(seq 1 120); do
    if answers; then return 0; fi
    sleep 1
  done
  echo "ensure-broker: the management API at $url did not answer within 120 s" >&2
  return 1
}

if answers; then exit 0; fi

case "$url" in
  http://127.0.0.1:*|http://localhost:*) ;;
  *) echo "ensure-broker: $url does not answer and is not local; start that broker yourself" >&2; exit 1 ;;
esac

if ! command -v rabbitmq-server >/dev/null 2>&1 && [ ! -x /usr/sbin/rabbitmq-server ]; then
  echo "ensure-broker: installing rabbitmq-server from the distribution's packages" >&2
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q rabbitmq-server >/dev/null
fi
export PATH="$PATH:/usr/sbin:/usr/lib/rabbitmq/bin"

if $sudo rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
  echo "ensure-broker: enabling rabbitmq_management on the running node" >&2
  $sudo rabbitmq-plugins enable rabbitmq_management >/dev/null
else
  echo "ensure-broker: starting RabbitMQ with rabbitmq_management" >&2
  $sudo rabbitmq-plugins --offline enable rabbitmq_management >/dev/null
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $sudo systemctl start rabbitmq-server
  else
    $sudo rabbitmq-server -detached
  fi
fi
wait_for_api
