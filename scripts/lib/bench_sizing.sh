# The `sizing` scenario of scripts/bench.sh (sourced after scripts/lib/bench_delivery.sh): what each
# kind of request of the SLA's mix (load-tests/README.md: single, batch of 10, get, list) costs each
# process, in CPU microseconds per request, measured one kind at a time at a fixed rate through one
# API and one worker; a write's cost includes its deliveries (the run drains them before the second
# reading). Also the bytes a notification takes in the brokers' logs (compressed, every replica's:
# one on a single broker), in the topic and in the status events' topic. docs/DEPLOY.md, "Sizing for 50,000 requests/s", turns these into pods and cores.
#
# Knobs: BENCH_SIZING_RATE (requests/s of single, get and list; default 1000; batch gets a tenth),
# BENCH_DURATION. Writes bench-results/sizing.json.

SIZING_RATE="${BENCH_SIZING_RATE:-1000}"
SIZING_BATCH_SIZE=10

run_sizing_scenario() {
  # One tenant makes every read here: its default share of the read permits (2 of 8 per process)
  # would refuse most of them with 429, and a refusal is not what a read costs.
  delivery_setup sizing HERALD_SERVER__MAX_CONCURRENT_READS_PER_TENANT=7
  delivery_one_api_one_worker
  local base=http://127.0.0.1:18082
  sizing_bodies "$OUT_DIR/sizing-single.txt" 1 2000
  sizing_bodies "$OUT_DIR/sizing-batch.txt" "$SIZING_BATCH_SIZE" 200
  SIZING_CPU_TARGETS=(api="$DELIVERY_API_PID" worker="$DELIVERY_WORKER_PID" postgres="port:$(postgres_port)")
  SIZING_CPU_TARGETS+=($(broker_cpu_targets "${BENCH_KAFKA_BROKERS:-$HERALD_KAFKA__BROKERS}"))
  # The JVM compiles its hot paths and the pools open in the first seconds: not the steady state.
  delivery_body "$OUT_DIR/sizing-warm-up.json" "$SIZING_BATCH_SIZE" 1
  delivery_warm_up sizing "$base/v1/notifications/batch" 50 "$OUT_DIR/sizing-warm-up.json" "$SIZING_BATCH_SIZE"
  local bytes_before bytes_after
  bytes_before=$(sizing_topic_bytes)
  sizing_write_kind single "$base/v1/notifications" "$SIZING_RATE" "$OUT_DIR/sizing-single.txt" 1
  sizing_write_kind batch "$base/v1/notifications/batch" $(( SIZING_RATE / 10 > 0 ? SIZING_RATE / 10 : 1 )) \
    "$OUT_DIR/sizing-batch.txt" "$SIZING_BATCH_SIZE"
  bytes_after=$(sizing_topic_bytes)
  # The reads: a notification of this run by id (ids of the single run, taken in turn), and the
  # newest page of 50.
  psql "$DELIVERY_DATABASE_URL" -qtAc "SELECT '$base/v1/notifications/' || id FROM notifications
    ORDER BY created_at DESC LIMIT 2000" > "$OUT_DIR/sizing-get-urls.txt"
  sizing_read_kind get "$OUT_DIR/sizing-get-urls.txt" --urls-from-file
  sizing_read_kind list "$base/v1/notifications?limit=50"
  stop_started
  # shellcheck disable=SC2086 # each reading is two numbers: the topics', the status events'
  python3 - "$OUT_DIR" $bytes_before $bytes_after <<'PY'
import json, sys
out, bytes_before, events_before, bytes_after, events_after = sys.argv[1], *map(int, sys.argv[2:])
kinds = {kind: json.load(open(f"{out}/sizing-{kind}.json")) for kind in ("single", "batch", "get", "list")}
notifications = sum(kinds[kind]["notifications"] for kind in ("single", "batch"))
result = dict(kinds)
result["topic_bytes_per_notification"] = round((bytes_after - bytes_before) / notifications, 1)
result["status_events_bytes_per_notification"] = round((events_after - events_before) / notifications, 1)
json.dump(result, open(f"{out}/sizing.json", "w"), indent=2)
processes = ("api", "worker", "broker", "postgres")
print(f"{'kind':>7}{'req/s':>9}{'p99 ms':>9}" + "".join(f"{name + ' us':>13}" for name in processes))
for kind, figures in kinds.items():
    cpu = figures["cpu_us_per_request"]
    print(f"{kind:>7}{figures['requests_per_second']:>9}{figures['latency_ms']['p99']:>9}"
          + "".join(f"{cpu.get(name, float('nan')):>13}" for name in processes))
print(f"bytes per notification in the brokers' logs (compressed, every replica): topic "
      f"{result['topic_bytes_per_notification']}, status events {result['status_events_bytes_per_notification']}")
print(f"written to {out}/sizing.json")
PY
}

