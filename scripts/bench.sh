#!/usr/bin/env bash
# `make bench`: ingest load benchmark. Starts the services and a release build of the API (or
# uses the API at HERALD_BENCH_URL), then drives it from a separate process (oha) over loopback at
# fixed arrival rates, beside a bare actix handler measured the same way in the same run.
# Prints throughput and P50/P95/P99 and writes bench-results/ingest.json.
#
# Then the end-to-end scenario: notifications accepted through the batch endpoint, delivered by one
# worker to the provider simulator (20 ms latency); reports deliveries/s and accept-to-delivery
# P50/P95/P99 in bench-results/delivery.json.
#
# Knobs (env): BENCH_DURATION (default 20s), BENCH_SINGLE_RATE (req/s, default 15000),
# BENCH_BATCH_RATE (req/s, default 600), BENCH_BATCH_SIZE (notifications per request, default 100),
# BENCH_CONNECTIONS (default 256), BENCH_DELIVERY_RATE (deliveries/s offered, default 20000),
# BENCH_SCENARIOS (default "ingest delivery").
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

DURATION="${BENCH_DURATION:-20s}"
SINGLE_RATE="${BENCH_SINGLE_RATE:-15000}"
BATCH_RATE="${BENCH_BATCH_RATE:-600}"
BATCH_SIZE="${BENCH_BATCH_SIZE:-100}"
CONNECTIONS="${BENCH_CONNECTIONS:-256}"
OUT_DIR=bench-results
mkdir -p "$OUT_DIR"

command -v oha >/dev/null || cargo install oha --version 1.16.0 --locked
started_services="$(mktemp)"
HERALD_STARTED_FILE="$started_services" scripts/services.sh start
eval "$(scripts/services.sh env)"
SCENARIOS="${BENCH_SCENARIOS:-ingest delivery}"
DELIVERY_RATE="${BENCH_DELIVERY_RATE:-20000}"
cargo build --release --bin herald-api --bin herald-bare-handler --bin herald-worker --bin herald-provider-sim
api=target/release/herald-api
$api migrate >/dev/null
$api create-topics >/dev/null
API_KEY="$(HERALD_API_KEY="${HERALD_BENCH_API_KEY:-hk_bench_local_key}" $api ensure-tenant --name bench)"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  scripts/services.sh stop $(cat "$started_services")
  rm -f "$started_services"
}
trap cleanup EXIT

