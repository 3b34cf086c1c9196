#!/usr/bin/env bash
# RabbitMQ brokers of several versions side by side on this machine, for the tests, CI and the
# benchmark. The brokers, their ports and feature flags are listed in scripts/brokers.tsv.
#
#   scripts/brokers.sh start NAME...|all   start each broker (building it first if needed); ends by
#                                          printing TOPOLOGY_URL=… and TOPOLOGY_AMQP_URL=… for the
#                                          last one, so eval "$(scripts/brokers.sh start 4.3)"
#                                          points the tool and the suite at it
#   scripts/brokers.sh stop NAME...|all [--purge]   stop the nodes (--purge: delete their data too)
#   scripts/brokers.sh status              each broker: running or not, version, URLs
#   scripts/brokers.sh env NAME            the two lines of `start`, without starting anything
#   scripts/brokers.sh ctl NAME|URL ARGS…  rabbitmqctl against that node (a management URL picks
#                                          the broker serving it; the machine's own broker, on
#                                          port 15672, is the default node)
#   scripts/brokers.sh names [--ci]        the brokers' names (--ci: those CI runs the tests on)
#
# A broker whose source is "host" is a private node of the machine's own rabbitmq-server. Any
# other source names a Debian suite: a minimal chroot of that suite (debootstrap) with its
# rabbitmq-server package, under $TOPOLOGY_BROKERS_DIR (default /var/lib/topology-brokers), built
# once (about a minute and 500 MB each). Every node has its own node name, ports, epmd port and
# data directory, so all of them run beside the machine's broker. Needs root. Idempotent.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TABLE="$here/brokers.tsv"
BASE="${TOPOLOGY_BROKERS_DIR:-/var/lib/topology-brokers}"
PLUGINS="rabbitmq_management,rabbitmq_shovel,rabbitmq_shovel_management,rabbitmq_federation,rabbitmq_federation_management,rabbitmq_consistent_hash_exchange"
DEFAULT_HTTP_PORT=15672

say() { echo "brokers: $*" >&2; }
fail() { say "$*"; exit 1; }

names() {
  awk -F'\t' -v ci="${1:-}" '!/^#/ && $1 != "name" && NF >= 9 && (ci == "" || $9 == "yes") { print $1 }' "$TABLE"
}

# row NAME: sets name source series amqp http dist epmd store ci from the table
row() {
  local line
  line="$(awk -F'\t' -v n="$1" '!/^#/ && $1 == n' "$TABLE")"
  [ -n "$line" ] || fail "unknown broker '$1' (known: $(names | tr '\n' ' '))"
  IFS=$'\t' read -r name source series amqp http dist epmd store ci <<<"$line"
}

# by_url URL: the name of the broker whose management port URL names ("" for the machine's own)
by_url() {
  local port
  port="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).port or "")' "$1")"
  [ "$port" = "$DEFAULT_HTTP_PORT" ] && { echo ""; return; }
  awk -F'\t' -v p="$port" '!/^#/ && $5 == p { print $1 }' "$TABLE"
}

root_of() { [ "$source" = host ] && echo "" || echo "$BASE/$source"; }
node_of() { echo "topo-${name//[^A-Za-z0-9]/-}@localhost"; }
data_of() { [ "$source" = host ] && echo "/var/lib/rabbitmq/topology-brokers/$name" || echo "/var/lib/rabbitmq/topology-$name"; }

mirror() {
  if [ -n "${TOPOLOGY_DEBIAN_MIRROR:-}" ]; then echo "$TOPOLOGY_DEBIAN_MIRROR"; return; fi
  # the machine's own Debian archive: the first URIs of a deb822 source that is not the security one
  local found=""
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    found="$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' /etc/apt/sources.list.d/*.sources)"
  fi
  if [ -z "$found" ] && [ -f /etc/apt/sources.list ]; then
    found="$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:/) { print $i; exit } }' /etc/apt/sources.list)"
  fi
  [ -n "$found" ] || fail "cannot tell which Debian archive this machine uses; set TOPOLOGY_DEBIAN_MIRROR"
  echo "$found"
}

# ready_root ROOT: what a node in ROOT needs from the machine: /proc, and localhost in /etc/hosts
# (a minimal root of some suites has no /etc/hosts, and the node names are NAME@localhost)
ready_root() {
  local root="$1"
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
  grep -qs '^127\.0\.0\.1[[:space:]].*localhost' "$root/etc/hosts" || echo '127.0.0.1 localhost' >>"$root/etc/hosts"
}

