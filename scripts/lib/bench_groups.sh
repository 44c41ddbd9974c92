# The `groups` bench scenario (sourced by scripts/bench.sh after bench_delivery.sh): one notification
# to a group of BENCH_GROUP_MEMBERS (default 100,000) members, fanned out by the worker, beside the
# same recipients named in plain notifications (100 notifications of 1,000 `user_ids` each, posted at
# once), in the same run, through the same API and worker: deliveries/s from acceptance to the last
# delivery and accept-to-delivery percentiles for each (bench-results/groups.json). After a plain
# warm-up, the plain run goes first and again last, so the group's figure stands between two
# references of the same sitting.

# groups_phase NAME PATH BODY_FILE: posts the body to PATH (a batch of plain notifications, or one
# notification to the group), then waits until its GROUP_MEMBERS deliveries are sent and every group
# expanded; prints the phase's JSON.
groups_phase() {
  local name=$1 path=$2 body=$3 started_at expected=$GROUP_MEMBERS
  started_at="$(psql "$DELIVERY_DATABASE_URL" -qtAc "SELECT now()")"
  curl -fsS -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
    --data-binary "@$body" "http://127.0.0.1:18082$path" > /dev/null ||
    fail "groups ($name): the request was refused"
  log "groups ($name): waiting for $expected deliveries"
  local sent=0 pending=1
  for _ in $(seq 1 "$DRAIN_SECONDS"); do
    read -r sent pending < <(psql "$DELIVERY_DATABASE_URL" -qtAc "
      SELECT coalesce(sum(deliveries_sent), 0), coalesce(sum(expansions_pending), 0)
      FROM notification_states WHERE updated_at >= '$started_at'" | tr '|' ' ')
    [ "$sent" -ge "$expected" ] && [ "$pending" -eq 0 ] && break
    sleep 1
  done
  [ "$sent" -ge "$expected" ] || fail "groups ($name): only $sent of $expected deliveries sent after ${DRAIN_SECONDS}s"
  psql "$DELIVERY_DATABASE_URL" -qtAc "
    WITH run AS (
      SELECT n.created_at AS accepted_at, d.updated_at AS sent_at
      FROM deliveries d JOIN notifications n ON n.id = d.notification_id
      WHERE n.created_at >= '$started_at' AND d.status = 'sent')
    SELECT json_build_object(
      'phase', '$name',
      'deliveries_sent', count(*),
      'window_seconds', round(extract(epoch FROM max(sent_at) - min(accepted_at))::numeric, 2),
      'deliveries_per_second', round((count(*) / nullif(extract(epoch FROM max(sent_at) - min(accepted_at)), 0))::numeric, 1),
      'accept_to_delivery_ms', json_build_object(
        'p50', round((percentile_cont(0.50) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - accepted_at)) * 1000)::numeric, 1),
        'p99', round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - accepted_at)) * 1000)::numeric, 1),
        'max', round((max(extract(epoch FROM sent_at - accepted_at)) * 1000)::numeric, 1)))
    FROM run"
}

