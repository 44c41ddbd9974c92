#!/usr/bin/env bash
# `make load-test SCENARIO=<name>`: the k6 load tests of load-tests/k6/ against the SLA (per
# endpoint: P95 < 100 ms, P99 < 500 ms, errors < 1%).
#
#   scripts/load-test.sh [smoke|load|stress|spike|soak]      (or SCENARIO=...; default smoke)
#
# Starts the backing services when they are not running (and stops only those it started),
# builds Herald (release) and starts the simulator, the API and one worker with a database, topic
# and consumer group of their own (scripts/lib/stack.sh), runs k6 (pinned, from scripts/tools.sh)
# and stops what it started. With HERALD_LOAD_URL and HERALD_LOAD_API_KEY set it loads that API
# instead and starts nothing.
#
# Knobs (env): DURATION (k6 duration, e.g. 90s, 2m), RATE (req/s over all endpoints; for spike the
# steady rate, for stress the capacity the ramp goes to twice of), MIX (shares, default
# "single=0.5,batch=0.1,get=0.3,list=0.1"), BATCH_SIZE (10), USERS (1000; smoke 100),
# SPIKE_FACTOR (8). Ports of the processes it starts: HERALD_SERVER__PORT (18380),
# HERALD_SERVER__METRICS_PORT (18382, the API's /metrics),
# HERALD_WORKER__METRICS_PORT (19564), HERALD_SIM_LISTEN (127.0.0.1:19390).
#
# Writes k6's summary to load-tests/results/<scenario>.json and the processes' logs to
# load-tests/results/logs/<scenario>/. The soak (or any scenario with LOAD_SAMPLE_RESOURCES=1)
# also samples RSS and open file descriptors of the API, the worker, the simulator, PostgreSQL,
# Redis and the Kafka broker at the start, every LOAD_SAMPLE_SECONDS (60) and at the end, into
# load-tests/results/<scenario>-resources.json, and prints start against end.
#
# Exits with k6's status: 0 when every threshold held, 99 when one failed (stress and spike go
# beyond capacity on purpose: a failed threshold there is the finding, not a broken run).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

SCENARIO="${1:-${SCENARIO:-smoke}}"
K6_DIR=load-tests/k6
RESULTS_DIR="$PWD/load-tests/results"
log() { printf '[load-test] %s\n' "$*" >&2; }

if [ ! -f "$K6_DIR/$SCENARIO.js" ]; then
  log "unknown scenario '$SCENARIO' (known: $(cd "$K6_DIR" && ls -- *.js | sed 's/\.js$//' | tr '\n' ' '))"
  exit 2
fi
case "$SCENARIO" in soak) SAMPLE_RESOURCES="${LOAD_SAMPLE_RESOURCES:-1}" ;; *) SAMPLE_RESOURCES="${LOAD_SAMPLE_RESOURCES:-0}" ;; esac
if [ "$SCENARIO" = smoke ]; then USERS="${USERS:-100}"; fi

scripts/tools.sh install
eval "$(scripts/tools.sh env)"
command -v k6 >/dev/null || { log "k6 is not on PATH after scripts/tools.sh install"; exit 1; }
# herald-analyze reads k6's summary at the end.
[ -n "${HERALD_BIN_DIR:-}" ] || cargo build --release --bin herald-analyze

mkdir -p "$RESULTS_DIR"
SUMMARY_FILE="$RESULTS_DIR/$SCENARIO.json"
RESOURCES_FILE="$RESULTS_DIR/$SCENARIO-resources.json"
rm -f "$SUMMARY_FILE" "$RESOURCES_FILE"  # an earlier run's figures must never pass for this one's

started_services=""
stack_sourced=0
isolated_database=""
sampler_pid=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM HUP
  if [ -n "$sampler_pid" ]; then kill -TERM "$sampler_pid" 2>/dev/null || true; wait "$sampler_pid" 2>/dev/null || true; fi
  if [ "$stack_sourced" = 1 ]; then stack_stop; fi
  if [ -n "$isolated_database" ] && [ "${LOAD_KEEP_DATABASE:-0}" != 1 ]; then
    psql "${HERALD_DATABASE__URL%/*}/postgres" -qc "DROP DATABASE IF EXISTS $isolated_database" >/dev/null 2>&1 || true
  fi
  if [ -n "$started_services" ]; then
    # Only what this run started; services that were already running stay up.
    scripts/services.sh stop-started "$started_services"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# Name=pid pairs of the processes to sample; PostgreSQL, Redis and the broker are found by their ports.
sample_targets=()
if [ -n "${HERALD_LOAD_URL:-}" ] && [ -n "${HERALD_LOAD_API_KEY:-}" ]; then
  base_url="${HERALD_LOAD_URL%/}"
  api_key="$HERALD_LOAD_API_KEY"
  log "loading the running API at $base_url (nothing started)"
  curl -fsS --max-time 10 "$base_url/healthz" >/dev/null || { log "no answer from $base_url/healthz"; exit 1; }
  api_port="$(python3 -c "import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); print(p.port or '')" "$base_url")"
  [ -z "$api_port" ] || sample_targets+=("api=port:$api_port")
