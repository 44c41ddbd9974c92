# The `failover` scenario of scripts/bench.sh (sourced after scripts/lib/bench_delivery.sh and
# scripts/lib/kafka_cluster.sh): Herald on three KRaft brokers of its own (topics with three
# replicas, min.insync.replicas 2), a steady load (BENCH_FAILOVER_RATE deliveries/s) through a
# slow, sometimes failing simulator, in four phases of BENCH_FAILOVER_PHASE_SECONDS (30):
#   steady        all three brokers
#   leader-down   the leader of partition 0 killed (-9): a quorum stands
#   quorum-lost   a second broker killed: no record can be acknowledged; the API accepts into the
#                 outbox until outbox.max_unpublished (BENCH_FAILOVER_MAX_UNPUBLISHED), then 503
#   restored      both restarted
# Then, from PostgreSQL and the simulator's ledger: every stored notification final (delivered or
# dead-lettered), every 2xx stored, duplicates no more than the in-doubt attempts, and per phase
# the answers (bench-results/failover.json). Any of those broken fails the run.

FAILOVER_RATE="${BENCH_FAILOVER_RATE:-1000}"
FAILOVER_PHASE_SECONDS="${BENCH_FAILOVER_PHASE_SECONDS:-30}"
# Twenty seconds of the load: above what waits while writes pause for the lost leader (about 10 s,
# DESIGN.md "The Kafka cluster", longer on a busy machine), below what a phase without a quorum
# brings.
FAILOVER_MAX_UNPUBLISHED="${BENCH_FAILOVER_MAX_UNPUBLISHED:-$(( 20 * FAILOVER_RATE ))}"
FAILOVER_BATCH=10

run_failover_scenario() {
  kafka_cluster_start 3 || fail "failover: the three brokers did not start"
  local BENCH_KAFKA_BROKERS="$KAFKA_CLUSTER_BROKERS"
  delivery_setup failover HERALD_KAFKA__REPLICATION_FACTOR=3 HERALD_KAFKA__MIN_INSYNC_REPLICAS=2 \
    HERALD_OUTBOX__MAX_UNPUBLISHED="$FAILOVER_MAX_UNPUBLISHED"
  delivery_body "$OUT_DIR/failover-bodies.jsonl" "$FAILOVER_BATCH" 1 1000
  delivery_simulator '{"latency_ms": 50, "latency_jitter_ms": 30, "failure_rate": 0.03}'
  delivery_api 0
  delivery_worker 0
  wait_partitions_held "$(delivery_partitions)" 0
  local topic leader second phase started_at request_rate
  topic="$(printf '%s\n' "${DELIVERY_ENV[@]}" | sed -n 's/^HERALD_KAFKA__TOPIC=//p')"
  request_rate=$(( FAILOVER_RATE / FAILOVER_BATCH ))
  started_at="$(psql "$DELIVERY_DATABASE_URL" -qtAc "SELECT now()")"
  for phase in steady leader-down quorum-lost restored; do
    case "$phase" in
      leader-down)
        leader="$(kafka_cluster_leader "$topic" 0)"
        [ -n "$leader" ] || fail "failover: no leader of $topic/0"
        log "failover: killing broker $leader, the leader of $topic/0"
        kafka_cluster_kill "$leader" ;;
      quorum-lost)
        second=$(( leader % 3 + 1 ))
        log "failover: killing broker $second: one of three left, no quorum"
        kafka_cluster_kill "$second" ;;
      restored)
        log "failover: restarting brokers $leader and $second"
        kafka_cluster_restart "$leader"
        kafka_cluster_restart "$second" ;;
    esac
    log "failover: $phase, $FAILOVER_RATE deliveries/s for ${FAILOVER_PHASE_SECONDS}s"
    oha -z "${FAILOVER_PHASE_SECONDS}s" -q "$request_rate" -c "$CONNECTIONS" --latency-correction --no-tui \
      --output-format json -m POST -T application/json -Z "$OUT_DIR/failover-bodies.jsonl" \
      -H "Authorization: Bearer $API_KEY" "http://127.0.0.1:18082/v1/notifications/batch" \
      > "$OUT_DIR/oha-failover-$phase.json" || fail "failover: the generator exited with an error"
  done
  kafka_cluster_wait_brokers 3 || fail "failover: the restarted brokers did not rejoin"
  local stored final=0
  stored=$(psql "$DELIVERY_DATABASE_URL" -qtAc "SELECT count(*) FROM notifications WHERE created_at >= '$started_at'")
  log "failover: waiting until all $stored stored notifications are final"
  for _ in $(seq 1 "$DRAIN_SECONDS"); do
    final=$(psql "$DELIVERY_DATABASE_URL" -qtAc "SELECT count(*) FROM notification_states s JOIN notifications n USING (id)
      WHERE n.created_at >= '$started_at' AND s.status IN ('delivered', 'partially_delivered', 'failed')")
    [ "$final" -ge "$stored" ] && break
    sleep 1
  done
  delivery_report "$started_at" 0 "$FAILOVER_RATE" > "$OUT_DIR/failover-deliveries.json"
  psql "$DELIVERY_DATABASE_URL" -qtAc "SELECT json_build_object(
      'stored', (SELECT count(*) FROM notifications WHERE created_at >= '$started_at'),
      'final', $final,
      'sent', (SELECT count(*) FROM deliveries WHERE status = 'sent'),
      'dead_lettered', (SELECT count(*) FROM dead_letters),
      'in_doubt_attempts', (SELECT count(*) FROM delivery_attempts WHERE outcome = 'in_doubt'))" \
    > "$OUT_DIR/failover-ledger.json"
  curl -fsS "$DELIVERY_SIMULATOR/_sim/stats" > "$OUT_DIR/simulator-stats.json"
  stop_started
  kafka_cluster_stop
  python3 - "$OUT_DIR" "$FAILOVER_BATCH" <<'PY' || fail "failover: a promise was broken (above)"