# sizing_bodies FILE NOTIFICATIONS REQUESTS: REQUESTS request bodies, one per line (oha -Z takes them
# in turn), of NOTIFICATIONS SMS notifications each shaped like the k6 mix's (placeholders filled
# from three data fields), to consecutive recipients so their keys reach every partition.
sizing_bodies() {
  python3 - "$@" <<'PY'
import json, sys
out, per_request, requests = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def notification(sequence):
    return {"user_ids": [f"bench-recipient-{sequence % 100000}"], "channels": ["sms"],
            "content": {"body": "Pressure {{value}} bar on {{machine}} (reading {{reading}})."},
            "data": {"value": 7 + sequence % 5, "machine": f"press-{sequence % 17}", "reading": sequence}}
with open(out, "w") as file:
    for request in range(requests):
        items = [notification(request * per_request + i) for i in range(per_request)]
        file.write(json.dumps(items[0] if per_request == 1 else {"notifications": items}) + "\n")
PY
}

# sizing_write_kind KIND URL RATE BODIES NOTIFICATIONS_PER_REQUEST: CPU of every process across a
# fixed-rate run and the delivery of everything it got accepted.
sizing_write_kind() {
  local kind=$1 url=$2 rate=$3 bodies=$4 per_request=$5 started_at accepted
  python3 scripts/lib/processes.py cpu "${SIZING_CPU_TARGETS[@]}" > "$OUT_DIR/sizing-$kind-cpu-before.json"
  started_at="$(psql "$DELIVERY_DATABASE_URL" -qtAc "SELECT now()")"
  log "sizing $kind: $rate req/s for $DURATION"
  oha -z "$DURATION" -q "$rate" -c "$CONNECTIONS" --latency-correction --no-tui --output-format json \
    -m POST -T application/json -Z "$bodies" -H "Authorization: Bearer $API_KEY" "$url" \
    > "$OUT_DIR/oha-sizing-$kind.json" || fail "sizing $kind: the generator exited with an error"
  accepted=$(( $(accepted_notifications "$OUT_DIR/oha-sizing-$kind.json") * per_request ))
  [ "$accepted" -gt 0 ] || fail "sizing $kind: nothing was accepted"
  delivery_drain "$started_at" "$accepted" "sizing $kind"
  python3 scripts/lib/processes.py cpu "${SIZING_CPU_TARGETS[@]}" > "$OUT_DIR/sizing-$kind-cpu-after.json"
  sizing_figures "$kind" "$accepted"
}

# sizing_read_kind KIND URL_OR_FILE [OHA_ARGS...]: CPU of every process across a fixed-rate run of GETs.
sizing_read_kind() {
  local kind=$1 target=$2
  shift 2
  python3 scripts/lib/processes.py cpu "${SIZING_CPU_TARGETS[@]}" > "$OUT_DIR/sizing-$kind-cpu-before.json"
  log "sizing $kind: $SIZING_RATE req/s for $DURATION"
  oha -z "$DURATION" -q "$SIZING_RATE" -c "$CONNECTIONS" --latency-correction --no-tui --output-format json \
    -H "Authorization: Bearer $API_KEY" "$@" "$target" > "$OUT_DIR/oha-sizing-$kind.json" ||
    fail "sizing $kind: the generator exited with an error"
  python3 scripts/lib/processes.py cpu "${SIZING_CPU_TARGETS[@]}" > "$OUT_DIR/sizing-$kind-cpu-after.json"
  sizing_figures "$kind" 0
}

