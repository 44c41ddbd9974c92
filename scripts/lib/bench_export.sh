# The `export` bench scenario (sourced by scripts/bench.sh): BENCH_EXPORT_ROWS (default 1,000,000)
# notifications written straight into a database of the scenario's own, one API, and
# `GET /v1/notifications/export` read to the end by curl, NDJSON then CSV, while the API's resident
# memory is sampled every 0.2 s: rows, bytes, seconds, rows/s, and the API's RSS before, at its
# peak and after each export (bench-results/export.json). Memory must stay flat: an export holds a
# page of 1,000 rows and two written pages, whatever the rows' count.

# export_rss PID: the process's resident set in KiB.
export_rss() {
  awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# export_run NAME ACCEPT API_PID: one export read to the end while sampling RSS; prints its JSON.
export_run() {
  local name=$1 accept=$2 api_pid=$3 before peak rss started finished bytes rows
  before=$(export_rss "$api_pid")
  peak=$before
  started=$(date +%s.%N)
  curl -fsS -N -H "Authorization: Bearer $API_KEY" -H "Accept: $accept" \
    -o "$OUT_DIR/export-$name.out" http://127.0.0.1:18082/v1/notifications/export &
  local curl_pid=$!
  : > "$OUT_DIR/export-$name.samples"
  while kill -0 "$curl_pid" 2>/dev/null; do
    rss=$(export_rss "$api_pid")
    [ "$rss" -gt "$peak" ] && peak=$rss
    echo "$(stat -c %s "$OUT_DIR/export-$name.out" 2>/dev/null || echo 0) $rss" >> "$OUT_DIR/export-$name.samples"
    sleep 0.2
  done
  wait "$curl_pid" || fail "export ($name): curl failed"
  finished=$(date +%s.%N)
  bytes=$(stat -c %s "$OUT_DIR/export-$name.out")
  rows=$(wc -l < "$OUT_DIR/export-$name.out")
  [ "$accept" = text/csv ] && rows=$(( rows - 1 ))
  rm -f "$OUT_DIR/export-$name.out"
  python3 - "$name" "$rows" "$bytes" "$started" "$finished" "$before" "$peak" "$(export_rss "$api_pid")" \
    "$OUT_DIR/export-$name.samples" <<'PY'
import json, sys
name, rows, size, started, finished, before, peak, after, samples_file = sys.argv[1:]
seconds = float(finished) - float(started)
samples = [tuple(map(int, line.split())) for line in open(samples_file) if line.strip()]
# RSS when the client had received each quarter of the export: flat means no growth with the rows.
by_quarter = {}
for quarter in (1, 2, 3, 4):
    reached = [rss for received, rss in samples if received >= int(size) * quarter / 4 * 0.98]
    by_quarter[f"{quarter * 25}%"] = reached[0] if reached else None
print(json.dumps({"format": name, "rows": int(rows), "bytes": int(size), "seconds": round(seconds, 1),
                  "rows_per_second": round(int(rows) / seconds), "rss_kib": {
                      "before": int(before), "peak": int(peak), "after": int(after),
                      "peak_growth": int(peak) - int(before), "at_received": by_quarter}}))
PY
  rm -f "$OUT_DIR/export-$name.samples"
}

run_export_scenario() {
  local rows=${BENCH_EXPORT_ROWS:-1000000}
  delivery_setup export
  log "export: writing $rows notifications"
  # UUIDv7 ids a millisecond apart, ending now: what the group commit would have written.
  psql "$DELIVERY_DATABASE_URL" -qc "
    INSERT INTO notifications (id, tenant_id, user_ids, channels, subject, body, priority, request_hash, created_at)
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
             substring(int8send((extract(epoch FROM at) * 1000)::bigint) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid,
           t.id, ARRAY['bench-recipient-' || (i % 100000)], '{sms}', 'Pressure alert', 'Pressure {{value}}',
           'normal', '\\x00', at
    FROM tenants t, generate_series(1, $rows) AS i,
         LATERAL (SELECT now() - (($rows - i) * interval '1 millisecond') AS at) AS times
    WHERE t.name = 'bench';
    INSERT INTO notification_states (id, tenant_id, status, deliveries_expected, deliveries_sent, updated_at)
    SELECT id, tenant_id, 'delivered', 1, 1, created_at FROM notifications;"
  psql "$DELIVERY_DATABASE_URL" -qc "VACUUM ANALYZE notifications, notification_states"
  delivery_api 0
  local api_pid=$SPAWNED_PID
  local ndjson csv
  ndjson=$(export_run ndjson application/x-ndjson "$api_pid")
  csv=$(export_run csv text/csv "$api_pid")
  printf '%s\n%s\n' "$ndjson" "$csv" > "$OUT_DIR/export-runs.jsonl"
  python3 - "$OUT_DIR/export-runs.jsonl" "$OUT_DIR/export.json" <<'PY'
import json, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
json.dump({"exports": runs}, open(sys.argv[2], "w"))
for run in runs:
    rss = run["rss_kib"]
    quarters = ", ".join(f"{share} {kib / 1024:.1f}" for share, kib in rss["at_received"].items() if kib)
    print(f"export {run['format']:<7} {run['rows']:>9} rows {run['bytes'] / 1e6:8.1f} MB {run['seconds']:6.1f} s "
          f"{run['rows_per_second']:>8} rows/s  API RSS {rss['before'] / 1024:.1f} MiB before, "
          f"{rss['peak'] / 1024:.1f} peak, {rss['after'] / 1024:.1f} after; by share received: {quarters}")
PY
  rm -f "$OUT_DIR/export-runs.jsonl"
  python3 - "$OUT_DIR/export.json" "$rows" <<'PY' || fail "export: rows missing or memory not flat"
import json, sys
runs, expected = json.load(open(sys.argv[1]))["exports"], int(sys.argv[2])
for run in runs:
    if run["rows"] != expected:
        sys.exit(f"{run['format']}: {run['rows']} of {expected} rows")
    if run["rss_kib"]["peak_growth"] > 64 * 1024:
        sys.exit(f"{run['format']}: the API grew by {run['rss_kib']['peak_growth']} KiB during the export")
PY
  stop_started
}
