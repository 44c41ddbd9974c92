# Herald's own processes (provider simulator, API, worker) on this machine, for the scripts that
# need a whole running system: `make run`, the dashboards check, the k6 load tests. Sourced, not run.
#
# The caller has started the backing services and loaded their settings:
#   scripts/services.sh start && eval "$(scripts/services.sh env)"
# and then:
#   stack_build                       release binaries of the API, the worker and the simulator
#   stack_isolate NAME                (optional) a database, topic and consumer group of its own
#   stack_start [LOG_DIR]             migrate, create topics, ensure the tenant, start the three
#                                     processes and wait until the worker holds partitions; logs go
#                                     to LOG_DIR/<process>.log, or to this terminal without LOG_DIR
#   stack_start_api_replica LOG_DIR NAME PORT [VAR=VALUE...]
#                                     (optional) a second API process with settings of its own
#   stack_stop                        API and worker first (they drain), then the simulator
#
# Ports come from the usual settings, with these defaults: HERALD_SERVER__PORT (8080),
# HERALD_SERVER__METRICS_PORT (9465, the API's /metrics), HERALD_WORKER__METRICS_PORT (9464),
# HERALD_SIM_LISTEN (127.0.0.1:9090). After stack_start, STACK_API_URL, STACK_API_METRICS_URL,
# STACK_WORKER_URL, STACK_SIMULATOR_URL and STACK_API_KEY (tenant "dev", or
# HERALD_API_KEY when set) describe the running system. Every process runs in a session of its own
# (setsid), so a terminal's Ctrl-C reaches only the calling script, which stops them in order. With
# STACK_PID_DIR set, each process is recorded there as NAME.pid (scripts/lib/pids.sh), for `make
# stop` and for a later `make run` to name.

source "$(dirname "${BASH_SOURCE[0]}")/pids.sh"

STACK_HERALD_PIDS=()
STACK_SIMULATOR_PIDS=()
# HERALD_BIN_DIR: prebuilt binaries to run instead of building this tree's (a release directory,
# an unpacked image); stack_build then builds nothing.
STACK_BIN_DIR="${HERALD_BIN_DIR:-target/release}"
STACK_API_BIN="$STACK_BIN_DIR/herald-api"

stack_log() { printf '[stack] %s\n' "$*" >&2; }

stack_build() {
  if [ -n "${HERALD_BIN_DIR:-}" ]; then
    stack_log "using the binaries in $HERALD_BIN_DIR (HERALD_BIN_DIR), building nothing"
    return 0
  fi
  cargo build --release --bin herald-api --bin herald-worker --bin herald-provider-sim
}

# A database, topic and consumer group named after NAME and this moment, so that nothing of an
# earlier run (an outbox backlog, old records, committed offsets) is counted or competes.
stack_isolate() {
  local name=$1 run_id
  run_id="$(date +%s)$$"
  psql "$HERALD_DATABASE__URL" -qc "CREATE DATABASE herald_${name}_${run_id}"
  export HERALD_DATABASE__URL="${HERALD_DATABASE__URL%/*}/herald_${name}_${run_id}"
  export HERALD_KAFKA__TOPIC="${name}-${run_id}"
  export HERALD_WORKER__GROUP_ID="${name}-workers-${run_id}"
}

stack_wait_http() {
  local url=$1 pattern=${2:-} seconds=${3:-30}
  local attempt
  for attempt in $(seq 1 $((seconds * 10))); do
    if [ -z "$pattern" ]; then
      curl -fsS "$url" >/dev/null 2>&1 && return 0
    else
      curl -fsS "$url" 2>/dev/null | grep -q "$pattern" && return 0
    fi
    sleep 0.1
  done
  stack_log "no answer from $url${pattern:+ matching $pattern} within ${seconds}s"
  return 1
}

# stack_spawn LOG_DIR NAME COMMAND...: starts COMMAND in a session of its own, as a child of this
# shell (so that `wait` works), and leaves its pid in STACK_SPAWNED_PID (and STACK_PID_DIR/NAME.pid).
stack_spawn() {
  local log_dir=$1 name=$2
  shift 2
  if [ -n "$log_dir" ]; then
    setsid "$@" > "$log_dir/$name.log" 2>&1 &
  else
    setsid "$@" &
  fi
  STACK_SPAWNED_PID=$!
  if [ -n "${STACK_PID_DIR:-}" ]; then pid_file_write "$STACK_PID_DIR/$name.pid" "$STACK_SPAWNED_PID"; fi
}

