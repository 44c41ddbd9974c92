#!/usr/bin/env bash
# `make run`: the whole system on this machine, in the foreground; `make stop`: stops what a run
# left running.
#
#   scripts/run-local.sh [run]     install what is missing, start PostgreSQL, Redis, Apache Kafka,
#                                  the provider simulator, the API, the worker and Prometheus
#   scripts/run-local.sh stop      stop everything a run recorded in $HERALD_RUN_DIR
#
# Ctrl-C, SIGTERM or SIGHUP (to `make run`'s process group or to `make` alone) stops everything this
# run started, in order: the API and the worker drain first (the worker leaves its consumer group,
# within its drain timeout), then the simulator and Prometheus, then the broker, Redis and
# PostgreSQL. A second signal, a few seconds after the first, ends the API and the worker at once.
#
# Every process runs in a session of its own (setsid), so a terminal's Ctrl-C reaches only this
# script, which stops them in that order, and each is recorded in $HERALD_RUN_DIR (default
# /tmp/herald-run; scripts/lib/pids.sh). A run that finds a port it needs taken stops before
# starting anything and says by what: a service an earlier run left (then `make stop` ends it), or
# a process that is not Herald's. HERALD_REUSE_SERVICES=1 reuses PostgreSQL, Redis and Kafka already
# listening (`make services`, say) instead; the settings of this run then do not apply to them.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
source scripts/lib/stack.sh

export HERALD_RUN_DIR="${HERALD_RUN_DIR:-/tmp/herald-run}"
RUN_DIR="$HERALD_RUN_DIR"
RUN_PID_FILE="$RUN_DIR/run.pid"
# The Herald processes' pid files (stack_spawn); the services record theirs (scripts/services.sh).
export STACK_PID_DIR="$RUN_DIR"
HERALD_PROCESS_NAMES=(api worker simulator prometheus)