import json, sys
out, batch = sys.argv[1], int(sys.argv[2])
phases = {}
for phase in ("steady", "leader-down", "quorum-lost", "restored"):
    data = json.load(open(f"{out}/oha-failover-{phase}.json"))
    codes = data.get("statusCodeDistribution", {})
    errors = {kind: n for kind, n in data.get("errorDistribution", {}).items() if kind != "aborted due to deadline"}
    p = data.get("latencyPercentiles") or {}
    phases[phase] = {
        "status_codes": codes, "errors": errors,
        "notifications_accepted": codes.get("202", 0) * batch,
        "latency_ms": {k: round(p[k] * 1000, 1) for k in ("p50", "p99") if p.get(k) is not None},
    }
ledger = json.load(open(f"{out}/failover-ledger.json"))
deliveries = json.load(open(f"{out}/failover-deliveries.json"))
twilio = json.load(open(f"{out}/simulator-stats.json"))["twilio"]
accepted = sum(p["notifications_accepted"] for p in phases.values())
result = {"phases": phases, "notifications_accepted": accepted, **ledger,
          "lost": ledger["stored"] - ledger["final"],
          "provider_messages": twilio["messages"], "provider_duplicates": twilio["duplicates"],
          "deliveries_per_second": deliveries["deliveries_per_second"],
          "accept_to_delivery_ms": deliveries["accept_to_delivery_ms"]}
json.dump(result, open(f"{out}/failover.json", "w"), indent=2)
print(f"{'phase':<13}{'2xx':>8}{'503':>8}{'other':>8}{'accepted':>10}{'p50 ms':>9}{'p99 ms':>9}")
for name, p in phases.items():
    codes = p["status_codes"]
    other = sum(n for code, n in codes.items() if code not in ("202", "503")) + sum(p["errors"].values())
    print(f"{name:<13}{codes.get('202', 0):>8}{codes.get('503', 0):>8}{other:>8}{p['notifications_accepted']:>10}"
          f"{p['latency_ms'].get('p50', '-'):>9}{p['latency_ms'].get('p99', '-'):>9}")
print(f"accepted {accepted}, stored {ledger['stored']}, final {ledger['final']} (lost {result['lost']}), "
      f"sent {ledger['sent']}, dead-lettered {ledger['dead_lettered']}, provider duplicates {twilio['duplicates']} "
      f"(in-doubt attempts {ledger['in_doubt_attempts']}); {deliveries['deliveries_per_second']} deliveries/s, "
      f"accept-to-delivery {deliveries['accept_to_delivery_ms']}")
broken = []
if result["lost"] != 0:
    broken.append(f"{result['lost']} stored notifications never became final")
if accepted > ledger["stored"]:
    broken.append(f"{accepted - ledger['stored']} accepted (2xx) notifications are not in PostgreSQL")
if twilio["untracked_references"] != 0:
    broken.append("the simulator's reference table overflowed: duplicates cannot be proven absent")
if twilio["duplicates"] > ledger["in_doubt_attempts"]:
    broken.append(f"{twilio['duplicates']} duplicates beyond the in-doubt set ({ledger['in_doubt_attempts']})")
for name in ("steady", "leader-down"):
    codes = phases[name]["status_codes"]
    if any(code != "202" for code in codes):
        broken.append(f"{name}: answers other than 202 while a quorum stood: {codes}")
for name, p in phases.items():
    if any(code.startswith("5") and code != "503" for code in p["status_codes"]):
        broken.append(f"{name}: a 5xx other than 503: {p['status_codes']}")
for problem in broken:
    print(f"BROKEN: {problem}", file=sys.stderr)
sys.exit(1 if broken else 0)
PY
}