stack_start() {
  local log_dir=${1:-}
  [ -z "$log_dir" ] || mkdir -p "$log_dir"
  local api_port="${HERALD_SERVER__PORT:-8080}"
  local api_metrics_port="${HERALD_SERVER__METRICS_PORT:-9465}"
  local worker_port="${HERALD_WORKER__METRICS_PORT:-9464}"
  local simulator_address="${HERALD_SIM_LISTEN:-127.0.0.1:9090}"
  export HERALD_SERVER__PORT="$api_port" HERALD_SERVER__METRICS_PORT="$api_metrics_port"
  export HERALD_WORKER__METRICS_PORT="$worker_port"
  export HERALD_SIM_LISTEN="$simulator_address"
  # The simulator's SMTP sink, where email fails over to while SendGrid's circuit is open.
  export HERALD_SIM_SMTP_LISTEN="${HERALD_SIM_SMTP_LISTEN:-127.0.0.1:2525}"
  export HERALD_SMTP_URL="${HERALD_SMTP_URL:-smtp://$HERALD_SIM_SMTP_LISTEN}"
  # The simulator stands in for every provider, answering in 20 ms unless told otherwise; recipients'
  # Slack, Discord and webhook URLs point at it too, on 127.0.0.1, which only a local run allows.
  export HERALD_SIM_SENDGRID_LATENCY_MS="${HERALD_SIM_SENDGRID_LATENCY_MS:-20}"
  export HERALD_SIM_TWILIO_LATENCY_MS="${HERALD_SIM_TWILIO_LATENCY_MS:-20}"
  export HERALD_SENDGRID_BASE_URL="${HERALD_SENDGRID_BASE_URL:-http://$simulator_address}"
  export HERALD_TWILIO_BASE_URL="${HERALD_TWILIO_BASE_URL:-http://$simulator_address}"
  export HERALD_TELEGRAM_BASE_URL="${HERALD_TELEGRAM_BASE_URL:-http://$simulator_address/telegram}"
  export HERALD_OUTBOUND__ALLOW_PRIVATE_NETWORKS="${HERALD_OUTBOUND__ALLOW_PRIVATE_NETWORKS:-true}"
  # Emails carry one-click unsubscribe links to this API, signed with a key made for this run
  # (a key is a secret: never one in the repository).
  export HERALD_UNSUBSCRIBE__BASE_URL="${HERALD_UNSUBSCRIBE__BASE_URL:-http://127.0.0.1:$api_port}"
  export HERALD_UNSUBSCRIBE__SIGNING_KEY="${HERALD_UNSUBSCRIBE__SIGNING_KEY:-$(head -c 48 /dev/urandom | base64 -w0)}"

  $STACK_API_BIN migrate >/dev/null
  $STACK_API_BIN create-topics >/dev/null
  STACK_API_KEY="$($STACK_API_BIN ensure-tenant --name dev)"
  STACK_API_URL="http://127.0.0.1:$api_port"
  # The API's /metrics (and profiles): a port of its own, never the public one.
  STACK_API_METRICS_URL="http://127.0.0.1:$api_metrics_port"
  STACK_WORKER_URL="http://127.0.0.1:$worker_port"
  STACK_SIMULATOR_URL="http://$simulator_address"

  stack_spawn "$log_dir" simulator "$STACK_BIN_DIR/herald-provider-sim"
  STACK_SIMULATOR_PIDS+=("$STACK_SPAWNED_PID")
  stack_wait_http "$STACK_SIMULATOR_URL/_sim/stats" || return 1
  stack_spawn "$log_dir" api "$STACK_API_BIN" serve
  STACK_HERALD_PIDS+=("$STACK_SPAWNED_PID")
  stack_spawn "$log_dir" worker "$STACK_BIN_DIR/herald-worker"
  STACK_HERALD_PIDS+=("$STACK_SPAWNED_PID")
  stack_wait_http "$STACK_API_URL/healthz" || return 1
  # The worker is ready once the group has given it partitions (a session timeout at most).
  stack_wait_http "$STACK_WORKER_URL/readyz" '"assigned_partitions":[1-9]' 60 || return 1
}

# stack_start_api_replica LOG_DIR NAME PORT [VAR=VALUE...]: one more API process of the running
# system (after stack_start) on PORT, with the given settings over the stack's; its log is
# LOG_DIR/NAME.log, and stack_stop stops it with the others. Its metrics are on any free port
# (nothing scrapes a replica).
stack_start_api_replica() {
  local log_dir=$1 name=$2 port=$3
  shift 3
  stack_spawn "$log_dir" "$name" env HERALD_SERVER__METRICS_PORT=0 "$@" HERALD_SERVER__PORT="$port" \
    "$STACK_API_BIN" serve
  STACK_HERALD_PIDS+=("$STACK_SPAWNED_PID")
  stack_wait_http "http://127.0.0.1:$port/healthz"
}

# stack_stop_and_wait SECONDS PID...: pids_stop (scripts/lib/pids.sh), then reaps them.
stack_stop_and_wait() {
  local pid
  pids_stop "$@"
  shift
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}

