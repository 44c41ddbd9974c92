#!/usr/bin/env bash
# `make test`: every test against real PostgreSQL, Redis and Apache Kafka. Starts the services when
# they are not running, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

export HERALD_RUN_DIR="${HERALD_RUN_DIR:-/tmp/herald-test-run}"
# Where the time goes, for whoever balances the two streams below next.
phase_done() { echo "[test] $1 done, ${SECONDS} s into make test" >&2; }
started_services="$(mktemp)"
# Every test creates a database of its own (herald-testing); they are dropped when the run ends,
# and leftovers of an interrupted run when the next one starts.
test_databases='herald\_test\_%'
second_stream=""
trap '[ -z "$second_stream" ] || kill -- "$second_stream" 2>/dev/null || true
      scripts/services.sh drop-databases "$test_databases" || true
      scripts/services.sh stop-started "$started_services"' EXIT
# A broker this run starts begins empty: every topic on it is a test's own, made afresh.
HERALD_KAFKA_FRESH=1 HERALD_STARTED_FILE="$started_services" scripts/services.sh start
eval "$(scripts/services.sh env)"
scripts/services.sh drop-databases "$test_databases"

# Tests create their own databases and topics from these.
export HERALD_TEST_DATABASE_URL="${HERALD_DATABASE__URL%/*}/postgres"
export HERALD_TEST_REDIS_URL="$HERALD_REDIS__URL"
export HERALD_TEST_KAFKA_BROKERS="$HERALD_KAFKA__BROKERS"
# Tests that kill or pause a broker run their own, through the same script (herald-testing).
export HERALD_TEST_KAFKA_SCRIPT="$PWD/scripts/kafka.sh"
export HERALD_TEST_PG_BIN_DIR="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"

# The pinned tools (k6, helm, promtool, …) once, before the streams below would install them at
# the same time.
scripts/tools.sh install

# Everything the suites run is built first, at once (two compilations at the same time would
# only share two cores). One feature set for every invocation below, the CPU profile endpoint
# included (a cargo feature, off in the release images): its test runs with the others, and no
# invocation builds the dependencies again with other features (`-p herald-telemetry` alone did,
# for about two minutes).
features=(--features herald-telemetry/profiling)
cargo test --workspace "${features[@]}" --lib --bins --tests --examples --benches --no-run "$@"
phase_done "the build"

# Two streams side by side. Within each, one test at a time: an end-to-end test runs an API,
# workers, a simulator and sometimes its own brokers, and two heavy ones at once on 2 cores starve
# each other's group heartbeats. The second stream's tests mostly wait (for brokers restarting,
# sessions expiring), so they share the machine with the first at little cost (40-75 % of the CPU
# is busy): the streams took 621 s and 594 s side by side, 20 minutes one after the other. A third
# stream (the k6 smoke test and the dashboards from the start) saved nothing measurable and made
# the heaviest worker test fail (its SendGrid calls timed out and the SMTP failover refused).
# Stream 2: the deployment checks, the API suite, the worker tests that wait on brokers restarting
# or sessions expiring, then the dashboards and the API contract against the debug binaries just
# built.
slow_worker_tests=(kafka_cluster:: restarts:: crashes::a_broker_restart_mid_run_loses_nothing)
# Tests that compare latencies measured a few seconds apart (tenant B alone, then beside an attack):
# alone, after both streams, on a quiet machine. Beside the API suite their "fair" P99 ratio was
# measured at 1.64 instead of 1.06-1.09, and beside the other stream's k6 smoke test at 1.34 (a CI
# run failed on it). They take about 30 s. The group fan-out tests too (about a minute): they push
# tens of thousands of records through the worker at full speed, and beside the streams they
# starved other tests' provider calls into timeouts. And the rate-limit tests (about two minutes):
# they count what worker processes send in any one second, and beside both streams their Redis
# answered later than the lanes wait (200 ms), so a worker fell back to its local share while the
# other kept the shared rate (a CI run counted 50 in a second for 48 allowed).
quiet_worker_tests=(fairness:: groups:: rate_limits::)
mkdir -p "$HERALD_RUN_DIR"
second_log="$HERALD_RUN_DIR/test-second-stream.log"
(
  set -e
  # Containers, the Helm chart and the k8s manifests: hadolint, helm, kubernetes-validate (docs/DEPLOY.md).
  scripts/check-deploy.sh
  phase_done "stream 2: deployment checks"
  cargo test --workspace "${features[@]}" --test api --no-fail-fast "$@" -- --test-threads=1
  phase_done "stream 2: API suite"
  cargo test --workspace "${features[@]}" --test worker "$@" -- --test-threads=1 "${slow_worker_tests[@]}"
  phase_done "stream 2: slow worker tests"
  # The dashboards and alert rules: schema, promtool, and every panel and rule against a running Herald.
  HERALD_BIN_DIR=target/debug scripts/check-dashboards.sh
  phase_done "stream 2: dashboards and the API contract"
  # `make run` itself, stopped by each signal (about two and a half minutes): nothing of it may be left running.
  HERALD_BIN_DIR=target/debug scripts/check-make-run.py
  phase_done "stream 2: make run's signals"
) >"$second_log" 2>&1 &
second_stream=$!

