#!/usr/bin/env bash
# `make run`: the whole system on this machine, in the foreground. Ctrl-C or SIGTERM stops
# everything this script started (services that were already running are left alone), in order:
# the API and the worker drain first (the worker leaves its consumer group), then the simulator,
# then the broker and the databases. Every process runs in a session of its own (setsid), so the
# terminal's Ctrl-C reaches only this script, which stops them in that order.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
source scripts/lib/stack.sh

started_services="$(mktemp)"
cleanup() {
  trap - INT TERM HUP EXIT
  stack_prometheus_stop
  echo "[run] stopping: API and worker first"
  stack_stop
  echo "[run] stopping the services this run started"
  # Only what this run started; services that were already running stay up.
  scripts/services.sh stop-started "$started_services"
}
trap cleanup INT TERM HUP EXIT
HERALD_STARTED_FILE="$started_services" scripts/services.sh start
eval "$(scripts/services.sh env)"

stack_prometheus_install || echo "[run] could not install prometheus (Debian): Herald runs without it"
stack_build
stack_start
# Prometheus scraping the API and the worker with the alert rules loaded. The simulator has 9090.
prometheus_port="${HERALD_PROMETHEUS_PORT:-9091}"
if ! command -v prometheus >/dev/null; then
  prometheus_line="not started (prometheus is not installed)"
elif (exec 3<>"/dev/tcp/127.0.0.1/$prometheus_port") 2>/dev/null; then
  echo "[run] port $prometheus_port is taken: not starting Prometheus (set HERALD_PROMETHEUS_PORT)"
  prometheus_line="not started (port $prometheus_port taken; set HERALD_PROMETHEUS_PORT)"
else
  stack_prometheus_start "${HERALD_RUN_DIR:-/tmp/herald-run}/prometheus" "$prometheus_port" 5s
  prometheus_line="$STACK_PROMETHEUS_URL   (scrapes the API and the worker every 5s, rules of ops/prometheus; pages: /classic/targets, /classic/alerts)"
fi

cat <<INFO

Herald is running:
  API          $STACK_API_URL   (OpenAPI: /openapi.json, metrics: /metrics, readiness: /readyz)
  PostgreSQL   $HERALD_DATABASE__URL
  Redis        $HERALD_REDIS__URL
  Kafka        $HERALD_KAFKA__BROKERS (Apache Kafka, log ${HERALD_RUN_DIR:-/tmp/herald-run}/kafka.log), topic ${HERALD_KAFKA__TOPIC:-notifications}
  Worker       $STACK_WORKER_URL/metrics, readiness $STACK_WORKER_URL/readyz
  Simulator    $STACK_SIMULATOR_URL   (SendGrid /v3/mail/send, Twilio Messages; inspect /_sim/stats)
  Prometheus   $prometheus_line
  API key      $STACK_API_KEY   (tenant "dev"; set HERALD_API_KEY to choose it)

  curl -X PUT $STACK_API_URL/v1/users/u1 \\
    -H "Authorization: Bearer $STACK_API_KEY" -H 'Content-Type: application/json' \\
    -d '{"email":"ops@example.com","phone":"+14155550100"}'
  curl -X POST $STACK_API_URL/v1/notifications \\
    -H "Authorization: Bearer $STACK_API_KEY" -H 'Content-Type: application/json' \\
    -d '{"user_ids":["u1"],"channels":["email","sms"],"content":{"subject":"Alert","body":"Pressure {{value}}"},"data":{"value":7}}'
  curl $STACK_API_URL/v1/notifications/<id> -H "Authorization: Bearer $STACK_API_KEY"

Ctrl-C stops everything.
INFO
# Runs until Ctrl-C, SIGTERM, or one of the parts exits (then everything stops).
wait -n "${STACK_HERALD_PIDS[@]}" "${STACK_SIMULATOR_PIDS[@]}"
echo "[run] a component exited; stopping the rest"