# How long the API and the worker may take to stop: the worker drains its lanes within its drain
# timeout, then waits at most as long again for calls in flight; the rest is margin.
stack_drain_seconds() {
  local drain_ms="${HERALD_WORKER__DRAIN_TIMEOUT_MS:-30000}"
  echo $(((drain_ms * 2) / 1000 + 15))
}

stack_stop() {
  if [ ${#STACK_HERALD_PIDS[@]} -gt 0 ]; then
    stack_log "stopping the API and the worker (they drain first)"
    stack_stop_and_wait "$(stack_drain_seconds)" "${STACK_HERALD_PIDS[@]}"
  fi
  if [ ${#STACK_SIMULATOR_PIDS[@]} -gt 0 ]; then
    stack_stop_and_wait 10 "${STACK_SIMULATOR_PIDS[@]}"
  fi
  STACK_HERALD_PIDS=()
  STACK_SIMULATOR_PIDS=()
}

# stack_hurry: a second request to stop: a second SIGTERM ends the API and the worker at once,
# without draining (herald-telemetry's shutdown_signal).
stack_hurry() {
  local pid
  for pid in "${STACK_HERALD_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
}

# --- Prometheus -----------------------------------------------------------------------------------
# A Prometheus (Debian's `prometheus`) scraping the API (scrape job herald-api) and the worker
# (herald-worker) with Herald's recording and alert rules loaded, for `make run` and the dashboards
# check. Its configuration is made in one place, stack_prometheus_config. After stack_start:
#   stack_prometheus_install              install Debian's prometheus when it is missing
#   stack_prometheus_start DIR [PORT] [INTERVAL]
#                                         writes DIR/prometheus.yml, keeps its data in DIR/data and
#                                         its log in DIR/prometheus.log, listens on 127.0.0.1:PORT
#                                         (default HERALD_PROMETHEUS_PORT or 9091), scrapes and
#                                         evaluates every INTERVAL (default 5s); sets
#                                         STACK_PROMETHEUS_URL and waits until it is ready
#   stack_prometheus_stop                 stops the Prometheus stack_prometheus_start started

STACK_PROMETHEUS_PIDS=()
STACK_PROMETHEUS_RULES=(ops/prometheus/herald-recording-rules.yml ops/prometheus/herald-alerts.yml)
# The namespace label of the targets: the rules aggregate and the dashboards filter by namespace, as
# on Kubernetes, where the ServiceMonitors' targets carry the Herald release's namespace.
STACK_PROMETHEUS_NAMESPACE=local

stack_prometheus_install() {
  scripts/tools.sh install-prometheus
}

# stack_prometheus_config API_ADDRESS WORKER_ADDRESS INTERVAL: the configuration, on stdout (the
# addresses of the API's and the worker's metrics ports).
stack_prometheus_config() {
  local api=$1 worker=$2 interval=$3 rule
  cat <<CONFIG
# Made by stack_prometheus_config (scripts/lib/stack.sh); not edited by hand.
global:
  scrape_interval: $interval
  scrape_timeout: $interval
  evaluation_interval: $interval
rule_files:
CONFIG
  for rule in "${STACK_PROMETHEUS_RULES[@]}"; do echo "  - $PWD/$rule"; done
  cat <<CONFIG
scrape_configs:
  - job_name: herald-api
    static_configs:
      - targets: ['$api']
        labels: {namespace: $STACK_PROMETHEUS_NAMESPACE}
  - job_name: herald-worker
    static_configs:
      - targets: ['$worker']
        labels: {namespace: $STACK_PROMETHEUS_NAMESPACE}
CONFIG
}

stack_prometheus_start() {
  local dir=$1 port=${2:-${HERALD_PROMETHEUS_PORT:-9091}} interval=${3:-5s}
  mkdir -p "$dir/data"
  stack_prometheus_config "${STACK_API_METRICS_URL#http://}" "${STACK_WORKER_URL#http://}" "$interval" > "$dir/prometheus.yml"
  STACK_PROMETHEUS_URL="http://127.0.0.1:$port"
  stack_spawn "$dir" prometheus prometheus \
    --config.file="$dir/prometheus.yml" \
    --storage.tsdb.path="$dir/data" \
    --storage.tsdb.retention.time=2d \
    --web.listen-address="127.0.0.1:$port"
  STACK_PROMETHEUS_PIDS+=("$STACK_SPAWNED_PID")
  stack_wait_http "$STACK_PROMETHEUS_URL/-/ready" "" 30 || {
    tail -n 20 "$dir/prometheus.log" >&2
    return 1
  }
}

stack_prometheus_stop() {
  if [ ${#STACK_PROMETHEUS_PIDS[@]} -gt 0 ]; then
    stack_stop_and_wait 10 "${STACK_PROMETHEUS_PIDS[@]}"
  fi
  STACK_PROMETHEUS_PIDS=()
}