# sizing_figures KIND NOTIFICATIONS: bench-results/sizing-KIND.json from the generator's report and
# the two CPU readings: requests, latency, errors and each process's CPU microseconds per 2xx.
sizing_figures() {
  python3 - "$OUT_DIR" "$1" "$2" <<'PY' || fail "sizing $1: no usable answers"
import json, sys
out, kind, notifications = sys.argv[1], sys.argv[2], int(sys.argv[3])
report = json.load(open(f"{out}/oha-sizing-{kind}.json"))
codes = report.get("statusCodeDistribution", {})
answered = sum(codes.values())
ok = sum(n for code, n in codes.items() if code.startswith("2"))
if ok == 0:
    print(f"sizing {kind}: no 2xx; status codes {codes}, errors {report.get('errorDistribution')}", file=sys.stderr)
    sys.exit(1)
before = json.load(open(f"{out}/sizing-{kind}-cpu-before.json"))
after = json.load(open(f"{out}/sizing-{kind}-cpu-after.json"))
cpu = {}
for name, reading in after.items():
    start = before.get(name, {}).get("cpu_seconds")
    if reading["cpu_seconds"] is None or start is None:
        continue
    kind_of_process = name.split("-")[0]  # broker-1, broker-2, ...: one figure per kind
    cpu[kind_of_process] = round(cpu.get(kind_of_process, 0) + (reading["cpu_seconds"] - start) * 1e6 / ok, 1)
latency = report["latencyPercentiles"]
json.dump({
    "requests": answered,
    "requests_2xx": ok,
    "notifications": notifications,
    "requests_per_second": round(report["summary"]["requestsPerSec"], 1),
    "error_rate": round(1 - ok / answered, 4) if answered else None,
    "latency_ms": {p: round(latency[p] * 1000, 2) for p in ("p50", "p95", "p99")},
    "cpu_us_per_request": cpu,
}, open(f"{out}/sizing-{kind}.json", "w"), indent=2)
PY
}

# sizing_topic_bytes: the bytes the brokers' logs hold, every replica's, of the scenario's topics
# (both priorities) and of the status events' topic (config.status_events.topic): two numbers, from
# one run of Kafka's log-dirs tool (a JVM start each).
sizing_topic_bytes() {
  local setting topic=""
  for setting in "${DELIVERY_ENV[@]}"; do
    case "$setting" in HERALD_KAFKA__TOPIC=*) topic=${setting#HERALD_KAFKA__TOPIC=} ;; esac
  done
  local events="${HERALD_STATUS_EVENTS__TOPIC:-notification-events}"
  scripts/kafka.sh tool log-dirs --bootstrap-server "${BENCH_KAFKA_BROKERS:-$HERALD_KAFKA__BROKERS}" \
    --describe --topic-list "$topic,$topic.high,$events" 2>/dev/null | python3 -c '
import json, sys
events = sys.argv[1]
for line in sys.stdin:
    if line.startswith("{"):
        sizes = {"topics": 0, "events": 0}
        for broker in json.loads(line)["brokers"]:
            for directory in broker["logDirs"]:
                for partition in directory["partitions"]:
                    name = partition["partition"].rsplit("-", 1)[0]
                    sizes["events" if name == events else "topics"] += partition["size"]
        print(sizes["topics"], sizes["events"])
        break
else:
    sys.exit("kafka log-dirs printed no JSON")
' "$events" || fail "sizing: cannot read the topics' sizes from the brokers"
}