log() { printf '[run] %s\n' "$*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- What holds a port this run needs ------------------------------------------------------------

# The ports, each with the setting that moves it: "NAME PORT SETTING".
needed_ports() {
  local simulator="${HERALD_SIM_LISTEN:-127.0.0.1:9090}" smtp="${HERALD_SIM_SMTP_LISTEN:-127.0.0.1:2525}"
  if [ "${HERALD_REUSE_SERVICES:-0}" != 1 ]; then
    echo "postgres ${HERALD_PG_PORT:-55432} HERALD_PG_PORT"
    echo "redis ${HERALD_REDIS_PORT:-56379} HERALD_REDIS_PORT"
    echo "kafka ${HERALD_KAFKA_PORT:-59092} HERALD_KAFKA_PORT"
    echo "kafka ${HERALD_KAFKA_CONTROLLER_PORT:-59093} HERALD_KAFKA_CONTROLLER_PORT"
  fi
  echo "api ${HERALD_SERVER__PORT:-8080} HERALD_SERVER__PORT"
  echo "api ${HERALD_SERVER__METRICS_PORT:-9465} HERALD_SERVER__METRICS_PORT"
  echo "worker ${HERALD_WORKER__METRICS_PORT:-9464} HERALD_WORKER__METRICS_PORT"
  echo "simulator ${simulator##*:} HERALD_SIM_LISTEN"
  echo "simulator ${smtp##*:} HERALD_SIM_SMTP_LISTEN"
  echo "prometheus ${HERALD_PROMETHEUS_PORT:-9091} HERALD_PROMETHEUS_PORT"
}

# Refuses to start beside another run: a run still going in this directory, or any port this run
# needs taken. Says which process holds each port and how to end it; starts nothing.
refuse_to_start_beside_another_run() {
  local problems=() other_run_dirs=() name port setting owner pid owner_run_dir command
  if pid="$(pid_file_live "$RUN_PID_FILE")"; then
    problems+=("another make run (pid $pid) is running with HERALD_RUN_DIR=$RUN_DIR")
    other_run_dirs+=("$RUN_DIR")
  fi
  while read -r name port setting; do
    port_open "$port" || continue
    owner="$(scripts/lib/port_owner.py "$port")"
    if [ -z "$owner" ]; then
      problems+=("port $port ($name, $setting) is taken by a process this user cannot see")
      continue
    fi
    IFS=$'\x1f' read -r pid owner_run_dir command <<< "$owner"
    if [ -n "$owner_run_dir" ]; then
      problems+=("port $port ($name, $setting) is held by pid $pid of the run in $owner_run_dir: $command")
      other_run_dirs+=("$owner_run_dir")
    else
      problems+=("port $port ($name, $setting) is held by pid $pid, not started by a Herald run: $command")
    fi
  done < <(needed_ports)
  [ ${#problems[@]} -gt 0 ] || return 0

  log "not starting: this run would share ports or services with another"
  printf '  - %s\n' "${problems[@]}" >&2
  if [ ${#other_run_dirs[@]} -gt 0 ]; then
    local run_dir
    log "to stop what another run left running:"
    for run_dir in $(printf '%s\n' "${other_run_dirs[@]}" | sort -u); do
      printf '      HERALD_RUN_DIR=%s make stop\n' "$run_dir" >&2
    done
  fi
  log "or give this run other ports (the settings named above); HERALD_REUSE_SERVICES=1 reuses a"
  log "running PostgreSQL, Redis and Kafka (this run's settings then do not apply to them)"
  exit 1
}

# --- Stopping ------------------------------------------------------------------------------------

started_services=""
step_pid=""
parent_watch_pid=""
stopping_since=""

# The handler of INT, TERM and HUP while running: stop everything, in order, and exit. It is never
# left once entered; signals that arrive meanwhile are stop_again.
stop_everything() {
  local exit_status=$1
  trap '' PIPE USR1 # the terminal's reader may be gone (a pipe to `tee`, a closed terminal)
  trap stop_again INT TERM HUP
  trap - EXIT
  set +e # a write to a terminal that hung up fails; the stop goes on
  stopping_since=$SECONDS
  if [ -n "$parent_watch_pid" ]; then kill "$parent_watch_pid" 2>/dev/null; fi
  # A step in progress (the build, starting the services) is stopped first: it may start more.
  if [ -n "$step_pid" ]; then
    kill -TERM "$step_pid" 2>/dev/null
    wait "$step_pid" 2>/dev/null
  fi
  log "stopping: the API and the worker first (they drain, at most $(stack_drain_seconds) s)"
  stack_stop
  stack_prometheus_stop
  log "stopping the services this run started"
  if [ -n "$started_services" ]; then
    # Only what this run started; services it reused (HERALD_REUSE_SERVICES=1) stay up.
    scripts/services.sh stop-started "$started_services"
  fi
  rm -f "$RUN_PID_FILE"
  log "stopped"
  exit "$exit_status"
}

# A signal while stopping: the one that came with the first (`make` passes SIGTERM on to its child
# as the process group receives it) is ignored; one a few seconds later asks for haste.
stop_again() {
  if [ $((SECONDS - stopping_since)) -ge 2 ]; then
    log "second signal: the API and the worker stop at once, without draining"
    stack_hurry
  fi
}

# `make` passes SIGTERM on to this script, but not SIGINT or SIGHUP sent to it alone: it waits in its
# signal handler for this script to end, which it never would. So while the parent is `make`, a
# watcher checks every half second whether it is handling a fatal signal (the signal is blocked while
# its handler runs: SigBlk in /proc) or is gone, and then asks this script to stop (SIGUSR1).
watch_make_parent() {
  local parent=$PPID parent_start seen=0 blocked
  [ "$(cat "/proc/$parent/comm" 2>/dev/null)" = make ] || return 0
  parent_start="$(pid_start_time "$parent")" || return 0
  # SIGHUP, SIGINT, SIGQUIT and SIGTERM: bits 0, 1, 2 and 14 of the mask.
  local fatal_signals=$(((1 << 0) | (1 << 1) | (1 << 2) | (1 << 14)))
  (
    trap - INT TERM HUP EXIT
    while sleep 0.5; do
      if ! pid_alive "$parent" "$parent_start"; then break; fi
      blocked="$(awk '/^SigBlk:/ {print $2}' "/proc/$parent/status" 2>/dev/null)" || break
      if [ -n "$blocked" ] && (((16#$blocked & fatal_signals) != 0)); then
        seen=$((seen + 1))
        # Twice in a row: make blocks them for an instant when it starts a child, too.
        [ "$seen" -lt 2 ] || break
      else
        seen=0
      fi
    done
    kill -USR1 $$ 2>/dev/null
  ) &
  parent_watch_pid=$!
}

# `cmd` in the background, waited for: a trapped signal interrupts `wait` (it would wait for a
# command in the foreground to finish first: a build, minutes), and stop_everything stops the step.
run_step() {
  "$@" &
  step_pid=$!
  local status=0
  wait "$step_pid" || status=$?
  step_pid=""
  return "$status"
}

stop_run() {
  local pid stopped=0
  if pid="$(pid_file_live "$RUN_PID_FILE")"; then
    log "asking make run (pid $pid) to stop; it stops the rest in order"
    pids_stop "$(($(stack_drain_seconds) + 90))" "$pid"
    stopped=1
  fi
  # A run killed outright (SIGKILL, a crash) left its processes: stopped here in the same order.
  local name
  for name in "${HERALD_PROCESS_NAMES[@]}" kafka redis; do
    if pid="$(pid_file_live "$RUN_DIR/$name.pid")"; then
      log "stopping $name (pid $pid)"
      stopped=1
    fi
  done
  pid_files_stop "$(stack_drain_seconds)" "$RUN_DIR/api.pid" "$RUN_DIR/worker.pid"
  pid_files_stop 10 "$RUN_DIR/simulator.pid" "$RUN_DIR/prometheus.pid"
  if [ -f "$RUN_DIR/postgres.started" ]; then stopped=1; fi
  scripts/services.sh stop
  rm -f "$RUN_PID_FILE"
  if [ "$stopped" = 1 ]; then
    log "everything a run started from $RUN_DIR has stopped"
  else
    log "nothing a run started from $RUN_DIR was running"
  fi
}

# --- Running -------------------------------------------------------------------------------------

run() {
  mkdir -p "$RUN_DIR"
  refuse_to_start_beside_another_run
  # Files of an earlier run that stopped (its processes have ended, as just checked) are stale.
  local name
  for name in "${HERALD_PROCESS_NAMES[@]}"; do rm -f "$RUN_DIR/$name.pid"; done
  pid_file_write "$RUN_PID_FILE" $$
  started_services="$(mktemp)"
  trap 'stop_everything 0' INT TERM HUP USR1
  trap 'stop_everything $?' EXIT
  watch_make_parent

  HERALD_STARTED_FILE="$started_services" run_step scripts/services.sh start
  eval "$(scripts/services.sh env)"
  run_step stack_prometheus_install || log "could not install prometheus (Debian): Herald runs without it"
  run_step stack_build
  stack_start
  # Prometheus scraping the API and the worker with the alert rules loaded. The simulator has 9090.
  local prometheus_port="${HERALD_PROMETHEUS_PORT:-9091}" prometheus_line
  if ! command -v prometheus >/dev/null; then
    prometheus_line="not started (prometheus is not installed)"
  else
    stack_prometheus_start "$RUN_DIR/prometheus" "$prometheus_port" 5s
    prometheus_line="$STACK_PROMETHEUS_URL   (scrapes the API and the worker every 5s, rules of ops/prometheus; pages: /classic/targets, /classic/alerts)"
  fi

  cat <<INFO

Herald is running:
  API          $STACK_API_URL   (OpenAPI: /openapi.json, readiness: /readyz; metrics: $STACK_API_METRICS_URL/metrics)
  PostgreSQL   $HERALD_DATABASE__URL
  Redis        $HERALD_REDIS__URL
  Kafka        $HERALD_KAFKA__BROKERS (Apache Kafka, log $RUN_DIR/kafka.log), topic ${HERALD_KAFKA__TOPIC:-notifications}
  Worker       $STACK_WORKER_URL/metrics, readiness $STACK_WORKER_URL/readyz
  Simulator    $STACK_SIMULATOR_URL   (SendGrid /v3/mail/send, Twilio Messages; inspect /_sim/stats)
  Prometheus   $prometheus_line
  API key      $STACK_API_KEY   (tenant "dev"; set HERALD_API_KEY to choose it)
  Run files    $RUN_DIR   (logs, data, pid files)

  curl -X PUT $STACK_API_URL/v1/users/u1 \\
    -H "Authorization: Bearer $STACK_API_KEY" -H 'Content-Type: application/json' \\
    -d '{"email":"ops@example.com","phone":"+14155550100"}'
  curl -X POST $STACK_API_URL/v1/notifications \\
    -H "Authorization: Bearer $STACK_API_KEY" -H 'Content-Type: application/json' \\
    -d '{"user_ids":["u1"],"channels":["email","sms"],"content":{"subject":"Alert","body":"Pressure {{value}}"},"data":{"value":7}}'
  curl $STACK_API_URL/v1/notifications/<id> -H "Authorization: Bearer $STACK_API_KEY"

Ctrl-C (or SIGTERM, SIGHUP) stops everything; so does \`make stop\` from another terminal.
INFO
  # Runs until a signal, or until one of the parts exits (then everything stops, exit status 1).
  local exit_status=0
  wait -n "${STACK_HERALD_PIDS[@]}" "${STACK_SIMULATOR_PIDS[@]}" || exit_status=$?
  log "a component exited (status $exit_status); stopping the rest"
  stop_everything 1
}

case "${1:-run}" in
  run) run ;;
  stop) stop_run ;;
  *) echo "usage: $0 [run|stop]" >&2; exit 2 ;;
esac