run_groups_scenario() {
  GROUP_MEMBERS=${BENCH_GROUP_MEMBERS:-100000}
  [ "$GROUP_MEMBERS" -le 100000 ] && [ $(( GROUP_MEMBERS % 1000 )) -eq 0 ] ||
    fail "BENCH_GROUP_MEMBERS must be a multiple of 1000, at most 100000 (the bench recipients)"
  delivery_setup groups
  delivery_simulator
  delivery_api 0
  delivery_worker 0
  wait_partitions_held "$(delivery_partitions)" 0

  # The group, a page of 1,000 members per request, through the API.
  curl -fsS -X PUT -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
    -d '{"name": "everyone"}' http://127.0.0.1:18082/v1/groups/everyone > /dev/null || fail "groups: PUT group"
  python3 - "$GROUP_MEMBERS" "$OUT_DIR" <<'PY'
import json, sys
members, out = int(sys.argv[1]), sys.argv[2]
for page in range(members // 1000):
    ids = [f"bench-recipient-{i}" for i in range(page * 1000, (page + 1) * 1000)]
    with open(f"{out}/groups-members-{page}.json", "w") as f:
        json.dump({"user_ids": ids}, f)
# The plain reference: the same recipients, 1,000 named per notification, 100 per batch request.
notifications = [{"user_ids": [f"bench-recipient-{i}" for i in range(n * 1000, (n + 1) * 1000)],
                  "channels": ["sms"], "content": {"body": "Pressure {{value}}"}, "data": {"value": 7}}
                 for n in range(members // 1000)]
with open(f"{out}/groups-plain.json", "w") as f:
    json.dump({"notifications": notifications}, f)
with open(f"{out}/groups-group.json", "w") as f:
    json.dump({"group_ids": ["everyone"], "channels": ["sms"], "content": {"body": "Pressure {{value}}"},
               "data": {"value": 7}}, f)
PY
  local page
  for page in $(seq 0 $(( GROUP_MEMBERS / 1000 - 1 ))); do
    curl -fsS -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
      --data-binary "@$OUT_DIR/groups-members-$page.json" \
      http://127.0.0.1:18082/v1/groups/everyone/members > /dev/null || fail "groups: members page $page"
  done
  rm -f "$OUT_DIR"/groups-members-*.json

  # A first plain run, not counted: the broker compiles its hot paths and the pools open in it.
  groups_phase warm-up /v1/notifications/batch "$OUT_DIR/groups-plain.json" > /dev/null
  local -a phases=()
  phases+=("$(groups_phase plain-before /v1/notifications/batch "$OUT_DIR/groups-plain.json")")
  phases+=("$(groups_phase group /v1/notifications "$OUT_DIR/groups-group.json")")
  phases+=("$(groups_phase plain-after /v1/notifications/batch "$OUT_DIR/groups-plain.json")")
  printf '%s\n' "${phases[@]}" > "$OUT_DIR/groups-phases.jsonl"
  python3 - "$OUT_DIR/groups-phases.jsonl" "$OUT_DIR/groups.json" <<'PY'
import json, sys
phases = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
by = {phase["phase"]: phase for phase in phases}
reference = (by["plain-before"]["deliveries_per_second"] + by["plain-after"]["deliveries_per_second"]) / 2
result = {"members": by["group"]["deliveries_sent"], "phases": phases,
          "group_to_plain_ratio": round(by["group"]["deliveries_per_second"] / reference, 2)}
json.dump(result, open(sys.argv[2], "w"))
for phase in phases:
    latency = phase["accept_to_delivery_ms"]
    print(f"groups {phase['phase']:<13} {phase['deliveries_per_second']:>9}/s  "
          f"p50 {latency['p50']} ms  p99 {latency['p99']} ms")
print(f"group fan-out / plain (mean of the two references): {result['group_to_plain_ratio']}")
PY
  rm -f "$OUT_DIR/groups-phases.jsonl"
  rm -f "$OUT_DIR"/groups-plain.json "$OUT_DIR"/groups-group.json
  check_simulator_ledger_count "$(( 4 * GROUP_MEMBERS ))" groups
  stop_started
}

# check_simulator_ledger_count EXPECTED NAME: the simulator received EXPECTED messages and none twice.
check_simulator_ledger_count() {
  curl -fsS "$DELIVERY_SIMULATOR/_sim/stats" > "$OUT_DIR/simulator-stats.json"
  python3 - "$1" "$OUT_DIR/simulator-stats.json" <<'PY' || fail "$2: duplicates or missing messages at the provider"
import json, sys
expected = int(sys.argv[1])
twilio = json.load(open(sys.argv[2]))["twilio"]
print(f"simulator: messages {twilio['messages']} of {expected}, duplicates {twilio['duplicates']}")
if twilio["untracked_references"] != 0 or twilio["duplicates"] != 0 or twilio["messages"] != expected:
    sys.exit(1)
PY
}