else
  started_services="$(mktemp)"
  HERALD_STARTED_FILE="$started_services" scripts/services.sh start
  eval "$(scripts/services.sh env)"
  # shellcheck source=lib/stack.sh
  source scripts/lib/stack.sh
  stack_sourced=1
  export HERALD_SERVER__PORT="${HERALD_SERVER__PORT:-18380}"
  export HERALD_SERVER__METRICS_PORT="${HERALD_SERVER__METRICS_PORT:-18382}"
  export HERALD_WORKER__METRICS_PORT="${HERALD_WORKER__METRICS_PORT:-19564}"
  export HERALD_SIM_LISTEN="${HERALD_SIM_LISTEN:-127.0.0.1:19390}"
  export HERALD_SIM_SMTP_LISTEN="${HERALD_SIM_SMTP_LISTEN:-127.0.0.1:19325}"
  # Requests over 100 ms are logged at warn: under stress that alone is plenty.
  export RUST_LOG="${RUST_LOG:-warn}"
  [ -n "${HERALD_BIN_DIR:-}" ] || log "building Herald (release)"
  stack_build
  stack_isolate "k6_$SCENARIO"
  isolated_database="${HERALD_DATABASE__URL##*/}"
  log_dir="$RESULTS_DIR/logs/$SCENARIO"
  rm -rf "$log_dir"
  log "starting the simulator, the API and a worker (database $isolated_database, topic $HERALD_KAFKA__TOPIC; logs in $log_dir)"
  stack_start "$log_dir"
  base_url="$STACK_API_URL"
  api_key="$STACK_API_KEY"
  sample_targets+=("api=${STACK_HERALD_PIDS[0]}" "worker=${STACK_HERALD_PIDS[1]}" "simulator=${STACK_SIMULATOR_PIDS[0]}")
fi
if [ -n "${HERALD_DATABASE__URL:-}" ]; then
  pg_port="$(python3 -c "import sys, urllib.parse as u; print(u.urlparse(sys.argv[1]).port or 5432)" "$HERALD_DATABASE__URL")"
  sample_targets+=("postgres=port:$pg_port")
fi
[ -z "${HERALD_REDIS__URL:-}" ] || sample_targets+=("redis=port:$(python3 -c "import sys, urllib.parse as u; print(u.urlparse(sys.argv[1]).port or 6379)" "$HERALD_REDIS__URL")")
[ -z "${HERALD_KAFKA__BROKERS:-}" ] || sample_targets+=("kafka=port:${HERALD_KAFKA__BROKERS##*:}")

# The resource sampler: one JSON document, rewritten after every sample; SIGTERM takes the last
# sample and ends it. A process group (PostgreSQL: the postmaster and its backends) is summed; its
# RSS counts shared memory once per process, so PSS is recorded beside it.
start_sampler() {
  python3 - "$RESOURCES_FILE" "${LOAD_SAMPLE_SECONDS:-60}" "${sample_targets[@]}" <<'PY' &
import json, os, signal, sys, time
sys.path.insert(0, "scripts/lib")
from processes import memory as measure, parse_targets, resolve
out, interval, targets = sys.argv[1], float(sys.argv[2]), sys.argv[3:]

names = parse_targets(targets)
document = {"interval_seconds": interval, "samples": []}
started = time.time()

def sample(label):
    processes = {}
    for name, spec in names:
        measured = measure(resolve(spec))
        if measured:
            processes[name] = measured
    # The machine's load average beside the figures: on a shared machine it explains latencies.
    try:
        loadavg = [float(x) for x in open("/proc/loadavg").read().split()[:3]]
    except OSError:
        loadavg = None
    document["samples"].append({"label": label, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                "elapsed_seconds": round(time.time() - started, 1), "loadavg": loadavg,
                                "processes": processes})
    with open(out + ".tmp", "w") as f:
        json.dump(document, f, indent=2)
    os.replace(out + ".tmp", out)

stopping = False
def stop(*_):
    global stopping
    stopping = True
signal.signal(signal.SIGTERM, stop)
sample("start")
next_at = started + interval
while not stopping:
    time.sleep(min(1.0, max(0.0, next_at - time.time())))
    if not stopping and time.time() >= next_at:
        sample("periodic")
        next_at += interval
sample("end")
PY
  sampler_pid=$!
  for _ in $(seq 1 100); do [ -s "$RESOURCES_FILE" ] && return 0; sleep 0.1; done
  log "the resource sampler wrote nothing"; return 1
}

