#!/usr/bin/env bash
# `make test`: every test against real PostgreSQL, Redis and Apache Kafka. Starts the services when
# they are not running, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

export HERALD_RUN_DIR="${HERALD_RUN_DIR:-/tmp/herald-test-run}"
started_services="$(mktemp)"
# Every test creates a database of its own (herald-testing); they are dropped when the run ends,
# and leftovers of an interrupted run when the next one starts.
test_databases='herald\_test\_%'
trap 'scripts/services.sh drop-databases "$test_databases" || true
      scripts/services.sh stop $(cat "$started_services"); rm -f "$started_services"' EXIT
# A broker this run starts begins empty: every topic on it is a test's own, made afresh.
HERALD_KAFKA_FRESH=1 HERALD_STARTED_FILE="$started_services" scripts/services.sh start
eval "$(scripts/services.sh env)"
scripts/services.sh drop-databases "$test_databases"

# Containers, the Helm chart and the k8s manifests: hadolint, helm, kubernetes-validate (docs/DEPLOY.md).
scripts/check-deploy.sh

# Tests create their own databases and topics from these.
export HERALD_TEST_DATABASE_URL="${HERALD_DATABASE__URL%/*}/postgres"
export HERALD_TEST_REDIS_URL="$HERALD_REDIS__URL"
export HERALD_TEST_KAFKA_BROKERS="$HERALD_KAFKA__BROKERS"
# Tests that kill or pause a broker run their own, through the same script (herald-testing).
export HERALD_TEST_KAFKA_SCRIPT="$PWD/scripts/kafka.sh"
export HERALD_TEST_PG_BIN_DIR="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"

# One test at a time: each end-to-end test runs an API, workers, a simulator and sometimes its own
# broker; on a 2-core machine, two of them at once starve the group heartbeats of both.
cargo test --workspace --lib --bins --tests --examples --no-fail-fast "$@" -- --test-threads=1
# The criterion benches, each benchmark run once as a test (criterion takes no libtest options).
cargo test --workspace --bench '*' --no-fail-fast "$@"
# The CPU profile endpoint exists only in profiling builds (a cargo feature): its test too.
cargo test -p herald-telemetry --features profiling --lib profiling

# The k6 smoke test (load-tests/README.md): a minute of every endpoint against the SLA.
scripts/load-test.sh smoke

# The dashboards and alert rules: schema, promtool, and every panel and rule against a running Herald.
scripts/check-dashboards.sh
