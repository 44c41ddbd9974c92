#!/usr/bin/env bash
# `make run`: the whole system on this machine, in the foreground. Ctrl-C or SIGTERM stops
# everything this script started (services that were already running are left alone), in order:
# the API and the worker drain first (the worker leaves its consumer group), then the simulator,
# then the broker and the databases. Every process runs in a session of its own (setsid), so the
# terminal's Ctrl-C reaches only this script, which stops them in that order.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

started_services="$(mktemp)"
HERALD_STARTED_FILE="$started_services" scripts/services.sh start
eval "$(scripts/services.sh env)"
herald_pids=()
simulator_pids=()
stop_and_wait() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}
cleanup() {
  trap - INT TERM HUP EXIT
  echo "[run] stopping: API and worker first"
  stop_and_wait "${herald_pids[@]}"
  stop_and_wait "${simulator_pids[@]}"
  echo "[run] stopping the services this run started"
  # Only what this run started; services that were already running stay up.
  scripts/services.sh stop $(cat "$started_services")
  rm -f "$started_services"
}
trap cleanup INT TERM HUP EXIT

cargo build --release --bin herald-api --bin herald-worker --bin herald-provider-sim
api=target/release/herald-api
$api migrate
$api create-topics
api_key="$($api ensure-tenant --name dev)"

# The provider simulator stands in for SendGrid and Twilio; the worker's defaults point at it.
simulator_address="${HERALD_SIM_LISTEN:-127.0.0.1:9090}"
HERALD_SIM_LISTEN="$simulator_address" HERALD_SIM_SENDGRID_LATENCY_MS="${HERALD_SIM_SENDGRID_LATENCY_MS:-20}" \
  HERALD_SIM_TWILIO_LATENCY_MS="${HERALD_SIM_TWILIO_LATENCY_MS:-20}" setsid target/release/herald-provider-sim &
simulator_pids+=($!)
export HERALD_SENDGRID_BASE_URL="${HERALD_SENDGRID_BASE_URL:-http://$simulator_address}"
export HERALD_TWILIO_BASE_URL="${HERALD_TWILIO_BASE_URL:-http://$simulator_address}"

setsid $api serve &
herald_pids+=($!)
setsid target/release/herald-worker &
herald_pids+=($!)
port="${HERALD_SERVER__PORT:-8080}"
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

cat <<INFO

Herald is running:
  API          http://127.0.0.1:$port   (OpenAPI: /openapi.json, metrics: /metrics, readiness: /readyz)
  PostgreSQL   $HERALD_DATABASE__URL
  Redis        $HERALD_REDIS__URL
  Kafka        $HERALD_KAFKA__BROKERS (tansu), topic notifications
  Worker       metrics http://127.0.0.1:${HERALD_WORKER__METRICS_PORT:-9464}/metrics
  Simulator    http://$simulator_address   (SendGrid /v3/mail/send, Twilio Messages; inspect /_sim/stats)
  API key      $api_key   (tenant "dev"; set HERALD_API_KEY to choose it)

  curl -X PUT http://127.0.0.1:$port/v1/users/u1 \\
    -H "Authorization: Bearer $api_key" -H 'Content-Type: application/json' \\
    -d '{"email":"ops@example.com","phone":"+14155550100"}'
  curl -X POST http://127.0.0.1:$port/v1/notifications \\
    -H "Authorization: Bearer $api_key" -H 'Content-Type: application/json' \\
    -d '{"user_ids":["u1"],"channels":["email","sms"],"content":{"subject":"Alert","body":"Pressure {{value}}"},"data":{"value":7}}'
  curl http://127.0.0.1:$port/v1/notifications/<id> -H "Authorization: Bearer $api_key"

Ctrl-C stops everything.
INFO
# Runs until Ctrl-C, SIGTERM, or one of the parts exits (then everything stops).
wait -n "${herald_pids[@]}" "${simulator_pids[@]}"
echo "[run] a component exited; stopping the rest"
