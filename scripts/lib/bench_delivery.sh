# The pieces of the benchmark scenarios that run the whole delivery path (delivery, scaling,
# failover, rebalance): a database, topic and group of the scenario's own, the simulator, APIs and
# workers, the generator, the drain and the report. Sourced by scripts/bench.sh, after its `log`,
# `fail`, `wait_http`, `run_oha`, `stop_started`, `started_pids` and `BENCH_BIN`.
#
# Ports: the simulator 19090 (SMTP 19025), APIs 18082 + n (metrics 18182 + n), workers' metrics 19464 + n.

DELIVERY_SIMULATOR=http://127.0.0.1:19090

# delivery_setup NAME [VARIABLE=VALUE...]: a database, topic and consumer group of the scenario's
# own (named after NAME and this second, so nothing of an earlier run is counted or competes),
# migrated, with the topics made, the bench tenant (API_KEY) and 100,000 recipients with a phone
# (bench-recipient-N). DELIVERY_ENV is what every process of the scenario gets, the VARIABLEs last.
delivery_setup() {
  local name=$1 run_id database
  shift
  run_id="$(date +%s)"
  database="herald_bench_${name//-/_}_$run_id"
  DELIVERY_DATABASE_URL="${HERALD_DATABASE__URL%/*}/$database"
  psql "$HERALD_DATABASE__URL" -qc "CREATE DATABASE $database"
  DELIVERY_ENV=(
    HERALD_DATABASE__URL="$DELIVERY_DATABASE_URL"
    HERALD_KAFKA__TOPIC="bench-$name-$run_id"
    HERALD_KAFKA__BROKERS="${BENCH_KAFKA_BROKERS:-$HERALD_KAFKA__BROKERS}"
    HERALD_WORKER__GROUP_ID="bench-$name-workers-$run_id"
    HERALD_SENDGRID_BASE_URL=$DELIVERY_SIMULATOR
    HERALD_TWILIO_BASE_URL=$DELIVERY_SIMULATOR
    HERALD_TELEGRAM_BASE_URL=$DELIVERY_SIMULATOR/telegram
    HERALD_SMTP_URL=smtp://127.0.0.1:19025
    HERALD_OUTBOUND__ALLOW_PRIVATE_NETWORKS=true
    RUST_LOG="${BENCH_RUST_LOG:-warn}"
    "$@"
  )
  env "${DELIVERY_ENV[@]}" "$BENCH_BIN/herald-api" migrate >/dev/null
  env "${DELIVERY_ENV[@]}" "$BENCH_BIN/herald-api" create-topics >/dev/null
  API_KEY="$(env "${DELIVERY_ENV[@]}" HERALD_API_KEY="${HERALD_BENCH_API_KEY:-hk_bench_local_key}" \
    "$BENCH_BIN/herald-api" ensure-tenant --name bench)"
  psql "$DELIVERY_DATABASE_URL" -qc "INSERT INTO users (tenant_id, id, phone)
    SELECT t.id, 'bench-recipient-' || i, '+1415' || lpad(i::text, 7, '0') FROM tenants t, generate_series(0, 99999) i
    WHERE t.name = 'bench' ON CONFLICT DO NOTHING"
}

# delivery_partitions: the partitions the workers of the scenario read (both priorities' topics).
delivery_partitions() {
  echo $(( 2 * ${HERALD_KAFKA__PARTITIONS:-8} ))
}

# delivery_body FILE NOTIFICATIONS RECIPIENTS [BODIES]: a batch request of NOTIFICATIONS SMS
# notifications to RECIPIENTS recipients each. With BODIES, FILE holds that many such requests, one
# per line (oha -Z takes them in turn), to consecutive recipients of the 100,000: their keys reach
# every partition, as real traffic's do.
delivery_body() {
  python3 - "$@" <<'PY'
import json, sys
out, batch_size, recipients = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
bodies = int(sys.argv[4]) if len(sys.argv) > 4 else None
def body(first):
    items = [{"user_ids": [f"bench-recipient-{(first + i * recipients + r) % 100000}" for r in range(recipients)],
              "channels": ["sms"], "content": {"body": "Pressure {{value}}"}, "data": {"value": 7}}
             for i in range(batch_size)]
    return json.dumps({"notifications": items})
with open(out, "w") as file:
    if bodies is None:
        file.write(body(0))
    else:
        for index in range(bodies):
            file.write(body(index * batch_size * recipients) + "\n")
PY
}

