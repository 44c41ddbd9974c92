#!/usr/bin/env bash
# `make bench`: load benchmarks, driven from a second process (oha) over loopback at fixed arrival
# rates (--latency-correction), beside a bare actix handler measured the same way in the same run.
#
# Scenarios (BENCH_SCENARIOS, default "delivery capacity ingest channels scaling failover neighbours"):
#   delivery  notifications accepted through the batch endpoint and delivered by one worker to the
#             provider simulator (20 ms latency): deliveries/s and accept-to-delivery P50/P95/P99
#             (bench-results/delivery.json). Its own database, topic and group.
#   ingest    the bare handler, the single endpoint, the batch endpoint and the single endpoint
#             naming a template: req/s, notifications/s, P50/P95/P99, a check that every 2xx
#             notification is in PostgreSQL, and the tag cache's hit rate for the template
#             references of the templated run, which must be above 90% (bench-results/ingest.json).
#   capacity  PostgreSQL's own capacity for the delivery write path: the same statements (group
#             commit, content load, admission, outcome record with counters) through herald-store,
#             8 concurrent callers in batches of 250, nothing else running; the delivery figure is
#             quoted as a ratio of it (bench-results/capacity.json).
#   channels  every channel at once (email, sms, slack, discord, telegram, webhook), one worker, every
#             provider of the simulator answering in 50 ms (set through its /_sim/config knobs):
#             recipients with a contact on every channel (PUT /v1/users/{id}), one generator per
#             channel at a fixed rate, and per channel deliveries/s and accept-to-delivery P50/P95/P99
#             (accept: the notification's created_at; delivery: the simulator's receipt of the
#             delivery's reference; one host clock) beside the lane's max_in_flight, rate and ceiling
#             (bench-results/channels.json; scripts/lib/bench_channels.py explains the measure).
#   scaling   the same topic and group through 1, 2 and 4 workers and 1 and 2 API replicas in turn
#             (BENCH_SCALING_SHAPES, default "1:1 1:2 1:4 2:2" as APIS:WORKERS), each at
#             BENCH_SCALING_RATE (default 3000) deliveries/s: deliveries/s, latency and each
#             process's CPU per delivery (bench-results/scaling.json; scripts/lib/bench_scaling.sh).
#   sizing    each request kind of the SLA's mix (single, batch of 10, get, list) alone at
#             BENCH_SIZING_RATE (default 1000; batch a tenth) through one API and one worker: each
#             process's CPU microseconds per request, a write's deliveries included, and the topic's
#             bytes per notification on the broker (bench-results/sizing.json;
#             scripts/lib/bench_sizing.sh). Not in the defaults; docs/DEPLOY.md sizes from it.
#   failover  three KRaft brokers of its own under a steady load through a slow, failing simulator:
#             the partition leader killed, then a second broker, then both restarted; nothing lost,
#             nothing doubled, 503 and never a lost 2xx without a quorum (bench-results/failover.json;
#             scripts/lib/bench_failover.sh).
#   neighbours tenant B's steady load (SMS and webhooks, reads) alone, then beside each attack
#             tenant A can make (a high-priority flood at ten times B's rate, tarpit webhooks,
#             trickling bodies, bogus keys, slow recipient reads, placeholder bombs, tarpit event
#             subscriptions, a request flood): B's POST, read and accept-to-delivery P99 and their
#             ratios to B alone (bench-results/neighbours.json; scripts/lib/bench_neighbours.py). Phases of
#             BENCH_NEIGHBOURS_PHASE_SECONDS (BENCH_DURATION's), B at BENCH_NEIGHBOURS_B_RATE (100).
#   relay     a backlog of BENCH_RELAY_NOTIFICATIONS (default 1,000,000) notifications left in the
#             outbox, as an API that died with the broker away leaves them; one API's relay drains it
#             (bench-results/relay.json). Not in the defaults: it takes minutes.
#   groups    one notification to a group of BENCH_GROUP_MEMBERS (100,000) fanned out by one worker,
#             between two plain runs to the same recipients named in notifications of 1,000: deliveries/s
#             and accept-to-delivery for each, and the group's ratio to the plain mean
#             (bench-results/groups.json; scripts/lib/bench_groups.sh). Not in the defaults: it
#             delivers 400,000 messages (a plain warm-up first).
#   export    BENCH_EXPORT_ROWS (1,000,000) notifications exported as NDJSON and as CSV through
#             GET /v1/notifications/export, the API's RSS sampled throughout: rows/s and RSS before,
#             at the peak and after (bench-results/export.json; scripts/lib/bench_export.sh). Not in
#             the defaults.
#   rebalance the consumer group protocols (classic, KIP-848 consumer) compared: how long partitions
#             are without an owner when a worker joins, leaves and is killed, under load
#             (bench-results/rebalance.json; scripts/lib/bench_rebalance.sh). Not in the defaults:
#             a killed member is noticed only after a session timeout, twice.
#
# Every delivery-path scenario (delivery, scaling) also reports each process's CPU microseconds per
# delivery (API, worker, broker, PostgreSQL, simulator), from /proc (scripts/lib/processes.py).
#
# Knobs (env): BENCH_DURATION (default 20s), BENCH_SINGLE_RATE (req/s, default 15000),
# BENCH_BATCH_RATE (req/s, default 600), BENCH_BATCH_SIZE (notifications per request, default 100),
# BENCH_CONNECTIONS (default 256), BENCH_DELIVERY_RATE (deliveries/s offered, default 20000),
# BENCH_DELIVERY_RECIPIENTS (recipients per notification in the delivery scenario, default 1),
# BENCH_DRAIN_SECONDS (how long the delivery scenarios wait for the last deliveries, default 120),
# BENCH_CHANNELS_RATE (deliveries/s offered per channel, default 400, each at most
# BENCH_CHANNELS_CEILING_SHARE, default 0.8, of its lane's ceiling min(max_in_flight / latency,
# requests_per_second)), BENCH_CHANNELS_LATENCY_MS (default 50), BENCH_CHANNELS_USERS (default 200),
# BENCH_CHANNELS_CONNECTIONS (per generator, default 32),
# BENCH_FAILOVER_RATE (deliveries/s, default 1000), BENCH_FAILOVER_PHASE_SECONDS (30),
# BENCH_FAILOVER_MAX_UNPUBLISHED (20 s of the rate), BENCH_REBALANCE_RATE (deliveries/s, default
# 1000), BENCH_REBALANCE_PROTOCOLS ("classic consumer"), BENCH_REBALANCE_MEMBERS (workers before a
# join, default 1), BENCH_WARMUP_SECONDS (5) and BENCH_WARMUP_RATE (deliveries/s, 2000),
# HERALD_BENCH_URL (an API already running, for the ingest scenario) and HERALD_BENCH_METRICS_URL
# (its metrics port, for the cache advice; without it the cache figures are skipped), BENCH_KEEP_DATABASES=1 (keep
# the scenarios' databases), HERALD_BIN_DIR (measure these binaries instead of building this tree).
#
# A scenario that fails (a component that does not start, a generator that gets no answer, a
# delivery count that never completes) stops the run with a non-zero status and prints no figures.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

