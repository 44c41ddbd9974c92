# The `rebalance` scenario of scripts/bench.sh (sourced after scripts/lib/bench_delivery.sh): the
# consumer group protocols compared under a steady load (BENCH_REBALANCE_RATE deliveries/s). For
# each of BENCH_REBALANCE_PROTOCOLS (kafka.group_protocol: classic, consumer), a fresh topic and
# group, BENCH_REBALANCE_MEMBERS workers (default 1) holding its partitions, then:
#   +10 s  a worker joins            +30 s  it leaves (SIGTERM: it leaves the group)
#   +45 s  another worker joins      +65 s  it is killed (-9: the group learns of it only when its
#                                            session times out)
# Every 50 ms each worker's /readyz says how many partitions it holds; scripts/lib/bench_rebalance.py
# reports per event how long some partition had no owner, and the latency of the notifications
# accepted just after it (bench-results/rebalance.json).

REBALANCE_RATE="${BENCH_REBALANCE_RATE:-1000}"
REBALANCE_PROTOCOLS="${BENCH_REBALANCE_PROTOCOLS:-classic consumer}"
REBALANCE_MEMBERS="${BENCH_REBALANCE_MEMBERS:-1}"
# Long enough for the slowest session timeout to notice the kill (KIP-848's broker default, 45 s).
REBALANCE_LOAD_SECONDS=130

run_rebalance_scenario() {
  local protocol
  for protocol in $REBALANCE_PROTOCOLS; do
    run_rebalance_protocol "$protocol"
  done
  python3 - "$OUT_DIR" $REBALANCE_PROTOCOLS <<'PY'
import json, sys
out, protocols = sys.argv[1], sys.argv[2:]
json.dump({p: json.load(open(f"{out}/rebalance-{p}.json")) for p in protocols},
          open(f"{out}/rebalance.json", "w"), indent=2)
print(f"written to {out}/rebalance.json")
PY
}

run_rebalance_protocol() {
  local protocol=$1 started_at events poller generator
  delivery_setup "rebalance-$protocol" HERALD_KAFKA__GROUP_PROTOCOL="$protocol"
  delivery_body "$OUT_DIR/rebalance-bodies.jsonl" 10 1 1000
  delivery_simulator
  delivery_api 0
  local member members=() ports=()
  for member in $(seq 0 $((REBALANCE_MEMBERS + 1))); do ports+=($((19464 + member))); done
  for member in $(seq 0 $((REBALANCE_MEMBERS - 1))); do
    delivery_worker "$member"
    members+=("$member")
  done
  wait_partitions_held "$(delivery_partitions)" "${members[@]}"
  events="$OUT_DIR/rebalance-$protocol-events.txt"
  : > "$events"
  python3 scripts/lib/bench_rebalance.py poll "$OUT_DIR/rebalance-$protocol-polls.jsonl" "${ports[@]}" &
  poller=$!
  started_at="$(psql "$DELIVERY_DATABASE_URL" -qtAc "SELECT now()")"
  log "rebalance ($protocol): $REBALANCE_RATE deliveries/s for ${REBALANCE_LOAD_SECONDS}s; workers join, leave, die"
  oha -z "${REBALANCE_LOAD_SECONDS}s" -q $(( REBALANCE_RATE / 10 )) -c "$CONNECTIONS" --latency-correction --no-tui \
    --output-format json -m POST -T application/json -Z "$OUT_DIR/rebalance-bodies.jsonl" \
    -H "Authorization: Bearer $API_KEY" "http://127.0.0.1:18082/v1/notifications/batch" \
    > "$OUT_DIR/oha-rebalance-$protocol.json" &
  generator=$!
  local joining leaving
  sleep 10
  rebalance_event "$events" join
  delivery_worker "$REBALANCE_MEMBERS"
  leaving=$SPAWNED_PID
  sleep 20
  rebalance_event "$events" leave
  stop_pids "$leaving"
  sleep 15
  rebalance_event "$events" join-again
  delivery_worker $((REBALANCE_MEMBERS + 1))
  joining=$SPAWNED_PID
  sleep 20
  rebalance_event "$events" kill
  kill -9 "$joining"
  # Reaped here, quietly: bash would otherwise report the killed job on its own.
  wait "$joining" 2>/dev/null || true
  wait "$generator" || fail "rebalance ($protocol): the generator exited with an error"
  kill -TERM "$poller"
  wait "$poller" || true
  local accepted
  accepted=$(( $(accepted_notifications "$OUT_DIR/oha-rebalance-$protocol.json") * 10 ))
  delivery_drain "$started_at" "$accepted" "rebalance ($protocol)"
  psql "$DELIVERY_DATABASE_URL" -qc "COPY (SELECT extract(epoch FROM n.created_at), extract(epoch FROM d.updated_at)
      FROM deliveries d JOIN notifications n ON n.id = d.notification_id
      WHERE n.created_at >= '$started_at' AND d.status = 'sent') TO STDOUT WITH CSV" \
    > "$OUT_DIR/rebalance-$protocol-deliveries.csv"
  stop_started
  python3 scripts/lib/bench_rebalance.py report --polls "$OUT_DIR/rebalance-$protocol-polls.jsonl" \
    --events "$events" --deliveries "$OUT_DIR/rebalance-$protocol-deliveries.csv" \
    --partitions "$(delivery_partitions)" --protocol "$protocol" --out "$OUT_DIR/rebalance-$protocol.json" \
    || fail "rebalance ($protocol): a rebalance did not settle"
}

# rebalance_event FILE NAME: when NAME happened (epoch seconds, this host's clock, as the poller's).
rebalance_event() {
  printf '%s %s\n' "$(date +%s.%N)" "$2" >> "$1"
}