# Stream 1: unit tests (the profiling endpoint's among them), the simulator's suite and the rest of
# the worker's, the benches, then the k6 smoke test.
first_stream_status=0
skips=()
for test_name in "${slow_worker_tests[@]}" "${quiet_worker_tests[@]}"; do skips+=(--skip "$test_name"); done
# Its output is also kept in a file, for the summary of failures at the end.
first_log="$HERALD_RUN_DIR/test-first-stream.log"
: >"$first_log"
cargo test --workspace "${features[@]}" --lib --bins --examples --test simulator --test worker \
  --no-fail-fast "$@" -- --test-threads=1 "${skips[@]}" 2>&1 | tee -a "$first_log" || first_stream_status=$?
phase_done "stream 1: unit, simulator and worker suites"
# The criterion benches, each benchmark run once as a test (criterion takes no libtest options).
cargo test --workspace "${features[@]}" --benches --no-fail-fast "$@" 2>&1 | tee -a "$first_log" \
  || first_stream_status=$?
# The k6 smoke test (load-tests/README.md): a minute of every endpoint against the SLA, at a rate
# the debug build serves as easily as the release one (`make load-test` builds that).
HERALD_BIN_DIR=target/debug scripts/load-test.sh smoke 2>&1 | tee -a "$first_log" || first_stream_status=$?
phase_done "stream 1: benches and the k6 smoke test"

second_stream_status=0
wait "$second_stream" || second_stream_status=$?
second_stream=""
echo "---- the second stream: deployment checks, the API suite, the slow worker tests, the dashboards ----"
cat "$second_log"

# Last, with nothing else running: the latency comparisons.
quiet_status=0
quiet_log="$HERALD_RUN_DIR/test-latency-comparisons.log"
cargo test --workspace "${features[@]}" --test worker "$@" -- --test-threads=1 "${quiet_worker_tests[@]}" \
  2>&1 | tee "$quiet_log" || quiet_status=$?
phase_done "the latency comparisons"
if [ "$first_stream_status" != 0 ] || [ "$second_stream_status" != 0 ] || [ "$quiet_status" != 0 ]; then
  # Last, where a reader of the output's tail (a CI summary) sees it: which tests failed, and why.
  echo "---- failures ----" >&2
  grep -h -A 3 -E '^test .* \.\.\. FAILED$|panicked at|have been crossed|^error: ' \
    "$first_log" "$second_log" "$quiet_log" | tail -n 80 >&2 || true
  echo "make test failed: first stream exit $first_stream_status, second stream exit $second_stream_status," \
    "latency comparisons exit $quiet_status" >&2
  exit 1
fi