DURATION="${BENCH_DURATION:-20s}"
SINGLE_RATE="${BENCH_SINGLE_RATE:-15000}"
BATCH_RATE="${BENCH_BATCH_RATE:-600}"
BATCH_SIZE="${BENCH_BATCH_SIZE:-100}"
CONNECTIONS="${BENCH_CONNECTIONS:-256}"
DELIVERY_RATE="${BENCH_DELIVERY_RATE:-20000}"
DELIVERY_RECIPIENTS="${BENCH_DELIVERY_RECIPIENTS:-1}"
DRAIN_SECONDS="${BENCH_DRAIN_SECONDS:-120}"
CHANNELS_RATE="${BENCH_CHANNELS_RATE:-400}"
CHANNELS_CEILING_SHARE="${BENCH_CHANNELS_CEILING_SHARE:-0.8}"
CHANNELS_LATENCY_MS="${BENCH_CHANNELS_LATENCY_MS:-50}"
CHANNELS_USERS="${BENCH_CHANNELS_USERS:-200}"
CHANNELS_CONNECTIONS="${BENCH_CHANNELS_CONNECTIONS:-32}"
SCENARIOS="${BENCH_SCENARIOS:-delivery capacity ingest channels scaling failover neighbours}"
OUT_DIR=bench-results
mkdir -p "$OUT_DIR"
rm -f "$OUT_DIR"/*.json  # figures of an earlier run must never be mistaken for this one's

log() { printf '[bench] %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }
# The delivery-path scenarios' pieces, and the ones that are files of their own.
source scripts/lib/bench_delivery.sh
source scripts/lib/bench_scaling.sh
source scripts/lib/bench_sizing.sh
source scripts/lib/kafka_cluster.sh
source scripts/lib/bench_failover.sh
source scripts/lib/bench_rebalance.sh
source scripts/lib/bench_neighbours.sh
source scripts/lib/bench_groups.sh
source scripts/lib/bench_export.sh
source scripts/lib/analyze.sh

command -v oha >/dev/null || cargo install oha --version 1.16.0 --locked
started_services="$(mktemp)"
HERALD_STARTED_FILE="$started_services" scripts/services.sh start
eval "$(scripts/services.sh env)"
# HERALD_BIN_DIR: prebuilt binaries to measure instead of this tree's (another build, to compare
# two in one sitting); then nothing is built.
BENCH_BIN="${HERALD_BIN_DIR:-target/release}"
if [ -z "${HERALD_BIN_DIR:-}" ]; then
  # Only the binaries the chosen scenarios run.
  binaries=(--bin herald-api --bin herald-worker --bin herald-provider-sim --bin herald-analyze)
  case " $SCENARIOS " in *" ingest "*) binaries+=(--bin herald-bare-handler) ;; esac
  case " $SCENARIOS " in *" capacity "*) binaries+=(--bin herald-store-capacity) ;; esac
  cargo build --release "${binaries[@]}"
fi
api="$BENCH_BIN/herald-api"

# Every process a scenario starts is listed here and stopped (SIGTERM, then waited for) by
# `stop_started`, scenario by scenario; nothing else is ever signalled.
started_pids=()
stop_started() {
  local pid
  for pid in "${started_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${started_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  started_pids=()
}
# Each scenario's database (up to gigabytes) is dropped when the run ends, and leftovers of an
# interrupted run when the next one starts; BENCH_KEEP_DATABASES=1 keeps them for a look.
bench_databases=('herald\_bench\_%' 'herald\_channels\_%' 'herald\_relay\_%' 'herald\_capacity\_%')
drop_bench_databases() {
  [ "${BENCH_KEEP_DATABASES:-0}" = 1 ] || scripts/services.sh drop-databases "${bench_databases[@]}" || true
}
drop_bench_databases
cleanup() {
  stop_started
  kafka_cluster_stop
  drop_bench_databases
  scripts/services.sh stop-started "$started_services"
}
trap cleanup EXIT

wait_http() {
  for _ in $(seq 1 200); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "no answer from $1"
}

# run_oha name url rate body auth [duration]: a fixed-rate run (for BENCH_DURATION unless given);
# fails the scenario when nothing was answered.
run_oha() {
  local name=$1 url=$2 rate=$3 body=$4 auth=$5 duration=${6:-$DURATION}
  local args=(-z "$duration" -q "$rate" -c "$CONNECTIONS" --latency-correction --no-tui --output-format json
    -m POST -T application/json -D "$body")
  [ "$auth" = yes ] && args+=(-H "Authorization: Bearer $API_KEY")
  log "$name: $rate req/s for $duration"
  oha "${args[@]}" "$url" > "$OUT_DIR/oha-$name.json" || fail "oha $name exited with an error"
  python3 - "$OUT_DIR/oha-$name.json" "$name" <<'PY' || fail "$name: the generator got no usable answers"
import json, sys
data = json.load(open(sys.argv[1]))
codes = data.get("statusCodeDistribution", {})
ok = sum(n for code, n in codes.items() if code.startswith("2"))
percentiles = data.get("latencyPercentiles") or {}
if ok == 0 or any(percentiles.get(p) is None for p in ("p50", "p95", "p99")):
    print(f"{sys.argv[2]}: {ok} answers 2xx, status codes {codes}, errors {data.get('errorDistribution')}", file=sys.stderr)
    sys.exit(1)
PY
}


postgres_port() {
  python3 -c "import sys, urllib.parse as u; print(u.urlparse(sys.argv[1]).port or 5432)" "$HERALD_DATABASE__URL"
}

# broker_cpu_targets BROKERS: a processes.py target per broker of a bootstrap list (broker, or
# broker-1, broker-2... for a cluster), found by its port.
broker_cpu_targets() {
  local -a addresses
  IFS=, read -r -a addresses <<< "$1"
  if [ ${#addresses[@]} -eq 1 ]; then echo "broker=port:${addresses[0]##*:}"; return; fi
  local index=1 address
  for address in "${addresses[@]}"; do echo "broker-$index=port:${address##*:}"; index=$((index + 1)); done
}

# add_cpu_per_delivery RESULT BEFORE AFTER: adds to RESULT (a scenario's JSON, with
# deliveries_sent) each process's CPU microseconds per delivery between two processes.py readings
# (from the first request to the last delivery), and the machine's share of it.
add_cpu_per_delivery() {
  python3 - "$@" <<'PY'
import json, sys
result_file, before_file, after_file = sys.argv[1:4]
result = json.load(open(result_file))
before, after = json.load(open(before_file)), json.load(open(after_file))
deliveries = result["deliveries_sent"]
per_delivery = {}
for name, reading in after.items():
    start = before.get(name, {}).get("cpu_seconds")
    if reading["cpu_seconds"] is None or start is None or not deliveries:
        per_delivery[name] = None
        continue
    per_delivery[name] = round((reading["cpu_seconds"] - start) * 1e6 / deliveries, 1)
per_delivery["total"] = round(sum(v for v in per_delivery.values() if v is not None), 1)
result["cpu_us_per_delivery"] = per_delivery
json.dump(result, open(result_file, "w"))
print("CPU per delivery (us): " + ", ".join(f"{name} {value}" for name, value in per_delivery.items()))
PY
}

run_delivery_scenario() {
  delivery_setup delivery
  local batch_rate started_at accepted
  batch_rate=$(( DELIVERY_RATE / (BATCH_SIZE * DELIVERY_RECIPIENTS) ))
  [ "$batch_rate" -ge 1 ] || batch_rate=1
  delivery_body "$OUT_DIR/delivery-body.json" "$BATCH_SIZE" "$DELIVERY_RECIPIENTS"
  delivery_one_api_one_worker
  local api_pid=$DELIVERY_API_PID worker_pid=$DELIVERY_WORKER_PID
  delivery_warm_up delivery "http://127.0.0.1:18082/v1/notifications/batch" "$batch_rate" \
    "$OUT_DIR/delivery-body.json" $(( BATCH_SIZE * DELIVERY_RECIPIENTS ))
  local -a cpu_targets=(api="$api_pid" worker="$worker_pid" simulator="$SIMULATOR_PID" postgres="port:$(postgres_port)")
  cpu_targets+=($(broker_cpu_targets "${BENCH_KAFKA_BROKERS:-$HERALD_KAFKA__BROKERS}"))
  python3 scripts/lib/processes.py cpu "${cpu_targets[@]}" > "$OUT_DIR/delivery-cpu-before.json"
  started_at="$(psql "$DELIVERY_DATABASE_URL" -qtAc "SELECT now()")"
  run_oha delivery "http://127.0.0.1:18082/v1/notifications/batch" "$batch_rate" "$OUT_DIR/delivery-body.json" yes
  accepted=$(( $(accepted_notifications "$OUT_DIR/oha-delivery.json") * BATCH_SIZE * DELIVERY_RECIPIENTS ))
  delivery_drain "$started_at" "$accepted" delivery
  python3 scripts/lib/processes.py cpu "${cpu_targets[@]}" > "$OUT_DIR/delivery-cpu-after.json"
  delivery_report "$started_at" "$accepted" "$DELIVERY_RATE" > "$OUT_DIR/delivery.json"
  add_cpu_per_delivery "$OUT_DIR/delivery.json" "$OUT_DIR/delivery-cpu-before.json" "$OUT_DIR/delivery-cpu-after.json"
  python3 -c "import json; print('delivery:', json.load(open('$OUT_DIR/delivery.json')))"
  check_simulator_ledger "$OUT_DIR/delivery.json" delivery
  stop_started
}

run_channels_scenario() {
  # Every channel at once through one worker, each provider answering in CHANNELS_LATENCY_MS, each
  # channel offered BENCH_CHANNELS_RATE deliveries/s or CHANNELS_CEILING_SHARE of its lane's ceiling,
  # whichever is lower. Its own database, topic, group, ports and simulator.
  local run_id database_url topic capacity accepted sent channel provider
  local simulator=http://127.0.0.1:19190 api_url=http://127.0.0.1:18084
  run_id="$(date +%s)"
  database_url="${HERALD_DATABASE__URL%/*}/herald_channels_$run_id"
  topic="bench-channels-$run_id"
  psql "$HERALD_DATABASE__URL" -qc "CREATE DATABASE herald_channels_$run_id"
  local -a scenario_env=(
    HERALD_DATABASE__URL="$database_url"
    HERALD_KAFKA__TOPIC="$topic"
    HERALD_KAFKA__BROKERS="${BENCH_KAFKA_BROKERS:-$HERALD_KAFKA__BROKERS}"
    HERALD_WORKER__GROUP_ID="bench-channels-workers-$run_id"
    HERALD_SENDGRID_BASE_URL=$simulator
    HERALD_TWILIO_BASE_URL=$simulator
    HERALD_TELEGRAM_BASE_URL=$simulator/telegram
    HERALD_SMTP_URL=smtp://127.0.0.1:19125
    HERALD_OUTBOUND__ALLOW_PRIVATE_NETWORKS=true
  )
  env "${scenario_env[@]}" $api migrate >/dev/null
  env "${scenario_env[@]}" $api create-topics >/dev/null
  API_KEY="$(env "${scenario_env[@]}" HERALD_API_KEY="${HERALD_BENCH_API_KEY:-hk_bench_local_key}" $api ensure-tenant --name bench)"
  python3 scripts/lib/bench_channels.py plan --duration "${DURATION%s}" --rate "$CHANNELS_RATE" \
    --ceiling-share "$CHANNELS_CEILING_SHARE" --latency-ms "$CHANNELS_LATENCY_MS" --config config/herald.toml \
    > "$OUT_DIR/channels-plan.json" || fail "channels: no plan"
  # Room for every message of the busiest channel in the simulator's record ring (receipt times
  # are read from it), twice over for retries.
  capacity=$(python3 -c "import json; p=json.load(open('$OUT_DIR/channels-plan.json')); \
print(2 * max(c['expected_deliveries'] for c in p['channels'].values()) + 1000)")
  HERALD_SIM_LISTEN=127.0.0.1:19190 HERALD_SIM_SMTP_LISTEN=127.0.0.1:19125 HERALD_SIM_RECORD_CAPACITY="$capacity" \
    "$BENCH_BIN/herald-provider-sim" > "$OUT_DIR/simulator-channels.log" 2>&1 &
  started_pids+=($!)
  wait_http "$simulator/_sim/stats"
  # The latency is set at run time, through the simulator's own knobs, on every provider.
  for provider in sendgrid twilio slack discord telegram webhook smtp; do
    curl -fsS -X PUT -H 'Content-Type: application/json' -d "{\"latency_ms\": $CHANNELS_LATENCY_MS}" \
      "$simulator/_sim/config/$provider" >/dev/null || fail "channels: the simulator refused a latency for $provider"
  done
  curl -fsS -X PUT -H 'Content-Type: application/json' \
    -d '{"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}' "$simulator/_sim/webhook-endpoints/bench" >/dev/null \
    || fail "channels: the simulator refused the webhook endpoint"
  env "${scenario_env[@]}" HERALD_SERVER__PORT=18084 HERALD_SERVER__METRICS_PORT=18184 RUST_LOG=warn $api serve \
    > "$OUT_DIR/api-channels.log" 2>&1 &
  started_pids+=($!)
  env "${scenario_env[@]}" HERALD_WORKER__METRICS_PORT=19465 RUST_LOG=warn "$BENCH_BIN/herald-worker" \
    > "$OUT_DIR/worker-channels.log" 2>&1 &
  started_pids+=($!)
  wait_http "$api_url/healthz"
  wait_http "http://127.0.0.1:19465/healthz"
  for _ in $(seq 1 300); do
    curl -fsS http://127.0.0.1:19465/readyz 2>/dev/null | grep -q '"assigned_partitions":[1-9]' && break
    sleep 0.1
  done
  python3 scripts/lib/bench_channels.py users --api "$api_url" --key "$API_KEY" --simulator "$simulator" \
    --users "$CHANNELS_USERS" --out-dir "$OUT_DIR" >/dev/null || fail "channels: the recipients could not be created"

  # One generator per channel, all at once, each at its channel's fixed rate, one notification
  # per request, spread over the recipients (-Z: a body per line).
  cp /proc/loadavg "$OUT_DIR/channels-loadavg-before.txt"
  local -a generators=()
  for channel in email sms slack discord telegram webhook; do
    local rate
    rate=$(python3 -c "import json; print(json.load(open('$OUT_DIR/channels-plan.json'))['channels']['$channel']['offered_deliveries_per_second'])")
    log "channels: $channel at $rate/s for $DURATION"
    oha -z "$DURATION" -q "$rate" -c "$CHANNELS_CONNECTIONS" --latency-correction --no-tui --output-format json \
      -m POST -T application/json -Z "$OUT_DIR/channels-body-$channel.jsonl" -H "Authorization: Bearer $API_KEY" \
      "$api_url/v1/notifications" > "$OUT_DIR/oha-channels-$channel.json" &
    generators+=($!)
  done
  local generator
  for generator in "${generators[@]}"; do wait "$generator" || fail "channels: a generator exited with an error"; done
  accepted=$(python3 -c "import json; print(sum(json.load(open(f'$OUT_DIR/oha-channels-{c}.json')).get('statusCodeDistribution', {}).get('202', 0) \
    for c in ('email', 'sms', 'slack', 'discord', 'telegram', 'webhook')))")
  log "channels: waiting for $accepted deliveries"
  # Per channel, not in total: a request the generator gave up on at its deadline may still have been
  # accepted and sent, so a total can be reached while one channel still has deliveries under way.
  local behind=""
  for _ in $(seq 1 "$DRAIN_SECONDS"); do
    behind=$(psql "$database_url" -qtAc "SELECT channel, count(*) FROM deliveries WHERE status = 'sent' GROUP BY channel" |
      python3 -c "
import json, sys
sent = dict(line.strip().split('|') for line in sys.stdin if line.strip())
accepted = {c: json.load(open(f'$OUT_DIR/oha-channels-{c}.json')).get('statusCodeDistribution', {}).get('202', 0)
            for c in ('email', 'sms', 'slack', 'discord', 'telegram', 'webhook')}
print(' '.join(f'{c}:{sent.get(c, 0)}/{n}' for c, n in accepted.items() if int(sent.get(c, 0)) < n))")
    [ -z "$behind" ] && break
    sleep 1
  done
  cp /proc/loadavg "$OUT_DIR/channels-loadavg-after.txt"
  [ -z "$behind" ] || fail "channels: not every accepted delivery sent after ${DRAIN_SECONDS}s (sent/accepted: $behind)"
  psql "$database_url" -qc "COPY (SELECT d.id, d.channel, d.status,
      (extract(epoch FROM n.created_at) * 1000000)::bigint, (extract(epoch FROM d.updated_at) * 1000000)::bigint
    FROM deliveries d JOIN notifications n ON n.id = d.notification_id) TO STDOUT WITH CSV" \
    > "$OUT_DIR/channels-deliveries.csv"
  python3 scripts/lib/bench_channels.py report --plan "$OUT_DIR/channels-plan.json" --out-dir "$OUT_DIR" \
    --simulator "$simulator" --deliveries "$OUT_DIR/channels-deliveries.csv" \
    || fail "channels: deliveries missing or repeated at the provider"
  stop_started
}

run_ingest_scenario() {
  local url metrics_url before after_single after_batch after_templated
  $api migrate >/dev/null
  $api create-topics >/dev/null
  API_KEY="$(HERALD_API_KEY="${HERALD_BENCH_API_KEY:-hk_bench_local_key}" $api ensure-tenant --name bench)"
  if [ -n "${HERALD_BENCH_URL:-}" ]; then
    url="$HERALD_BENCH_URL"
    metrics_url="${HERALD_BENCH_METRICS_URL:-}"
  else
    url="http://127.0.0.1:18080"
    # The API's metrics are on a port of their own, never the public one.
    metrics_url="http://127.0.0.1:18180"
    HERALD_SERVER__PORT=18080 HERALD_SERVER__METRICS_PORT=18180 RUST_LOG=warn $api serve > "$OUT_DIR/api.log" 2>&1 &
    started_pids+=($!)
  fi
  "$BENCH_BIN/herald-bare-handler" 127.0.0.1:18081 &
  started_pids+=($!)
  wait_http "$url/healthz"
  wait_http "http://127.0.0.1:18081/"
  python3 - "$OUT_DIR" "$BATCH_SIZE" <<'PY'
import json, sys
out, batch_size = sys.argv[1], int(sys.argv[2])
one = {"user_ids": ["bench-user"], "channels": ["sms"], "content": {"body": "Pressure {{value}} on {{machine}}"}, "data": {"value": 7, "machine": "press-4"}}
json.dump(one, open(f"{out}/single-body.json", "w"))
items = [dict(one, user_ids=[f"bench-user-{i}"]) for i in range(batch_size)]
json.dump({"notifications": items}, open(f"{out}/batch-body.json", "w"))
templated = {"user_ids": ["bench-user"], "channels": ["sms"], "template_id": "bench-alert", "data": {"value": 7, "machine": "press-4"}}
json.dump(templated, open(f"{out}/templated-body.json", "w"))
PY
  # The templated run resolves its template through the tag cache at every acceptance: its hit
  # rate is read from the API's own counters around the run.
  curl -fsS --max-time 10 -o /dev/null -X PUT -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
    -d '{"channels": {"sms": {"text": "Pressure {{ data.value }} on {{ data.machine }}"}}}' \
    "$url/v1/templates/bench-alert" || fail "ingest: writing the bench template"
  cache_lookups() {
    [ -n "$metrics_url" ] || return 0
    curl -fsS --max-time 10 "$metrics_url/metrics" | grep '^herald_cache_lookups_total{.*kind="template_reference"' || true
  }
  stored() {
    psql "$HERALD_DATABASE__URL" -qtAc "SELECT count(*) FROM notifications n JOIN tenants t ON t.id = n.tenant_id WHERE t.name = 'bench'"
  }
  before=$(stored)
  run_oha bare-handler "http://127.0.0.1:18081/v1/notifications" "$SINGLE_RATE" "$OUT_DIR/single-body.json" no
  run_oha single "$url/v1/notifications" "$SINGLE_RATE" "$OUT_DIR/single-body.json" yes
  after_single=$(stored)
  run_oha batch "$url/v1/notifications/batch" "$BATCH_RATE" "$OUT_DIR/batch-body.json" yes
  sleep 1
  after_batch=$(stored)
  cache_lookups > "$OUT_DIR/cache-before.txt"
  run_oha templated "$url/v1/notifications" "$SINGLE_RATE" "$OUT_DIR/templated-body.json" yes
  sleep 1
  after_templated=$(stored)
  cache_lookups > "$OUT_DIR/cache-after.txt"
  # The API's metrics as the run left them, for herald-analyze's cache advice.
  if [ -n "$metrics_url" ]; then
    curl -fsS --max-time 10 "$metrics_url/metrics" > "$OUT_DIR/metrics-ingest-api.prom" || fail "ingest: scraping the API's metrics"
  fi
  stop_started
  python3 - "$OUT_DIR" "$BATCH_SIZE" "$before" "$after_single" "$after_batch" "$after_templated" <<'PY'
import json, re, sys
out, batch_size = sys.argv[1], int(sys.argv[2])
before, after_single, after_batch, after_templated = map(int, sys.argv[3:7])
def summary(name, items_per_request, stored=None):
    data = json.load(open(f"{out}/oha-{name}.json"))
    s, p = data["summary"], data["latencyPercentiles"]
    codes = data.get("statusCodeDistribution", {})
    ok = sum(n for code, n in codes.items() if code.startswith("2"))
    # Requests the generator itself cut off when its duration ended are not the server's errors.
    errors = {kind: n for kind, n in data.get("errorDistribution", {}).items()
              if kind != "aborted due to deadline"}
    total = sum(codes.values()) + sum(errors.values())
    seconds = s["total"]
    result = {
        "requests": total, "requests_2xx": ok,
        "requests_per_second": round(total / seconds, 1),
        "accepted_notifications_per_second": round(ok * items_per_request / seconds, 1),
        "error_rate": round(1 - ok / total, 5) if total else None,
        "latency_ms": {k: round(p[k] * 1000, 2) for k in ("p50", "p95", "p99")},
        "status_codes": codes, "errors": errors,
    }
    if stored is not None:
        # Stored can exceed 2xx: requests the generator gave up on may still have committed.
        result["notifications_stored"] = stored
        result["accepted_but_not_stored"] = max(0, ok * items_per_request - stored)
    return result
def lookups(path):
    counts = {}
    for line in open(path):
        result = re.search(r'result="([a-z]+)"', line).group(1)
        counts[result] = counts.get(result, 0) + float(line.rsplit(" ", 1)[1])
    return counts
cache_before, cache_after = lookups(f"{out}/cache-before.txt"), lookups(f"{out}/cache-after.txt")
cache = {result: int(cache_after.get(result, 0) - cache_before.get(result, 0))
         for result in ("hit", "miss", "error")}
lookups_total = sum(cache.values())
cache["hit_rate"] = round(cache["hit"] / lookups_total, 5) if lookups_total else None
results = {
    "bare_handler": summary("bare-handler", 1),
    "single": summary("single", 1, after_single - before),
    "batch": summary("batch", batch_size, after_batch - after_single),
    "templated": summary("templated", 1, after_templated - after_batch),
    "template_reference_cache": cache,
    "batch_size": batch_size,
}
json.dump(results, open(f"{out}/ingest.json", "w"), indent=2)
print(f"{'scenario':<14}{'req/s':>10}{'notif/s':>12}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>9}")
for name in ("bare_handler", "single", "batch", "templated"):
    r = results[name]
    print(f"{name:<14}{r['requests_per_second']:>10}{r['accepted_notifications_per_second']:>12}"
          f"{r['latency_ms']['p50']:>9}{r['latency_ms']['p95']:>9}{r['latency_ms']['p99']:>9}{r['error_rate']:>9}")
print(f"template references through the tag cache: {cache['hit']} hits, {cache['miss']} misses, "
      f"{cache['error']} errors: hit rate {cache['hit_rate']}")
cache_too_cold = cache["hit_rate"] is None or cache["hit_rate"] <= 0.9
if cache_too_cold:
    print("the tag cache's hit rate is not above 90%")
lost = 0
for name in ("single", "batch", "templated"):
    lost += results[name]["accepted_but_not_stored"]
    print(f"{name}: 2xx notifications not found in PostgreSQL: {results[name]['accepted_but_not_stored']}")
print(f"written to {out}/ingest.json")
sys.exit(1 if lost or cache_too_cold else 0)
PY
}

run_relay_scenario() {
  local run_id database_url topic backlog started left seconds
  backlog="${BENCH_RELAY_NOTIFICATIONS:-1000000}"
  run_id="$(date +%s)"
  database_url="${HERALD_DATABASE__URL%/*}/herald_relay_$run_id"
  topic="bench-relay-$run_id"
  psql "$HERALD_DATABASE__URL" -qc "CREATE DATABASE herald_relay_$run_id"
  local -a scenario_env=(HERALD_DATABASE__URL="$database_url" HERALD_KAFKA__TOPIC="$topic")
  env "${scenario_env[@]}" $api migrate >/dev/null
  env "${scenario_env[@]}" $api create-topics >/dev/null
  env "${scenario_env[@]}" $api ensure-tenant --name relay-bench >/dev/null
  log "relay: writing a backlog of $backlog notifications into the outbox"
  # UUIDv7 ids of now (the hex of the Unix milliseconds, then version 7), one recipient each,
  # in outbox batches of 1000 an hour old.
  psql "$database_url" -q <<SQL
INSERT INTO notifications (id, tenant_id, user_ids, channels, body, data, priority, request_hash, created_at)
SELECT (lpad(to_hex((extract(epoch FROM now()) * 1000)::bigint), 12, '0') || '7' || lpad(to_hex(i), 19, '0'))::uuid,
       t.id, ARRAY['relay-user-' || (i % 10000)], '{sms}', 'relay', '{}', 'normal', '\x00', now()
FROM tenants t, generate_series(1, $backlog) AS i WHERE t.name = 'relay-bench';
INSERT INTO notification_states (id, tenant_id, status, deliveries_expected, updated_at)
SELECT id, tenant_id, 'accepted', 1, now() FROM notifications;
INSERT INTO outbox_batches (id, notification_ids, notification_count, created_at)
SELECT gen_random_uuid(), array_agg(id ORDER BY id), count(*), now() - interval '1 hour'
FROM (SELECT id, (row_number() OVER (ORDER BY id) - 1) / 1000 AS batch FROM notifications) numbered
GROUP BY batch;
SQL
  started=$(date +%s.%N)
  env "${scenario_env[@]}" HERALD_SERVER__PORT=18083 HERALD_SERVER__METRICS_PORT=18183 RUST_LOG=warn $api serve \
    > "$OUT_DIR/api-relay.log" 2>&1 &
  started_pids+=($!)
  for _ in $(seq 1 1800); do
    left=$(psql "$database_url" -qtAc "SELECT coalesce(sum(notification_count), 0) FROM outbox_batches")
    [ "$left" -eq 0 ] && break
    sleep 1
  done
  [ "$left" -eq 0 ] || fail "relay: $left notifications still in the outbox after 30 minutes"
  seconds=$(python3 -c "import time; print(round(time.time() - $started, 1))")
  stop_started
  python3 - "$OUT_DIR" "$backlog" "$seconds" <<'PY'
import json, sys
out, backlog, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
result = {"backlog_notifications": backlog, "drain_seconds": seconds,
          "notifications_per_second": round(backlog / seconds, 1)}
json.dump(result, open(f"{out}/relay.json", "w"), indent=2)
print(f"relay: {result}")
PY
}

run_capacity_scenario() {
  local run_id database_url seconds
  run_id="$(date +%s)"
  seconds="${DURATION%s}"
  database_url="${HERALD_DATABASE__URL%/*}/herald_capacity_$run_id"
  psql "$HERALD_DATABASE__URL" -qc "CREATE DATABASE herald_capacity_$run_id"
  log "capacity: PostgreSQL alone, the delivery write path, for ${seconds}s"
  HERALD_DATABASE__URL="$database_url" "$BENCH_BIN/herald-store-capacity" "$seconds" 8 250 \
    > "$OUT_DIR/capacity.json" || fail "capacity: the driver failed"
  python3 - "$OUT_DIR" <<'PY'
import json, os, sys
out = sys.argv[1]
capacity = json.load(open(f"{out}/capacity.json"))
print(f"capacity: {capacity}")
if os.path.exists(f"{out}/delivery.json"):
    delivery = json.load(open(f"{out}/delivery.json"))
    ratio = delivery["deliveries_per_second"] / capacity["deliveries_per_second"]
    print(f"end to end {delivery['deliveries_per_second']}/s = {ratio:.2f} of PostgreSQL's own capacity")
PY
}

for scenario in $SCENARIOS; do
  case "$scenario" in
    delivery) run_delivery_scenario ;;
    capacity) run_capacity_scenario ;;
    ingest) run_ingest_scenario ;;
    relay) run_relay_scenario ;;
    channels) run_channels_scenario ;;
    scaling) run_scaling_scenario ;;
    sizing) run_sizing_scenario ;;
    failover) run_failover_scenario ;;
    rebalance) run_rebalance_scenario ;;
    neighbours) run_neighbours_scenario ;;
    groups) run_groups_scenario ;;
    export) run_export_scenario ;;
    *) fail "unknown scenario $scenario (known: delivery capacity ingest channels scaling sizing failover neighbours relay rebalance groups export)" ;;
  esac
done

# herald-analyze over the scenarios' results: bottlenecks against load-tests/targets.toml, the plan,
# the cache advice from the API's metrics, and bench-results/analysis.html. (The generators' raw
# files, oha-*.json, and the request bodies are not results.)
results=()
for scenario in $SCENARIOS; do
  [ ! -f "$OUT_DIR/$scenario.json" ] || results+=("$OUT_DIR/$scenario.json")
done
snapshots=()
for snapshot in "$OUT_DIR"/*.prom; do [ ! -f "$snapshot" ] || snapshots+=("$snapshot"); done
if [ ${#results[@]} -gt 0 ]; then
  analyze_results "$BENCH_BIN" "$OUT_DIR/analysis.html" "${results[@]}" -- "${snapshots[@]}" \
    || fail "herald-analyze could not read this run's results"
fi