# delivery_simulator [PROVIDER_BEHAVIOUR_JSON]: the provider simulator, SendGrid and Twilio answering
# in 20 ms, or as the JSON (its /_sim/config knobs) says for both; sets SIMULATOR_PID.
delivery_simulator() {
  HERALD_SIM_LISTEN=127.0.0.1:19090 HERALD_SIM_SMTP_LISTEN=127.0.0.1:19025 HERALD_SIM_TWILIO_LATENCY_MS=20 \
    HERALD_SIM_SENDGRID_LATENCY_MS=20 "$BENCH_BIN/herald-provider-sim" > "$OUT_DIR/simulator.log" 2>&1 &
  SIMULATOR_PID=$!
  started_pids+=("$SIMULATOR_PID")
  wait_http "$DELIVERY_SIMULATOR/_sim/stats"
  if [ -n "${1:-}" ]; then
    local provider
    for provider in sendgrid twilio; do
      curl -fsS -X PUT -H 'Content-Type: application/json' -d "$1" "$DELIVERY_SIMULATOR/_sim/config/$provider" \
        >/dev/null || fail "the simulator refused $1 for $provider"
    done
  fi
}

# delivery_api N: the scenario's API number N (port 18082 + N, metrics 18182 + N) in the
# background; sets SPAWNED_PID.
delivery_api() {
  local port=$((18082 + $1))
  env "${DELIVERY_ENV[@]}" HERALD_SERVER__PORT="$port" HERALD_SERVER__METRICS_PORT=$((port + 100)) \
    "$BENCH_BIN/herald-api" serve \
    >> "$OUT_DIR/api-$1.log" 2>&1 &
  SPAWNED_PID=$!
  started_pids+=("$SPAWNED_PID")
  wait_http "http://127.0.0.1:$port/healthz"
}

# delivery_worker N: the scenario's worker number N (metrics on 19464 + N); sets SPAWNED_PID.
delivery_worker() {
  local port=$((19464 + $1))
  env "${DELIVERY_ENV[@]}" HERALD_WORKER__METRICS_PORT="$port" "$BENCH_BIN/herald-worker" \
    >> "$OUT_DIR/worker-$1.log" 2>&1 &
  SPAWNED_PID=$!
  started_pids+=("$SPAWNED_PID")
  wait_http "http://127.0.0.1:$port/healthz"
}

# delivery_one_api_one_worker: the simulator, API 0 and worker 0, the worker holding every partition;
# sets DELIVERY_API_PID and DELIVERY_WORKER_PID.
delivery_one_api_one_worker() {
  delivery_simulator
  delivery_api 0
  DELIVERY_API_PID=$SPAWNED_PID
  delivery_worker 0
  DELIVERY_WORKER_PID=$SPAWNED_PID
  wait_partitions_held "$(delivery_partitions)" 0
}

# wait_partitions_held TOTAL N...: until the workers numbered N... hold TOTAL partitions between them.
wait_partitions_held() {
  local total=$1 held worker
  shift
  for _ in $(seq 1 600); do
    held=0
    for worker in "$@"; do
      held=$(( held + $(curl -fsS "http://127.0.0.1:$((19464 + worker))/readyz" 2>/dev/null |
        python3 -c "import json, sys; print(json.load(sys.stdin).get('assigned_partitions', 0))" 2>/dev/null || echo 0) ))
    done
    [ "$held" -eq "$total" ] && return 0
    sleep 0.1
  done
  fail "the workers $* hold $held of $total partitions after 60 s"
}

# stop_pids PID...: SIGTERM, then wait (the workers drain and leave their group).
stop_pids() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}

# accepted_notifications OHA_JSON...: notifications the generators' 202s accepted (per request:
# the batch body's notifications).
accepted_notifications() {
  python3 - "$@" <<'PY'
import json, sys
total = 0
for name in sys.argv[1:]:
    data = json.load(open(name))
    total += data.get("statusCodeDistribution", {}).get("202", 0)
print(total)
PY
}

