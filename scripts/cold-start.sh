#!/usr/bin/env bash
# Cold start of the API and the worker: from process spawn to /healthz (serving), /readyz (API:
# PostgreSQL reachable; worker: database reachable, session live) and, for the worker, to its first
# assigned partitions (a fresh consumer group each run). RUNS runs each (default 5), release builds,
# against the backing services (started when missing). Ports: 18991 (API), 18992 (API metrics),
# 19991 (worker metrics).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/stack.sh
RUNS="${RUNS:-5}"
started_services="$(mktemp)"
trap 'scripts/services.sh stop-started "$started_services"' EXIT
HERALD_STARTED_FILE="$started_services" scripts/services.sh start
eval "$(scripts/services.sh env)"
stack_build >&2
"$STACK_API_BIN" migrate >/dev/null
"$STACK_API_BIN" create-topics >/dev/null

now_ms() { date +%s%3N; }
# ms_until START URL [PATTERN]: milliseconds from START until URL answers 2xx (matching PATTERN).
ms_until() {
  local start=$1 url=$2 pattern=${3:-}
  until curl -fs "$url" 2>/dev/null | grep -q "${pattern:-.}"; do sleep 0.01; done
  echo $(($(now_ms) - start))
}
for run in $(seq 1 "$RUNS"); do
  start=$(now_ms)
  HERALD_SERVER__PORT=18991 HERALD_SERVER__METRICS_PORT=18992 RUST_LOG=warn "$STACK_API_BIN" serve >/dev/null 2>&1 &
  pid=$!
  healthy=$(ms_until "$start" http://127.0.0.1:18991/healthz)
  ready=$(ms_until "$start" http://127.0.0.1:18991/readyz)
  echo "api     run $run: healthz $healthy ms, readyz $ready ms"
  kill -TERM "$pid"; wait "$pid" || true

  start=$(now_ms)
  HERALD_WORKER__METRICS_PORT=19991 HERALD_WORKER__GROUP_ID="cold-start-$run-$$" RUST_LOG=warn \
    "$STACK_BIN_DIR/herald-worker" >/dev/null 2>&1 &
  pid=$!
  healthy=$(ms_until "$start" http://127.0.0.1:19991/healthz)
  ready=$(ms_until "$start" http://127.0.0.1:19991/readyz)
  assigned=$(ms_until "$start" http://127.0.0.1:19991/readyz '"assigned_partitions":[1-9]')
  echo "worker  run $run: healthz $healthy ms, readyz $ready ms, first partitions $assigned ms"
  kill -TERM "$pid"; wait "$pid" || true
done