# build_root SUITE: a chroot of that Debian suite with rabbitmq-server installed (once)
build_root() {
  local suite="$1" root="$BASE/$1"
  [ -f "$root/.topology-ready" ] && return 0
  mkdir -p "$BASE"
  exec 9>"$BASE/.$suite.lock"
  flock 9
  if [ -f "$root/.topology-ready" ]; then flock -u 9; return 0; fi
  if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
  fi
  if [ -d "$root" ]; then  # a build that did not finish
    if mountpoint -q "$root/proc"; then umount "$root/proc"; fi
    rm -rf --one-file-system "$root"
  fi
  local archive
  archive="$(mirror)"
  say "building a Debian $suite root with rabbitmq-server in $root (about a minute)"
  debootstrap --variant=minbase "$suite" "$root" "$archive" >"$BASE/$suite.build.log" 2>&1 \
    || fail "debootstrap of $suite failed; see $BASE/$suite.build.log"
  printf '#!/bin/sh\n# no service starts inside this root: scripts/brokers.sh starts the nodes\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod +x "$root/usr/sbin/policy-rc.d"
  # a suite whose archive snapshot is older than its Release file's validity (unstable) still installs
  echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99topology"
  ready_root "$root"
  chroot "$root" sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends rabbitmq-server' \
    >>"$BASE/$suite.build.log" 2>&1 || fail "installing rabbitmq-server in the $suite root failed; see $BASE/$suite.build.log"
  touch "$root/.topology-ready"
  flock -u 9
}

# node_env: the environment of the current row's node (one VAR=value a line)
node_env() {
  local root data plugins=""
  root="$(root_of)"
  data="$(data_of)"
  if [ -n "$root" ]; then
    plugins="$(cd "$root" && ls -d usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins 2>/dev/null | head -n 1)"
    [ -n "$plugins" ] || fail "no rabbitmq-server plugins folder in $root"
    plugins="/$plugins"
  fi
  cat <<EOF
HOME=/var/lib/rabbitmq
PATH=/usr/lib/rabbitmq/bin:/usr/sbin:/usr/bin:/sbin:/bin
LANG=C.UTF-8
RABBITMQ_NODENAME=$(node_of)
RABBITMQ_NODE_PORT=$amqp
RABBITMQ_DIST_PORT=$dist
ERL_EPMD_PORT=$epmd
RABBITMQ_CONFIG_FILE=$data/rabbitmq.conf
RABBITMQ_ENABLED_PLUGINS_FILE=$data/enabled_plugins
RABBITMQ_MNESIA_BASE=$data/mnesia
RABBITMQ_LOG_BASE=$data/log
RABBITMQ_PID_FILE=$data/pid
EOF
  [ -z "$plugins" ] || echo "RABBITMQ_PLUGINS_DIR=$plugins"
}

# as_node CMD…: run CMD as the rabbitmq user with the current row's node environment
as_node() {
  local root
  root="$(root_of)"
  local -a vars
  mapfile -t vars < <(node_env)
  if [ -z "$root" ]; then
    runuser -u rabbitmq -- env -i "${vars[@]}" "$@"
  else
    ready_root "$root"
    chroot --userspec=rabbitmq:rabbitmq "$root" env -i "${vars[@]}" "$@"
  fi
}

ctl() { as_node rabbitmqctl "$@"; }
vm_up() { as_node rabbitmq-diagnostics -q ping >/dev/null 2>&1; }

api_answers() {
  python3 - "$http" <<'PY'
import base64, json, sys, urllib.request
request = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/api/overview",
                                 headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()})
try:
    print(json.loads(urllib.request.urlopen(request, timeout=5).read())["rabbitmq_version"])
except Exception:
    sys.exit(1)
PY
}

wait_for_api() {
  local version
  for _ in $(seq 1 120); do
    if version="$(api_answers)"; then echo "$version"; return 0; fi
    sleep 1
  done
  fail "$name: the management API on port $http did not answer within 120 s (log: $(root_of)$(data_of)/log)"
}

env_lines() {
  echo "TOPOLOGY_URL=http://127.0.0.1:$http"
  echo "TOPOLOGY_AMQP_URL=amqp://127.0.0.1:$amqp/"
}