print_resources() {
  python3 - "$RESOURCES_FILE" <<'PY'
import json, sys
samples = json.load(open(sys.argv[1]))["samples"]
start, end = samples[0], samples[-1]
# The first periodic sample is the process after warm-up (pools, caches filled): growth from it to
# the last periodic sample (still under load; "end" is taken after k6 finished, when connections
# have closed) is what a leak looks like; growth from the idle start is mostly warm-up.
periodic = [s for s in samples if s["label"] == "periodic"]
warm = periodic[0] if periodic else start
last = periodic[-1] if periodic else end
print(f"\nresources: {len(samples)} samples over {end['elapsed_seconds']:.0f} s ({sys.argv[1]})")
print(f"{'process':<15}{'rss start':>11}{'1st min':>11}{'last load':>11}{'end':>11}{'1st->last':>11}"
      f"{'fds start':>11}{'1st min':>9}{'last load':>11}{'end':>7}")
for name, first in start["processes"].items():
    at_end = end["processes"].get(name)
    mid = warm["processes"].get(name, first)
    loaded = last["processes"].get(name, at_end or first)
    if not at_end:
        print(f"{name:<15} gone by the end")
        continue
    key = "pss_kb" if first["processes"] > 1 else "rss_kb"
    mb = lambda s: f"{s[key] / 1024:.1f} MB"
    growth = (loaded[key] - mid[key]) / mid[key] * 100 if mid[key] else 0.0
    label = name + (" (pss)" if key == "pss_kb" else "")
    print(f"{label:<15}{mb(first):>11}{mb(mid):>11}{mb(loaded):>11}{mb(at_end):>11}{growth:>+10.1f}%"
          f"{first['fds']:>11}{mid['fds']:>9}{loaded['fds']:>11}{at_end['fds']:>7}")
loads = [s["loadavg"][0] for s in samples if s.get("loadavg")]
if loads:
    print(f"load average (1 min) over the samples: min {min(loads):.2f}, mean {sum(loads) / len(loads):.2f}, max {max(loads):.2f} on {__import__('os').cpu_count()} CPUs")
PY
}

mkdir -p "$RESULTS_DIR"
if [ "$SAMPLE_RESOURCES" = 1 ]; then start_sampler; fi

log "k6 $SCENARIO against $base_url${RATE:+, RATE=$RATE}${DURATION:+, DURATION=$DURATION}"
k6_args=(run --no-color
  -e SCENARIO="$SCENARIO" -e BASE_URL="$base_url" -e API_KEY="$api_key"
  -e RATE="${RATE:-}" -e DURATION="${DURATION:-}" -e MIX="${MIX:-}" -e BATCH_SIZE="${BATCH_SIZE:-}"
  -e USERS="${USERS:-}" -e SPIKE_FACTOR="${SPIKE_FACTOR:-}" -e RUN_ID="$(date +%s)"
  -e SUMMARY_FILE="$SUMMARY_FILE"
  "$K6_DIR/$SCENARIO.js")
set +e
if [ -t 2 ]; then
  k6 "${k6_args[@]}"
  status=$?
else
  # Without a terminal k6 prints its progress block every second; keep one every
  # LOAD_PROGRESS_SECONDS (10) so that a 30-minute soak stays readable. Everything else passes.
  # (Flushed at the end of every block shown: awk buffers a pipe, and a soak's progress would
  # otherwise arrive minutes late in 4 KiB chunks.)
  k6 "${k6_args[@]}" 2>&1 | awk -v every="${LOAD_PROGRESS_SECONDS:-10}" '
    /^running \(/ { block += 1; show = ((block - 1) % every == 0); inblock = 1 }
    inblock && /^$/ { inblock = 0; if (show) { print; fflush() }; next }
    inblock { if (show) print; next }
    { print; fflush() }'
  status=${PIPESTATUS[0]}
fi
set -e

# The processes' metrics as the run left them (herald-analyze's cache advice), before they stop.
metrics_files=()
for target in "api=${STACK_API_METRICS_URL:-}" "worker=${STACK_WORKER_URL:-}"; do
  name="${target%%=*}" url="${target#*=}"
  [ -n "$url" ] || continue
  if curl -fsS --max-time 10 "$url/metrics" > "$RESULTS_DIR/$SCENARIO-$name.prom" 2>/dev/null; then
    metrics_files+=("$RESULTS_DIR/$SCENARIO-$name.prom")
  else
    rm -f "$RESULTS_DIR/$SCENARIO-$name.prom"
  fi
done

if [ -n "$sampler_pid" ]; then
  kill -TERM "$sampler_pid" 2>/dev/null || true
  wait "$sampler_pid" 2>/dev/null || true
  sampler_pid=""
  print_resources
fi

[ -f "$SUMMARY_FILE" ] && log "k6 summary: $SUMMARY_FILE"
if [ -f "$SUMMARY_FILE" ]; then
  # shellcheck source=lib/analyze.sh
  source scripts/lib/analyze.sh
  # An analyzer that cannot read what k6 wrote fails the run, unless k6 failed it already.
  analyze_results "${HERALD_BIN_DIR:-target/release}" "$RESULTS_DIR/$SCENARIO-analysis.html" \
    "$SUMMARY_FILE" -- "${metrics_files[@]}" || { [ "$status" != 0 ] || status=1; }
fi
case "$status" in
  0) log "$SCENARIO: every SLA threshold held" ;;
  99) log "$SCENARIO: SLA thresholds FAILED (listed above)"
      case "$SCENARIO" in stress|spike) log "($SCENARIO goes beyond capacity on purpose: which thresholds fail is the finding)" ;; esac ;;
  *) log "$SCENARIO: k6 exited with $status" ;;
esac
exit "$status"
