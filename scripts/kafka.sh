#!/usr/bin/env bash
# Apache Kafka on this machine: the one way Herald's scripts and tests install, configure and run a
# KRaft broker (each node is broker and controller at once, as a small cluster's nodes are).
#
#   scripts/kafka.sh install         resolve the pinned Kafka (scripts/kafka/pom.xml) from Maven
#                                    Central into $HERALD_CACHE_DIR (default ~/.cache/herald), once
#   scripts/kafka.sh home            print the directory of its jars
#   scripts/kafka.sh version         print its version
#   scripts/kafka.sh cluster-id      print a new cluster id
#   scripts/kafka.sh format --dir DIR --node-id N --port PORT --controller-port PORT
#                           --voters ID@HOST:PORT,... [--cluster-id ID] [--log-file FILE]
#                                    write DIR/server.properties and DIR/log4j2.properties for one
#                                    node of the cluster the voters name, and format its storage
#                                    (DIR/data) unless it is formatted already (then only the
#                                    settings are written again); every node of a cluster needs
#                                    the same --cluster-id (default: a new one, or the stored one);
#                                    the log goes to FILE (default DIR/kafka.log)
#                           [--listener NAME:PROTOCOL:PORT]... [--properties FILE]...
#                           [--scram 'MECHANISM=[name=USER,password=PASSWORD]']...
#                                    more client listeners beside PLAINTEXT (SSL, SASL_SSL,
#                                    SASL_PLAINTEXT, on 127.0.0.1), FILE's settings appended (their
#                                    keystores, truststores and SASL settings: they win over the
#                                    ones above), and SCRAM users written into the storage when it
#                                    is formatted (Kafka's storage tool --add-scram); the tests'
#                                    TLS brokers (herald-testing)
#   scripts/kafka.sh run --dir DIR   run that node in the foreground (exec: the pid is the broker's)
#   scripts/kafka.sh tool NAME ARGS  one of Kafka's operator tools: topics, consumer-groups,
#                                    producer-perf-test, ... (kafka-NAME.sh of the distribution), e.g.
#                                    scripts/kafka.sh tool consumer-groups --bootstrap-server
#                                    127.0.0.1:59092 --describe --group herald-workers
#
# Durability is the chart's (helm/herald/values.yaml kafkaTopic): with three or more voters,
# replication factor 3 and min.insync.replicas 2; a single node can only have 1 and 1. Unclean
# leader election stays off, so an acknowledged record is never given up for availability.
# HERALD_KAFKA_HEAP sets the JVM heap (default "-Xms1g -Xmx1g", what kafka-server-start.sh gives).
set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "$0")" && pwd)"
POM="$SCRIPTS_DIR/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
CACHE_DIR="${HERALD_CACHE_DIR:-$HOME/.cache/herald}"
KAFKA_HOME="$CACHE_DIR/kafka-$KAFKA_VERSION"

log() { printf '[kafka] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install() {
  # The stamp names the pom it was resolved from: a changed pom resolves again.
  local stamp="$KAFKA_HOME/.resolved-from" wanted
  wanted="$(sha256sum "$POM" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then return 0; fi
  local packages=()
  command -v java >/dev/null || packages+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || packages+=(maven)
  if [ ${#packages[@]} -gt 0 ]; then
    log "installing ${packages[*]} from Debian"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${packages[@]}" >/dev/null
  fi
  log "resolving Apache Kafka $KAFKA_VERSION from Maven Central into $KAFKA_HOME"
  rm -rf "$KAFKA_HOME.partial"
  # -C: a download whose checksum does not match fails the install.
  mkdir -p "$CACHE_DIR"
  if ! mvn -q -B -C -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_HOME.partial/libs" > "$CACHE_DIR/kafka-install.log" 2>&1; then
    cat "$CACHE_DIR/kafka-install.log" >&2
    log "resolving Apache Kafka $KAFKA_VERSION failed (above)"
    exit 1
  fi
  rm -rf "$KAFKA_HOME"
  mv "$KAFKA_HOME.partial" "$KAFKA_HOME"
  echo "$wanted" > "$stamp"
}

cluster_id() {
  # Kafka's form: 16 random bytes, URL-safe base64 without padding; like Kafka's own Uuid, never
  # starting with "-" (the storage tool would read such an id as an option: 1 in 64 formats failed).
  python3 -c '
import base64, os
while True:
    cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not cluster_id.startswith("-"):
        break
print(cluster_id)'
}

format() {
  local dir="" id="" node="" port="" controller_port="" voters="" log_file=""
  local listeners=() property_files=() scram_arguments=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --listener) listeners+=("$2") ;;
      --properties) property_files+=("$2") ;;
      --scram) scram_arguments+=(--add-scram "$2") ;;
      --dir) dir=$2 ;;
      --cluster-id) id=$2 ;;
      --node-id) node=$2 ;;
      --port) port=$2 ;;
      --controller-port) controller_port=$2 ;;
      --voters) voters=$2 ;;
      --log-file) log_file=$2 ;;
      *) log "format: unknown option $1"; exit 2 ;;
    esac
    shift 2
  done
  for required in dir node port controller_port voters; do
    [ -n "${!required}" ] || { log "format: --${required//_/-} is required"; exit 2; }
  done
  log_file="${log_file:-$dir/kafka.log}"
  local nodes replication min_insync
  nodes="$(tr ',' '\n' <<< "$voters" | grep -c .)"
  if [ "$nodes" -ge 3 ]; then replication=3; min_insync=2; else replication=1; min_insync=1; fi
  local client_listeners="PLAINTEXT://127.0.0.1:$port" protocol_map="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  local listener name protocol listener_port
  for listener in "${listeners[@]}"; do
    IFS=: read -r name protocol listener_port <<< "$listener"
    case "$protocol" in
      SSL|SASL_SSL|SASL_PLAINTEXT|PLAINTEXT) ;;
      *) log "format: --listener $listener: the protocol must be SSL, SASL_SSL, SASL_PLAINTEXT or PLAINTEXT"; exit 2 ;;
    esac
    [[ "$name" =~ ^[A-Z_]+$ && "$listener_port" =~ ^[0-9]+$ ]] \
      || { log "format: --listener $listener is not NAME:PROTOCOL:PORT"; exit 2; }
    client_listeners+=",$name://127.0.0.1:$listener_port"
    protocol_map+=",$name:$protocol"
  done
  mkdir -p "$dir"
  cat > "$dir/server.properties" <<PROPERTIES
