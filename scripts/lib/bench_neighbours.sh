# The `neighbours` scenario of scripts/bench.sh (sourced after scripts/lib/bench_delivery.sh):
# tenant B's latency alone and beside each attack tenant A can make (a high-priority flood at ten
# times B's rate, webhooks to a tarpit, trickling request bodies, bogus API keys, slow
# recipient-filtered reads, placeholder bombs, event subscriptions to a tarpit, a request flood),
# as a ratio
# (bench-results/neighbours.json; scripts/lib/bench_neighbours.py says how each is made and
# measured). One API and one worker on a database, topic and group of the scenario's own; the
# SMS lane limited to NEIGHBOURS_SMS_RATE calls/s, so that A's flood is twice what it can send.

NEIGHBOURS_PHASE_SECONDS="${BENCH_NEIGHBOURS_PHASE_SECONDS:-${DURATION%s}}"
NEIGHBOURS_B_RATE="${BENCH_NEIGHBOURS_B_RATE:-100}"
NEIGHBOURS_SMS_RATE="${BENCH_NEIGHBOURS_SMS_RATE:-500}"
NEIGHBOURS_LATENCY_MS=50

run_neighbours_scenario() {
  delivery_setup neighbours HERALD_PROVIDERS__TWILIO__REQUESTS_PER_SECOND="$NEIGHBOURS_SMS_RATE"
  local attacker_key
  attacker_key="$(env "${DELIVERY_ENV[@]}" HERALD_API_KEY=hk_bench_attacker_key "$BENCH_BIN/herald-api" \
    ensure-tenant --name attacker)"
  delivery_simulator "{\"latency_ms\": $NEIGHBOURS_LATENCY_MS}"
  curl -fsS -X PUT -H 'Content-Type: application/json' -d "{\"latency_ms\": $NEIGHBOURS_LATENCY_MS}" \
    "$DELIVERY_SIMULATOR/_sim/config/webhook" >/dev/null || fail "neighbours: the simulator refused a webhook latency"
  curl -fsS -X PUT -H 'Content-Type: application/json' \
    -d '{"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}' "$DELIVERY_SIMULATOR/_sim/webhook-endpoints/neighbours" \
    >/dev/null || fail "neighbours: the simulator refused the webhook endpoint"
  delivery_api 0
  delivery_worker 0
  wait_partitions_held "$(delivery_partitions)" 0
  python3 scripts/lib/bench_neighbours.py --api http://127.0.0.1:18082 --key-a "$attacker_key" --key-b "$API_KEY" \
    --simulator "$DELIVERY_SIMULATOR" --database-url "$DELIVERY_DATABASE_URL" --out-dir "$OUT_DIR" \
    --phase-seconds "$NEIGHBOURS_PHASE_SECONDS" --b-rate "$NEIGHBOURS_B_RATE" --b-read-rate 20 \
    --latency-ms "$NEIGHBOURS_LATENCY_MS" --drain-seconds "$DRAIN_SECONDS" \
    || fail "neighbours: tenant B was not served beside an attack (above)"
  stop_started
}
