#!/usr/bin/env bash
# A local RabbitMQ cluster for the high-availability tests, next to the default node:
# nodes topo1@localhost .. topoN@localhost (N=3 by default) on loopback, with their own
# ports (AMQP 5681.., management 15681.., distribution 25681..) and data directories.
#
#   scripts/cluster.sh start            start the nodes (if needed) and join them into one cluster
#   scripts/cluster.sh stop             stop every node and delete their data
#   scripts/cluster.sh status           the cluster's nodes, as the first node sees them
#   scripts/cluster.sh stop-app I       stop the RabbitMQ application on node I (the node stays up)
#   scripts/cluster.sh start-app I      start it again
#
# Uses the rabbitmq-server installed from the distribution's packages (scripts/ensure-broker.sh
# installs it). Needs root, or the rabbitmq user.
set -euo pipefail

NODES="${TOPOLOGY_CLUSTER_NODES:-3}"
BASE="${TOPOLOGY_CLUSTER_DIR:-/var/lib/rabbitmq/topology-cluster}"
SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server
CTL=/usr/lib/rabbitmq/bin/rabbitmqctl
DIAGNOSTICS=/usr/lib/rabbitmq/bin/rabbitmq-diagnostics
case "$BASE" in
  */topology-cluster) ;;
  *) echo "cluster: TOPOLOGY_CLUSTER_DIR must end in /topology-cluster (it is deleted by 'stop')" >&2; exit 2 ;;
esac

node() { echo "topo$1@localhost"; }

as_rabbitmq() {
  if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then
    runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq "$@"
  else
    env HOME="${HOME:-/var/lib/rabbitmq}" "$@"
  fi
}

ctl() { local i=$1; shift; as_rabbitmq "$CTL" -n "$(node "$i")" "$@"; }

vm_up() { as_rabbitmq "$DIAGNOSTICS" -n "$(node "$1")" ping >/dev/null 2>&1; }
app_running() { ctl "$1" eval 'rabbit:is_running().' 2>/dev/null | grep -q true; }

start_node() {
  local i=$1 dir="$BASE/topo$1"
  if vm_up "$i"; then
    app_running "$i" || ctl "$i" start_app >/dev/null
    ctl "$i" await_startup --timeout 120 >/dev/null
    return
  fi
  as_rabbitmq mkdir -p "$dir/mnesia" "$dir/log"
  as_rabbitmq sh -c "cat > '$dir/rabbitmq.conf'" <<EOF
listeners.tcp.default = 127.0.0.1:$((5680 + i))
management.tcp.port = $((15680 + i))
management.tcp.ip = 127.0.0.1
cluster_name = topology-test-cluster
collect_statistics_interval = 1000
EOF
  as_rabbitmq sh -c "echo '[rabbitmq_management].' > '$dir/enabled_plugins'"
  as_rabbitmq env \
    RABBITMQ_NODENAME="$(node "$i")" \
    RABBITMQ_NODE_PORT=$((5680 + i)) \
    RABBITMQ_DIST_PORT=$((25680 + i)) \
    RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
    RABBITMQ_MNESIA_BASE="$dir/mnesia" \
    RABBITMQ_LOG_BASE="$dir/log" \
    RABBITMQ_PID_FILE="$dir/pid" \
    "$SERVER" -detached
  ctl "$i" wait --timeout 120 "$dir/pid" >/dev/null
  ctl "$i" await_startup --timeout 120 >/dev/null
}

joined() { ctl "$1" cluster_status --formatter json 2>/dev/null | grep -q "\"$(node 1)\""; }

case "${1:-}" in
  start)
    [ -x "$SERVER" ] || { echo "cluster: rabbitmq-server is not installed (scripts/ensure-broker.sh installs it)" >&2; exit 1; }
    for i in $(seq 1 "$NODES"); do start_node "$i"; done
    for i in $(seq 2 "$NODES"); do
      if ! joined "$i"; then
        ctl "$i" stop_app >/dev/null
        ctl "$i" reset >/dev/null
        ctl "$i" join_cluster "$(node 1)" >/dev/null
        ctl "$i" start_app >/dev/null
      fi
    done
    ctl 1 await_startup --timeout 120 >/dev/null
    echo "cluster: $NODES node(s) up; management on http://127.0.0.1:15681"
    ;;
  stop)
    # every node that has a data directory, whatever TOPOLOGY_CLUSTER_NODES says now
    for dir in "$BASE"/topo*; do
      [ -d "$dir" ] || continue
      i="${dir##*/topo}"
      if vm_up "$i"; then ctl "$i" stop "$dir/pid" >/dev/null 2>&1 || true; fi  # waits for the VM to exit
    done
    for dir in "$BASE"/topo*; do
      if [ -d "$dir" ]; then as_rabbitmq rm -rf "$dir"; fi
    done
    echo "cluster: stopped"
    ;;
  status)
    ctl 1 cluster_status
    ;;
  stop-app)
    ctl "${2:?node number}" stop_app >/dev/null
    ;;
  start-app)
    ctl "${2:?node number}" start_app >/dev/null
    ctl "$2" await_startup --timeout 120 >/dev/null
    ;;
  *)
    echo "usage: scripts/cluster.sh start|stop|status|stop-app I|start-app I" >&2
    exit 2
    ;;
esac
