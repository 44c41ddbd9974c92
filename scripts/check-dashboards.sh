#!/usr/bin/env bash
# The dashboards and alert rules, checked (part of `make test`):
#   1. grafana/dashboards/*.json are what grafana/generate.py makes, and valid against Grafana's
#      published schema (npm @grafana/schema, grafana/tools/); the provisioning files are complete;
#      every series a dashboard reads is narrowed by $cluster and $namespace, and every aggregation
#      of a rule keeps `namespace` (grafana/check.py scope);
#   2. `promtool check rules` and `promtool test rules` on ops/prometheus/, and every alert has a unit
#      test where it fires and one where it does not, a severity Alertmanager routes (critical,
#      warning) and a runbook_url whose page in docs/runbooks/ exists (grafana/check.py alert-hygiene);
#   3. live: starts the backing services (those not already running), the provider simulator, the
#      API and a worker (a database, topic and consumer group of their own), and a real Prometheus
#      (Debian's) scraping them with the rules loaded; drives load (grafana/load.py: single and
#      batch notifications, reads, refused requests, provider failures, 429s, retries, dead
#      letters); then runs every panel's and variable's query, and every rule, against that
#      Prometheus (grafana/check.py live): a query that errors or returns nothing fails, and each
#      series selector of a rule must match;
#   4. on the same running system, the API against its OpenAPI document (scripts/check-contract.sh:
#      schemathesis, every check), through a second API replica configured as production is (no
#      private networks). Stops everything it started.
#
#   scripts/check-dashboards.sh           all of it
#   DASHBOARDS_LIVE=0 scripts/check-dashboards.sh   steps 1 and 2 only (no services)
#
# Knobs (env): DASHBOARDS_LOAD_SECONDS (40), DASHBOARDS_LOAD_RATE (requests/s, 40),
# DASHBOARDS_SCRAPE_INTERVAL (2s, whole seconds). Ports of what it starts, all distinct from `make run`'s:
# HERALD_SERVER__PORT (18280), HERALD_SERVER__METRICS_PORT (18282, the API's /metrics),
# HERALD_CHECK_CONTRACT_API_PORT (18281, the contract's replica),
# HERALD_WORKER__METRICS_PORT (19464), HERALD_SIM_LISTEN (127.0.0.1:19290),
# HERALD_CHECK_PROMETHEUS_PORT (19291); the backing services' ports are scripts/services.sh's
# (HERALD_PG_PORT, HERALD_REDIS_PORT, HERALD_KAFKA_PORT, HERALD_RUN_DIR).
# HERALD_BIN_DIR: run prebuilt binaries instead of building this tree (scripts/lib/stack.sh).
# Logs of a failed run are kept and their directory printed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '[dashboards] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
started_at=$SECONDS

# --- tools -----------------------------------------------------------------------------------------
scripts/tools.sh install
eval "$(scripts/tools.sh env)"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "installing Node.js and npm from Debian"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
TOOLS=grafana/tools
if ! cmp -s "$TOOLS/package-lock.json" "$TOOLS/node_modules/.herald-installed" 2>/dev/null; then
  log "installing grafana/tools (npm ci: @grafana/schema, lezer-promql)"
  npm ci --prefix "$TOOLS" --no-audit --no-fund --loglevel=error >/dev/null
  cp "$TOOLS/package-lock.json" "$TOOLS/node_modules/.herald-installed"
fi