# Node $node of a local KRaft cluster (scripts/kafka.sh); $nodes voter(s): $voters
process.roles=broker,controller
node.id=$node
controller.quorum.voters=$voters
listeners=$client_listeners,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=$client_listeners
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocol_map
log.dirs=$dir/data

# Durability, as the chart's topics have it: every acknowledged record is on min.insync.replicas
# replicas (producers use acks=all), and no out-of-sync replica ever becomes leader.
default.replication.factor=$replication
min.insync.replicas=$min_insync
offsets.topic.replication.factor=$replication
transaction.state.log.replication.factor=$replication
transaction.state.log.min.isr=$min_insync
share.coordinator.state.topic.replication.factor=$replication
share.coordinator.state.topic.min.isr=$min_insync
unclean.leader.election.enable=false
# Topics come from "herald-api create-topics" (or the chart's KafkaTopic resources), never from a typo.
auto.create.topics.enable=false

# A local group forms at once; production brokers keep Kafka's 3 s default, which lets a rolling
# start's members join one rebalance instead of several.
group.initial.rebalance.delay.ms=0
PROPERTIES
  local property_file
  for property_file in "${property_files[@]}"; do
    printf '\n# From %s\n' "$property_file" >> "$dir/server.properties"
    cat "$property_file" >> "$dir/server.properties"
  done
  cat > "$dir/log4j2.properties" <<PROPERTIES
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $log_file
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
# The state change and request logs are Kafka's most talkative; warnings are enough locally.
logger.state.name = state.change.logger
logger.state.level = WARN
logger.controller.name = org.apache.kafka.controller
logger.controller.level = WARN
PROPERTIES
  if [ -f "$dir/data/meta.properties" ]; then return 0; fi
  [ -n "$id" ] || id="$(cluster_id)"
  # A short-lived JVM: C1 only starts faster.
  java -cp "$KAFKA_HOME/libs/*" -Djava.awt.headless=true -XX:TieredStopAtLevel=1 -Xmx256m -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    kafka.tools.StorageTool format --ignore-formatted -t "$id" -c "$dir/server.properties" \
    "${scram_arguments[@]}" >/dev/null
}

run() {
  [ "${1:-}" = --dir ] && [ -n "${2:-}" ] || { log "run: --dir DIR is required"; exit 2; }
  local dir=$2
  [ -f "$dir/server.properties" ] || { log "run: $dir is not formatted (scripts/kafka.sh format)"; exit 2; }
  # shellcheck disable=SC2086
  exec java -cp "$KAFKA_HOME/libs/*" -Djava.awt.headless=true ${HERALD_KAFKA_HEAP:--Xms1g -Xmx1g} \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" kafka.Kafka "$dir/server.properties"
}

# The classes behind the distribution's bin/kafka-NAME.sh scripts, for the tools Herald's operators use.
tool() {
  local name=${1:-} class
  shift || true
  case "$name" in
    topics) class=org.apache.kafka.tools.TopicCommand ;;
    consumer-groups) class=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    configs) class=kafka.admin.ConfigCommand ;;
    get-offsets) class=org.apache.kafka.tools.GetOffsetShell ;;
    metadata-quorum) class=org.apache.kafka.tools.MetadataQuorumCommand ;;
    broker-api-versions) class=org.apache.kafka.tools.BrokerApiVersionsCommand ;;
    producer-perf-test) class=org.apache.kafka.tools.ProducerPerformance ;;
    consumer-perf-test) class=org.apache.kafka.tools.ConsumerPerformance ;;
    log-dirs) class=org.apache.kafka.tools.LogDirsCommand ;;
    *) log "tool: unknown tool '$name' (topics, consumer-groups, configs, get-offsets, log-dirs, metadata-quorum, broker-api-versions, producer-perf-test, consumer-perf-test)"; exit 2 ;;
  esac
  exec java -cp "$KAFKA_HOME/libs/*" -Djava.awt.headless=true -XX:TieredStopAtLevel=1 -Xmx256m \
    -Dlog4j2.level=WARN "$class" "$@"
}

case "${1:-}" in
  install) install ;;
  home) echo "$KAFKA_HOME" ;;
  version) echo "$KAFKA_VERSION" ;;
  cluster-id) cluster_id ;;
  format) shift; install; format "$@" ;;
  run) shift; run "$@" ;;
  tool) shift; install; tool "$@" ;;
  *) echo "usage: $0 install|home|version|cluster-id|format|run|tool" >&2; exit 2 ;;
esac
