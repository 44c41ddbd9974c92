#!/usr/bin/env bash
# `make run`: the whole system on this machine, in the foreground. Ctrl-C or SIGTERM stops
# everything this script started (services that were already running are left alone).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

scripts/services.sh start
eval "$(scripts/services.sh env)"
started_pids=()
cleanup() {
  trap - INT TERM EXIT
  echo "[run] stopping"
  for pid in "${started_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${started_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  scripts/services.sh stop
}
trap cleanup INT TERM EXIT

cargo build --release --bin herald-api
api=target/release/herald-api
$api migrate
$api create-topics
api_key="$($api ensure-tenant --name dev)"

$api serve &
started_pids+=($!)
port="${HERALD_SERVER__PORT:-8080}"
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

cat <<INFO

Herald is running:
  API          http://127.0.0.1:$port   (OpenAPI: /openapi.json, metrics: /metrics, readiness: /readyz)
  PostgreSQL   $HERALD_DATABASE__URL
  Redis        $HERALD_REDIS__URL
  Kafka        $HERALD_KAFKA__BROKERS (tansu), topic notifications
  API key      $api_key   (tenant "dev"; set HERALD_API_KEY to choose it)

  curl -X POST http://127.0.0.1:$port/v1/notifications \\
    -H "Authorization: Bearer $api_key" -H 'Content-Type: application/json' \\
    -d '{"user_ids":["u1"],"channels":["sms"],"content":{"body":"Pressure {{value}}"},"data":{"value":7}}'

Ctrl-C stops everything.
INFO
wait "${started_pids[@]}"