# --- 1. dashboards -----------------------------------------------------------------------------------
log "1. dashboards: generator drift, schema, provisioning, namespace scope"
python3 grafana/generate.py --check
node "$TOOLS/validate-dashboards.mjs" grafana/dashboards/*.json
python3 grafana/check.py provisioning
python3 grafana/check.py scope

# --- 2. rules ----------------------------------------------------------------------------------------
log "2. rules: promtool check rules, promtool test rules, a firing and a quiet test per alert, runbooks"
promtool check rules ops/prometheus/herald-recording-rules.yml ops/prometheus/herald-alerts.yml
promtool test rules ops/prometheus/tests/*.yml
python3 grafana/check.py rule-tests
python3 grafana/check.py alert-hygiene

if [ "${DASHBOARDS_LIVE:-1}" = 0 ]; then
  log "DASHBOARDS_LIVE=0: no live check ($((SECONDS - started_at))s)"
  exit 0
fi

# --- 3. live -----------------------------------------------------------------------------------------
log "3. live: every panel and rule against a Prometheus scraping Herald under load"
export HERALD_SERVER__PORT="${HERALD_SERVER__PORT:-18280}"
export HERALD_SERVER__METRICS_PORT="${HERALD_SERVER__METRICS_PORT:-18282}"
export HERALD_WORKER__METRICS_PORT="${HERALD_WORKER__METRICS_PORT:-19464}"
export HERALD_SIM_LISTEN="${HERALD_SIM_LISTEN:-127.0.0.1:19290}"
export HERALD_SIM_SMTP_LISTEN="${HERALD_SIM_SMTP_LISTEN:-127.0.0.1:19225}"
prometheus_port="${HERALD_CHECK_PROMETHEUS_PORT:-19291}"
scrape_interval="${DASHBOARDS_SCRAPE_INTERVAL:-2s}"
export RUST_LOG="${RUST_LOG:-warn}"
# Retries soon, and few attempts: some deliveries give up within the run and are dead-lettered.
export HERALD_WORKER__MAX_ATTEMPTS="${HERALD_WORKER__MAX_ATTEMPTS:-2}"
export HERALD_WORKER__RETRY_BASE_MS="${HERALD_WORKER__RETRY_BASE_MS:-200}"
export HERALD_WORKER__RETRY_MAX_MS="${HERALD_WORKER__RETRY_MAX_MS:-2000}"
# The retries still due at the end need not be waited for when the worker stops.
export HERALD_WORKER__DRAIN_TIMEOUT_MS="${HERALD_WORKER__DRAIN_TIMEOUT_MS:-3000}"
# A rate limit the load reaches now and then: the rate-limiter waits are not all zero.
export HERALD_PROVIDERS__TWILIO__REQUESTS_PER_SECOND="${HERALD_PROVIDERS__TWILIO__REQUESTS_PER_SECOND:-30}"

for port in "$HERALD_SERVER__PORT" "$HERALD_SERVER__METRICS_PORT" "${HERALD_CHECK_CONTRACT_API_PORT:-18281}" "$HERALD_WORKER__METRICS_PORT" "${HERALD_SIM_LISTEN##*:}" "${HERALD_SIM_SMTP_LISTEN##*:}" "$prometheus_port"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    log "port $port is taken; choose others (see the knobs at the top of $0)"
    exit 1
  fi
done

work_dir="$(mktemp -d /tmp/herald-dashboards.XXXXXX)"
started_services="$work_dir/started-services"
: > "$started_services"
stack_sourced=0
isolated_database=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM HUP
  if [ "$stack_sourced" = 1 ]; then
    stack_prometheus_stop
    stack_stop
  fi
  if [ -n "$isolated_database" ]; then
    psql "${HERALD_DATABASE__URL%/*}/postgres" -qc "DROP DATABASE IF EXISTS $isolated_database" >/dev/null 2>&1 || true
  fi
  # Only what this run started; services that were already running stay up.
  scripts/services.sh stop-started "$started_services" || true
  rm -rf "$work_dir/prometheus/data"
  if [ "$status" = 0 ]; then
    rm -rf "$work_dir"
  else
    log "failed; logs of the API, the worker, the simulator and Prometheus are in $work_dir"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

HERALD_STARTED_FILE="$started_services" scripts/services.sh start
eval "$(scripts/services.sh env)"
# shellcheck source=lib/stack.sh
source scripts/lib/stack.sh
stack_sourced=1
stack_build
stack_isolate dashboards
isolated_database="${HERALD_DATABASE__URL##*/}"
stack_start "$work_dir"
stack_prometheus_start "$work_dir/prometheus" "$prometheus_port" "$scrape_interval"
log "Prometheus $STACK_PROMETHEUS_URL scrapes the API $STACK_API_METRICS_URL and the worker $STACK_WORKER_URL every $scrape_interval"

since="$(date +%s)"
python3 grafana/load.py "$STACK_API_URL" "$STACK_API_KEY" "$STACK_SIMULATOR_URL" \
  --seconds "${DASHBOARDS_LOAD_SECONDS:-40}" --rate "${DASHBOARDS_LOAD_RATE:-40}"
# Retries and dead letters come after the load; then a few more scrapes and rule evaluations.
interval_seconds="${scrape_interval%s}"
sleep "$((interval_seconds * 5 + 2))"
python3 grafana/check.py live "$STACK_PROMETHEUS_URL" "$since"
# The API's contract, on the same running system, after the dashboards' figures are read (its
# requests would count in them).
# The contract is production's, where tenants' URLs must lead to public https hosts: it runs against
# a second API replica of the same system that allows no private networks (the first allows them,
# for the simulator's webhooks on 127.0.0.1).
contract_port="${HERALD_CHECK_CONTRACT_API_PORT:-18281}"
stack_start_api_replica "$work_dir" api-contract "$contract_port" HERALD_OUTBOUND__ALLOW_PRIVATE_NETWORKS=false
scripts/check-contract.sh "http://127.0.0.1:$contract_port" "$STACK_API_KEY"
log "all checks passed ($((SECONDS - started_at))s)"
