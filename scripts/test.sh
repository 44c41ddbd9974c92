#!/usr/bin/env bash
# `make test`: every test against real PostgreSQL, Redis and tansu. Starts the services when they
# are not running, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

export HERALD_RUN_DIR="${HERALD_RUN_DIR:-/tmp/herald-test-run}"
scripts/services.sh install
already_running=1
(exec 3<>/dev/tcp/127.0.0.1/"${HERALD_PG_PORT:-55432}") 2>/dev/null || already_running=0
scripts/services.sh start
if [ "$already_running" = 0 ]; then trap 'scripts/services.sh stop' EXIT; fi
eval "$(scripts/services.sh env)"

# Tests create their own databases and topics from these.
export HERALD_TEST_DATABASE_URL="${HERALD_DATABASE__URL%/*}/postgres"
export HERALD_TEST_REDIS_URL="$HERALD_REDIS__URL"
export HERALD_TEST_KAFKA_BROKERS="$HERALD_KAFKA__BROKERS"
export HERALD_TEST_TANSU_BIN="$(command -v tansu)"

cargo test --workspace --all-targets --no-fail-fast "$@"
