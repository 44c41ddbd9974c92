#!/usr/bin/env bash
# `make bench`: ingest load benchmark. Starts the services and a release build of the API (or
# uses the API at HERALD_BENCH_URL), then drives it from a separate process (oha) over loopback at
# fixed arrival rates, beside a bare actix handler measured the same way in the same run.
# Prints throughput and P50/P95/P99 and writes bench-results/ingest.json.
#
# Knobs (env): BENCH_DURATION (default 20s), BENCH_SINGLE_RATE (req/s, default 15000),
# BENCH_BATCH_RATE (req/s, default 600), BENCH_BATCH_SIZE (notifications per request, default 100),
# BENCH_CONNECTIONS (default 256).
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
scripts/services.sh start
eval "$(scripts/services.sh env)"
cargo build --release --bin herald-api --bin herald-bare-handler
api=target/release/herald-api
$api migrate >/dev/null
$api create-topics >/dev/null
API_KEY="$(HERALD_API_KEY="${HERALD_BENCH_API_KEY:-hk_bench_local_key}" $api ensure-tenant --name bench)"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
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