# delivery_warm_up NAME URL REQUESTS_PER_SECOND BODY DELIVERIES_PER_REQUEST: BENCH_WARMUP_SECONDS
# (default 5) of the scenario's own requests, at most BENCH_WARMUP_RATE (default 2000) deliveries/s,
# drained, before anything is measured. A JVM broker compiles its hot paths in its first seconds
# under load, and pools open: none of that is the steady state a figure should show. Not at a
# saturating rate: a backlog left behind (dead rows for autovacuum, overflow in delivery_queue)
# would weigh on the measured run instead.
delivery_warm_up() {
  local name=$1 url=$2 rate=$3 body=$4 per_request=$5 seconds=${BENCH_WARMUP_SECONDS:-5} started_at
  [ "$seconds" -gt 0 ] || return 0
  local ceiling=$(( ${BENCH_WARMUP_RATE:-2000} / per_request ))
  [ "$ceiling" -ge 1 ] || ceiling=1
  [ "$rate" -le "$ceiling" ] || rate=$ceiling
  started_at="$(psql "$DELIVERY_DATABASE_URL" -qtAc "SELECT now()")"
  run_oha "$name-warm-up" "$url" "$rate" "$body" yes "${seconds}s"
  delivery_drain "$started_at" $(( $(accepted_notifications "$OUT_DIR/oha-$name-warm-up.json") * per_request )) \
    "$name (warm-up)"
}

# delivery_drain STARTED_AT EXPECTED NAME: until EXPECTED deliveries of notifications accepted since
# STARTED_AT are sent; fails the scenario NAME after BENCH_DRAIN_SECONDS.
delivery_drain() {
  local started_at=$1 expected=$2 name=$3 sent=0
  log "$name: waiting for $expected deliveries"
  for _ in $(seq 1 "$DRAIN_SECONDS"); do
    sent=$(psql "$DELIVERY_DATABASE_URL" -qtAc "SELECT coalesce(sum(deliveries_sent), 0) FROM notification_states WHERE updated_at >= '$started_at'")
    [ "$sent" -ge "$expected" ] && return 0
    sleep 1
  done
  fail "$name: only $sent of $expected deliveries sent after ${DRAIN_SECONDS}s"
}

# delivery_report STARTED_AT ACCEPTED OFFERED_PER_SECOND: the JSON report of the deliveries of
# notifications accepted since STARTED_AT: how many, per second, accept-to-delivery percentiles.
delivery_report() {
  local started_at=$1 accepted=$2 offered=$3
  psql "$DELIVERY_DATABASE_URL" -qtAc "
    WITH run AS (
      SELECT n.created_at AS accepted_at, d.updated_at AS sent_at
      FROM deliveries d JOIN notifications n ON n.id = d.notification_id
      WHERE n.created_at >= '$started_at' AND d.status = 'sent')
    SELECT json_build_object(
      'deliveries_sent', count(*),
      'deliveries_accepted', $accepted,
      'offered_deliveries_per_second', $offered,
      'window_seconds', round(extract(epoch FROM max(sent_at) - min(accepted_at))::numeric, 2),
      'deliveries_per_second', round((count(*) / nullif(extract(epoch FROM max(sent_at) - min(accepted_at)), 0))::numeric, 1),
      'accept_to_delivery_ms', json_build_object(
        'p50', round((percentile_cont(0.50) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - accepted_at)) * 1000)::numeric, 1),
        'p95', round((percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - accepted_at)) * 1000)::numeric, 1),
        'p99', round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - accepted_at)) * 1000)::numeric, 1),
        'max', round((max(extract(epoch FROM sent_at - accepted_at)) * 1000)::numeric, 1)))
    FROM run"
}

# check_simulator_ledger RESULT NAME: the simulator received every delivery RESULT counts as
# accepted, and none twice (it tracks every reference); fails the scenario NAME otherwise.
check_simulator_ledger() {
  curl -fsS "$DELIVERY_SIMULATOR/_sim/stats" > "$OUT_DIR/simulator-stats.json"
  python3 - "$1" "$OUT_DIR/simulator-stats.json" <<'PY' || fail "$2: duplicates or missing messages at the provider"
import json, sys
result = json.load(open(sys.argv[1]))
twilio = json.load(open(sys.argv[2]))["twilio"]
print(f"simulator: messages {twilio['messages']}, duplicates {twilio['duplicates']}")
if twilio["untracked_references"] != 0:
    sys.exit("the simulator's reference table overflowed: duplicates cannot be proven absent")
if twilio["duplicates"] != 0 or twilio["messages"] < result["deliveries_accepted"]:
    sys.exit(1)
PY
}
