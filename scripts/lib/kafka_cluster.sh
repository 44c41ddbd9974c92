# A local Apache Kafka cluster of several KRaft nodes (each broker and controller) for the scripts
# that kill brokers on purpose (the bench's failover scenario). Sourced; every node runs through
# scripts/kafka.sh, as the single broker of scripts/services.sh and the tests' brokers do.
#
#   kafka_cluster_start NODES        format and start NODES nodes in $HERALD_RUN_DIR/kafka-cluster,
#                                    node N listening on 19190 + N (controller 19290 + N); sets
#                                    KAFKA_CLUSTER_BROKERS; returns once every node is a broker
#   kafka_cluster_kill N             kill -9 node N
#   kafka_cluster_restart N          start node N again on its storage (returns at once)
#   kafka_cluster_wait_brokers COUNT until the cluster's metadata lists COUNT brokers
#   kafka_cluster_leader TOPIC P     print the node leading partition P of TOPIC
#   kafka_cluster_stop               stop every node (SIGTERM, SIGKILL after 30 s) and remove its data

KAFKA_CLUSTER_DIR="${HERALD_RUN_DIR:-/tmp/herald-run}/kafka-cluster"
KAFKA_CLUSTER_PIDS=()

kafka_cluster_log() { printf '[kafka-cluster] %s\n' "$*" >&2; }

kafka_cluster_start() {
  local nodes=$1 node voters="" cluster_id
  rm -rf "$KAFKA_CLUSTER_DIR"
  mkdir -p "$KAFKA_CLUSTER_DIR"
  for node in $(seq 1 "$nodes"); do voters+="${voters:+,}$node@127.0.0.1:$((19290 + node))"; done
  cluster_id="$(scripts/kafka.sh cluster-id)"
  KAFKA_CLUSTER_BROKERS=""
  for node in $(seq 1 "$nodes"); do
    scripts/kafka.sh format --dir "$KAFKA_CLUSTER_DIR/node-$node" --cluster-id "$cluster_id" --node-id "$node" \
      --port $((19190 + node)) --controller-port $((19290 + node)) --voters "$voters" || return 1
    KAFKA_CLUSTER_BROKERS+="${KAFKA_CLUSTER_BROKERS:+,}127.0.0.1:$((19190 + node))"
  done
  for node in $(seq 1 "$nodes"); do kafka_cluster_restart "$node"; done
  kafka_cluster_wait_brokers "$nodes"
  kafka_cluster_log "$nodes nodes up: $KAFKA_CLUSTER_BROKERS (data $KAFKA_CLUSTER_DIR)"
}

kafka_cluster_restart() {
  local node=$1
  HERALD_KAFKA_HEAP="${HERALD_KAFKA_CLUSTER_HEAP:--Xms256m -Xmx768m}" \
    setsid scripts/kafka.sh run --dir "$KAFKA_CLUSTER_DIR/node-$node" > "$KAFKA_CLUSTER_DIR/node-$node.out" 2>&1 &
  KAFKA_CLUSTER_PIDS[$node]=$!
}

kafka_cluster_kill() {
  local node=$1
  kill -9 "${KAFKA_CLUSTER_PIDS[$node]}" 2>/dev/null || true
  wait "${KAFKA_CLUSTER_PIDS[$node]}" 2>/dev/null || true
  unset "KAFKA_CLUSTER_PIDS[$node]"
}

kafka_cluster_wait_brokers() {
  local count=$1 listed=0
  for _ in $(seq 1 60); do
    listed=$(scripts/kafka.sh tool broker-api-versions --bootstrap-server "$KAFKA_CLUSTER_BROKERS" 2>/dev/null |
      grep -c '^127\.0\.0\.1:' || true)
    [ "$listed" -ge "$count" ] && return 0
    sleep 1
  done
  kafka_cluster_log "only $listed of $count brokers after 60 s; see $KAFKA_CLUSTER_DIR/node-*/kafka.log"
  return 1
}

kafka_cluster_leader() {
  local topic=$1 partition=$2
  scripts/kafka.sh tool topics --bootstrap-server "$KAFKA_CLUSTER_BROKERS" --describe --topic "$topic" 2>/dev/null |
    awk -v partition="$partition" '
      { for (i = 1; i < NF; i++) { if ($i == "Partition:") p = $(i + 1); if ($i == "Leader:") l = $(i + 1) } }
      p == partition && l != "" { print l; exit }'
}

kafka_cluster_stop() {
  local node pid
  for node in "${!KAFKA_CLUSTER_PIDS[@]}"; do kill -TERM "${KAFKA_CLUSTER_PIDS[$node]}" 2>/dev/null || true; done
  for node in "${!KAFKA_CLUSTER_PIDS[@]}"; do
    pid=${KAFKA_CLUSTER_PIDS[$node]}
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  KAFKA_CLUSTER_PIDS=()
  rm -rf "$KAFKA_CLUSTER_DIR"
}