wait_http() { for _ in $(seq 1 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }

if [ -n "${HERALD_BENCH_URL:-}" ]; then
  URL="$HERALD_BENCH_URL"
else
  URL="http://127.0.0.1:18080"
  HERALD_SERVER__PORT=18080 RUST_LOG=warn $api serve > "$OUT_DIR/api.log" 2>&1 &
  pids+=($!)
fi
target/release/herald-bare-handler 127.0.0.1:18081 &
pids+=($!)
wait_http "$URL/healthz"
wait_http "http://127.0.0.1:18081/"

python3 - "$OUT_DIR" "$BATCH_SIZE" <<'PY'
import json, sys
out, batch_size = sys.argv[1], int(sys.argv[2])
one = {"user_ids": ["bench-user"], "channels": ["sms"], "content": {"body": "Pressure {{value}} on {{machine}}"}, "data": {"value": 7, "machine": "press-4"}}
json.dump(one, open(f"{out}/single-body.json", "w"))
items = [dict(one, user_ids=[f"bench-user-{i}"]) for i in range(batch_size)]
json.dump({"notifications": items}, open(f"{out}/batch-body.json", "w"))
PY

stored() {
  psql "$HERALD_DATABASE__URL" -qtAc "SELECT count(*) FROM notifications n JOIN tenants t ON t.id = n.tenant_id WHERE t.name = 'bench'"
}

run_oha() { # name url rate body auth
  local name=$1 url=$2 rate=$3 body=$4 auth=$5
  local args=(-z "$DURATION" -q "$rate" -c "$CONNECTIONS" --latency-correction --no-tui --output-format json
    -m POST -T application/json -D "$body")
  [ "$auth" = yes ] && args+=(-H "Authorization: Bearer $API_KEY")
  echo "[bench] $name: $rate req/s for $DURATION" >&2
  oha "${args[@]}" "$url" > "$OUT_DIR/oha-$name.json"
}

run_delivery_scenario() (
  # A database, topic and group of its own, so nothing of earlier runs (an outbox backlog, old
  # records) is counted or competes. It runs before the ingest scenarios fill the broker.
  run_id="$(date +%s)"
  psql "$HERALD_DATABASE__URL" -qc "CREATE DATABASE herald_bench_$run_id"
  export HERALD_DATABASE__URL="${HERALD_DATABASE__URL%/*}/herald_bench_$run_id"
  export HERALD_KAFKA__TOPIC="bench-delivery-$run_id"
  # BENCH_KAFKA_BROKERS points the scenario at another broker (e.g. tansu with memory:// storage,
  # to see the system without the SQLite broker's write cost).
  export HERALD_KAFKA__BROKERS="${BENCH_KAFKA_BROKERS:-$HERALD_KAFKA__BROKERS}"
  export HERALD_WORKER__GROUP_ID="bench-workers-$run_id"
  $api migrate >/dev/null
  $api create-topics >/dev/null
  API_KEY="$(HERALD_API_KEY="${HERALD_BENCH_API_KEY:-hk_bench_local_key}" $api ensure-tenant --name bench)"
  batch_rate=$(( DELIVERY_RATE / BATCH_SIZE ))
  python3 - "$OUT_DIR" "$BATCH_SIZE" <<'PY'
import json, sys
out, batch_size = sys.argv[1], int(sys.argv[2])
items = [{"user_ids": [f"bench-recipient-{i}"], "channels": ["sms"], "content": {"body": "Pressure {{value}}"}, "data": {"value": 7}} for i in range(batch_size)]
json.dump({"notifications": items}, open(f"{out}/delivery-body.json", "w"))
PY
  psql "$HERALD_DATABASE__URL" -qc "INSERT INTO users (tenant_id, id, phone)
    SELECT t.id, 'bench-recipient-' || i, '+1415556' || lpad(i::text, 4, '0') FROM tenants t, generate_series(0, $BATCH_SIZE - 1) i
    WHERE t.name = 'bench' ON CONFLICT DO NOTHING"
  HERALD_SIM_LISTEN=127.0.0.1:19090 HERALD_SIM_TWILIO_LATENCY_MS=20 HERALD_SIM_SENDGRID_LATENCY_MS=20 \
    target/release/herald-provider-sim > "$OUT_DIR/simulator.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:19090/_sim/stats"
  # The delivery API instance publishes to the scenario's topic.
  HERALD_SERVER__PORT=18082 RUST_LOG=warn $api serve > "$OUT_DIR/api-delivery.log" 2>&1 &
  pids+=($!)
  HERALD_SENDGRID_BASE_URL=http://127.0.0.1:19090 HERALD_TWILIO_BASE_URL=http://127.0.0.1:19090 \
    HERALD_WORKER__METRICS_PORT=19464 RUST_LOG=warn target/release/herald-worker > "$OUT_DIR/worker.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:18082/healthz"
  sleep 3 # the worker joins its group
  started_at="$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)"
  run_oha delivery "http://127.0.0.1:18082/v1/notifications/batch" "$batch_rate" "$OUT_DIR/delivery-body.json" yes
  accepted=$(python3 -c "import json; d=json.load(open('$OUT_DIR/oha-delivery.json')); print(d['statusCodeDistribution'].get('202', 0) * $BATCH_SIZE)")
  echo "[bench] waiting for $accepted deliveries" >&2
  for _ in $(seq 1 120); do
    sent=$(psql "$HERALD_DATABASE__URL" -qtAc "SELECT count(*) FROM deliveries d JOIN notifications n ON n.id = d.notification_id WHERE n.created_at >= '$started_at' AND d.status = 'sent'")
    [ "$sent" -ge "$accepted" ] && break
    sleep 1
  done
  psql "$HERALD_DATABASE__URL" -qtAc "
    WITH run AS (
      SELECT n.created_at AS accepted_at, d.updated_at AS sent_at
      FROM deliveries d JOIN notifications n ON n.id = d.notification_id
      WHERE n.created_at >= '$started_at' AND d.status = 'sent')
    SELECT json_build_object(
      'deliveries_sent', count(*),
      'deliveries_accepted', $accepted,
      'offered_deliveries_per_second', $DELIVERY_RATE,
      'window_seconds', round(extract(epoch FROM max(sent_at) - min(accepted_at))::numeric, 2),
      'deliveries_per_second', round((count(*) / nullif(extract(epoch FROM max(sent_at) - min(accepted_at)), 0))::numeric, 1),
      'accept_to_delivery_ms', json_build_object(
        'p50', round((percentile_cont(0.50) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - accepted_at)) * 1000)::numeric, 1),
        'p95', round((percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - accepted_at)) * 1000)::numeric, 1),
        'p99', round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - accepted_at)) * 1000)::numeric, 1)))
    FROM run" > "$OUT_DIR/delivery.json"
  curl -fsS http://127.0.0.1:19090/_sim/stats > "$OUT_DIR/simulator-stats.json"
  echo "delivery: $(cat "$OUT_DIR/delivery.json")"
  kill "${pids[@]}" 2>/dev/null || true
  echo "simulator: $(python3 -c "import json; d=json.load(open('$OUT_DIR/simulator-stats.json'))['twilio']; print({k: d[k] for k in ('messages', 'duplicates')})")"
)