start_one() {
  row "$1"
  [ "$(id -u)" = 0 ] || fail "starting $name needs root (chroot, runuser)"
  local root data
  if [ "$source" = host ]; then
    [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || fail "rabbitmq-server is not installed (scripts/ensure-broker.sh installs it)"
  else
    build_root "$source"
  fi
  root="$(root_of)"
  data="$(data_of)"
  if ! vm_up; then
    as_node mkdir -p "$data/mnesia" "$data/log"
    as_node sh -c "cat > '$data/rabbitmq.conf'" <<EOF
listeners.tcp.default = 127.0.0.1:$amqp
management.tcp.port = $http
management.tcp.ip = 127.0.0.1
collect_statistics_interval = 1000
EOF
    as_node sh -c "echo '[${PLUGINS}].' > '$data/enabled_plugins'"
    say "starting $name ($(node_of), AMQP $amqp, management $http)"
    if [ -z "$root" ]; then
      setsid runuser -u rabbitmq -- env -i $(node_env) rabbitmq-server >/dev/null 2>&1 </dev/null &
    else
      ready_root "$root"
      setsid chroot --userspec=rabbitmq:rabbitmq "$root" env -i $(node_env) rabbitmq-server >/dev/null 2>&1 </dev/null &
    fi
    disown || true
  fi
  ctl wait --timeout 120 "$data/pid" >/dev/null 2>&1 || true
  ctl start_app >/dev/null 2>&1 || true
  ctl await_startup --timeout 120 >/dev/null || fail "$name did not start; its log is in $root$data/log"
  local khepri=mnesia
  local flags
  flags="$(ctl list_feature_flags name state 2>/dev/null || true)"
  if grep -Eq '^khepri_db[[:space:]]+enabled' <<<"$flags"; then khepri=khepri; fi
  [ "$khepri" = "$store" ] || fail "$name: the node runs on $khepri, but scripts/brokers.tsv says $store"
  local version
  version="$(wait_for_api)"
  case "$version" in
    "$series"|"$series".*) ;;
    *) fail "$name: the broker runs RabbitMQ $version, but scripts/brokers.tsv says its source ships $series" ;;
  esac
  say "$name: RabbitMQ $version up ($store)"
}

stop_one() {
  row "$1"
  local root data
  root="$(root_of)"
  data="$(data_of)"
  if [ -n "$root" ] && [ ! -f "$root/.topology-ready" ]; then return 0; fi
  if vm_up; then
    ctl stop "$data/pid" >/dev/null 2>&1 || true
    say "$name stopped"
  fi
  if [ "${purge:-}" = 1 ]; then as_node rm -rf "$data"; fi
}

expand() {
  local item
  for item in "$@"; do
    if [ "$item" = all ]; then names; else echo "$item"; fi
  done
}

command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
  start)
    [ $# -gt 0 ] || fail "usage: scripts/brokers.sh start NAME...|all"
    mapfile -t chosen < <(expand "$@")
    for item in "${chosen[@]}"; do start_one "$item"; done
    if [ "${#chosen[@]}" -gt 1 ]; then
      for item in "${chosen[@]}"; do row "$item"; echo "# $name: $(env_lines | tr '\n' ' ')"; done
    fi
    row "${chosen[-1]}"
    env_lines
    ;;
  stop)
    purge=0
    args=()
    for item in "$@"; do
      if [ "$item" = --purge ]; then purge=1; else args+=("$item"); fi
    done
    [ "${#args[@]}" -gt 0 ] || args=(all)
    mapfile -t chosen < <(expand "${args[@]}")
    for item in "${chosen[@]}"; do stop_one "$item"; done
    ;;
  status)
    for item in $(names); do
      row "$item"
      if version="$(api_answers)"; then state="RabbitMQ $version"; else state="not running"; fi
      printf '%-12s %-20s %s\n' "$name" "$state" "$(env_lines | tr '\n' ' ')"
    done
    ;;
  env)
    row "${1:?usage: scripts/brokers.sh env NAME}"
    env_lines
    ;;
  ctl)
    target="${1:?usage: scripts/brokers.sh ctl NAME|URL ARGS...}"
    shift
    case "$target" in
      http://*|https://*)
        found="$(by_url "$target")"
        if [ -z "$found" ]; then
          port="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).port or "")' "$target")"
          [ "$port" = "$DEFAULT_HTTP_PORT" ] || fail "no broker of scripts/brokers.tsv serves $target"
          PATH="$PATH:/usr/sbin:/usr/lib/rabbitmq/bin" exec rabbitmqctl "$@"
        fi
        target="$found"
        ;;
    esac
    row "$target"
    ctl "$@"
    ;;
  names)
    names "$([ "${1:-}" = --ci ] && echo yes || echo "")"
    ;;
  *)
    fail "usage: scripts/brokers.sh start|stop|status|env|ctl|names (see the top of this script)"
    ;;
esac
