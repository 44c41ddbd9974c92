# The `scaling` scenario of scripts/bench.sh (sourced after scripts/lib/bench_delivery.sh): the same
# topic and consumer group driven through 1, 2 and 4 workers and 1 and 2 API replicas in turn
# (BENCH_SCALING_SHAPES, "APIS:WORKERS"), each at BENCH_SCALING_RATE deliveries/s for
# BENCH_DURATION, and per shape the deliveries/s, accept-to-delivery percentiles and the CPU each
# process used per delivery (bench-results/scaling.json). An operator sizes a deployment from the
# CPU per delivery of each kind of process (docs/DEPLOY.md).

SCALING_SHAPES="${BENCH_SCALING_SHAPES:-1:1 1:2 1:4 2:2}"
SCALING_RATE="${BENCH_SCALING_RATE:-3000}"

run_scaling_scenario() {
  delivery_setup scaling
  local batch_size=100
  delivery_body "$OUT_DIR/scaling-body.json" "$batch_size" 1
  delivery_simulator
  local shape first=yes
  for shape in $SCALING_SHAPES; do
    run_scaling_shape "${shape%:*}" "${shape#*:}" "$first"
    first=no
  done
  stop_started
  python3 - "$OUT_DIR" $SCALING_SHAPES <<'PY'
import json, sys
out, shapes = sys.argv[1], sys.argv[2:]
results = [json.load(open(f"{out}/scaling-{shape.replace(':', 'x')}.json")) for shape in shapes]
json.dump({"shapes": results}, open(f"{out}/scaling.json", "w"), indent=2)
print(f"{'apis':>5}{'workers':>8}{'deliv/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
      f"{'api us':>9}{'worker us':>10}{'broker us':>10}{'pg us':>8}{'sim us':>8}{'total us':>10}")
for r in results:
    cpu = r["cpu_us_per_delivery"]
    kind = lambda prefix: round(sum(v for k, v in cpu.items() if k.startswith(prefix) and v is not None), 1)
    print(f"{r['apis']:>5}{r['workers']:>8}{r['deliveries_per_second']:>10}"
          f"{r['accept_to_delivery_ms']['p50']:>9}{r['accept_to_delivery_ms']['p99']:>9}"
          f"{kind('api'):>9}{kind('worker'):>10}{kind('broker'):>10}{kind('postgres'):>8}{kind('simulator'):>8}"
          f"{cpu['total']:>10}")
print(f"written to {out}/scaling.json")
PY
}

# run_scaling_shape APIS WORKERS WARM_UP: one shape, from a group whose earlier members have left;
# the first (WARM_UP=yes) warms the broker and the database up first.
run_scaling_shape() {
  local apis=$1 workers=$2 warm_up=$3 index started_at accepted
  local -a shape_pids=() worker_numbers=() cpu_targets=() generators=() reports=()
  local name="scaling-${apis}x${workers}"
  log "$name: $apis API(s), $workers worker(s), $SCALING_RATE deliveries/s for $DURATION"
  for index in $(seq 0 $((apis - 1))); do
    delivery_api "$index"
    shape_pids+=("$SPAWNED_PID")
    cpu_targets+=("api-$((index + 1))=$SPAWNED_PID")
  done
  for index in $(seq 0 $((workers - 1))); do
    delivery_worker "$index"
    shape_pids+=("$SPAWNED_PID")
    worker_numbers+=("$index")
    cpu_targets+=("worker-$((index + 1))=$SPAWNED_PID")
  done
  wait_partitions_held "$(delivery_partitions)" "${worker_numbers[@]}"
  local per_api_rate
  per_api_rate=$(python3 -c "print(max(1, round($SCALING_RATE / 100 / $apis)))")
  if [ "$warm_up" = yes ]; then
    delivery_warm_up scaling "http://127.0.0.1:18082/v1/notifications/batch" "$per_api_rate" \
      "$OUT_DIR/scaling-body.json" 100
  fi
  cpu_targets+=(simulator="$SIMULATOR_PID" postgres="port:$(postgres_port)")
  cpu_targets+=($(broker_cpu_targets "${BENCH_KAFKA_BROKERS:-$HERALD_KAFKA__BROKERS}"))
  python3 scripts/lib/processes.py cpu "${cpu_targets[@]}" > "$OUT_DIR/$name-cpu-before.json"
  started_at="$(psql "$DELIVERY_DATABASE_URL" -qtAc "SELECT now()")"
  # One generator per API, each its share of the rate (batches of 100 notifications).
  for index in $(seq 0 $((apis - 1))); do
    oha -z "$DURATION" -q "$per_api_rate" -c "$CONNECTIONS" --latency-correction --no-tui --output-format json \
      -m POST -T application/json -D "$OUT_DIR/scaling-body.json" -H "Authorization: Bearer $API_KEY" \
      "http://127.0.0.1:$((18082 + index))/v1/notifications/batch" > "$OUT_DIR/oha-$name-$index.json" &
    generators+=($!)
    reports+=("$OUT_DIR/oha-$name-$index.json")
  done
  local generator
  for generator in "${generators[@]}"; do wait "$generator" || fail "$name: a generator exited with an error"; done
  accepted=$(( $(accepted_notifications "${reports[@]}") * 100 ))
  [ "$accepted" -gt 0 ] || fail "$name: nothing was accepted"
  delivery_drain "$started_at" "$accepted" "$name"
  python3 scripts/lib/processes.py cpu "${cpu_targets[@]}" > "$OUT_DIR/$name-cpu-after.json"
  delivery_report "$started_at" "$accepted" "$SCALING_RATE" > "$OUT_DIR/$name.json"
  add_cpu_per_delivery "$OUT_DIR/$name.json" "$OUT_DIR/$name-cpu-before.json" "$OUT_DIR/$name-cpu-after.json"
  python3 - "$OUT_DIR/$name.json" "$apis" "$workers" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
result["apis"], result["workers"] = int(sys.argv[2]), int(sys.argv[3])
json.dump(result, open(sys.argv[1], "w"))
PY
  # The workers leave the group as they stop: the next shape's join at once.
  stop_pids "${shape_pids[@]}"
}