if [[ " $SCENARIOS " == *" delivery "* ]]; then run_delivery_scenario; fi

if [[ " $SCENARIOS " == *" ingest "* ]]; then
before=$(stored)
run_oha bare-handler "http://127.0.0.1:18081/v1/notifications" "$SINGLE_RATE" "$OUT_DIR/single-body.json" no
run_oha single "$URL/v1/notifications" "$SINGLE_RATE" "$OUT_DIR/single-body.json" yes
after_single=$(stored)
run_oha batch "$URL/v1/notifications/batch" "$BATCH_RATE" "$OUT_DIR/batch-body.json" yes
sleep 1
after_batch=$(stored)

python3 - "$OUT_DIR" "$BATCH_SIZE" "$before" "$after_single" "$after_batch" <<'PY'
import json, sys
out, batch_size = sys.argv[1], int(sys.argv[2])
before, after_single, after_batch = map(int, sys.argv[3:6])
def summary(name, items_per_request, stored=None):
    data = json.load(open(f"{out}/oha-{name}.json"))
    s, p = data["summary"], data["latencyPercentiles"]
    codes = data.get("statusCodeDistribution", {})
    ok = sum(n for code, n in codes.items() if code.startswith("2"))
    total = sum(codes.values()) + sum(data.get("errorDistribution", {}).values())
    seconds = s["total"]
    result = {
        "requests": total, "requests_2xx": ok,
        "requests_per_second": round(total / seconds, 1),
        "accepted_notifications_per_second": round(ok * items_per_request / seconds, 1),
        "error_rate": round(1 - ok / total, 5) if total else None,
        "latency_ms": {k: round(p[k] * 1000, 2) for k in ("p50", "p95", "p99")},
        "status_codes": codes, "errors": data.get("errorDistribution", {}),
    }
    if stored is not None:
        # Stored can exceed 2xx: requests the generator gave up on may still have committed.
        result["notifications_stored"] = stored
        result["accepted_but_not_stored"] = max(0, ok * items_per_request - stored)
    return result
results = {
    "bare_handler": summary("bare-handler", 1),
    "single": summary("single", 1, after_single - before),
    "batch": summary("batch", batch_size, after_batch - after_single),
    "batch_size": batch_size,
}
json.dump(results, open(f"{out}/ingest.json", "w"), indent=2)
print(f"{'scenario':<14}{'req/s':>10}{'notif/s':>12}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>9}")
for name in ("bare_handler", "single", "batch"):
    r = results[name]
    print(f"{name:<14}{r['requests_per_second']:>10}{r['accepted_notifications_per_second']:>12}"
          f"{r['latency_ms']['p50']:>9}{r['latency_ms']['p95']:>9}{r['latency_ms']['p99']:>9}{r['error_rate']:>9}")
for name in ("single", "batch"):
    lost = results[name]["accepted_but_not_stored"]
    print(f"{name}: 2xx notifications not found in PostgreSQL: {lost}")
print(f"written to {out}/ingest.json")
PY
fi

