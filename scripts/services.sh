#!/usr/bin/env bash
# Installs and starts what Herald needs on this machine: PostgreSQL and Redis (Debian packages; also
# cmake, pkg-config and libssl-dev, which building Herald needs) and an Apache Kafka broker (Maven
# Central, scripts/kafka.sh: one KRaft node, broker and controller). Services already listening on their ports are reused. Everything runs from
# $HERALD_RUN_DIR (default /tmp/herald-run); the broker's log is $HERALD_RUN_DIR/kafka.log.
#
#   scripts/services.sh install      install what is missing
#   scripts/services.sh build-deps   install only what building Herald needs (make lint)
#   scripts/services.sh start        start what is not running (background), wait until ready
#   scripts/services.sh stop [names] stop what `start` started (all, or: postgres redis kafka)
#   scripts/services.sh stop-started FILE
#                                    stop the services FILE names (HERALD_STARTED_FILE below), none
#                                    when it names none, and remove FILE
#
#   scripts/services.sh drop-databases PATTERN...
#                                    drop the databases whose names match a LIKE pattern and that
#                                    nobody is connected to (leftovers of tests and benches)
#
# With HERALD_STARTED_FILE set, `start` appends the names of the services it started (not those it
# reused) to that file, so a caller can stop exactly those. With HERALD_KAFKA_FRESH=1, a broker
# that `start` starts begins with empty storage (`make test`: its topics are the tests' own).
#   scripts/services.sh env          print the connection settings as shell exports
#
# Every service it starts is recorded in $HERALD_RUN_DIR (pid files, scripts/lib/pids.sh; PostgreSQL
# its own postmaster.pid), so `stop` and `make stop` find exactly those, and `make run` can name the
# run a service that holds its port belongs to.
set -euo pipefail

RUN_DIR="${HERALD_RUN_DIR:-/tmp/herald-run}"
PG_PORT="${HERALD_PG_PORT:-55432}"
REDIS_PORT="${HERALD_REDIS_PORT:-56379}"
KAFKA_PORT="${HERALD_KAFKA_PORT:-59092}"
KAFKA_CONTROLLER_PORT="${HERALD_KAFKA_CONTROLLER_PORT:-59093}"
SCRIPTS_DIR="$(cd "$(dirname "$0")" && pwd)"
source "$SCRIPTS_DIR/lib/pids.sh"

log() { printf '[services] %s\n' "$*" >&2; }

started() { if [ -n "${HERALD_STARTED_FILE:-}" ]; then echo "$1" >> "$HERALD_STARTED_FILE"; fi; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
  local port=$1 name=$2 seconds=${3:-10}
  for _ in $(seq 1 $((seconds * 10))); do
    if port_open "$port"; then return 0; fi
    sleep 0.1
  done
  log "$name did not open port $port; see $RUN_DIR/$name.log"
  tail -n 20 "$RUN_DIR/$name.log" >&2 || true
  return 1
}

install() {
  local packages=()
  [ -n "$(pg_bin_dir)" ] || packages+=(postgresql)
  command -v redis-server >/dev/null || packages+=(redis-server)
  packages+=($(missing_build_packages))
  install_packages "${packages[@]}"
  "$SCRIPTS_DIR/kafka.sh" install
}

# Not services, but what building Herald needs beside a C compiler, installed with them because
# every way to build (make run, make test, make bench) starts the services first, and by `make lint`
# (`build-deps`), which builds without them: librdkafka is built with CMake and links the system's
# OpenSSL (TLS and SASL to the brokers, Cargo.toml).
missing_build_packages() {
  command -v cmake >/dev/null || echo cmake
  command -v pkg-config >/dev/null || echo pkg-config
  dpkg-query -W -f='${Status}' libssl-dev 2>/dev/null | grep -q 'install ok installed' || echo libssl-dev
}

install_packages() {
  [ $# -gt 0 ] || return 0
  log "installing $* from Debian"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# PostgreSQL refuses to run as root: run it as the `postgres` system user when we are root.
pg_user_cmd() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  if port_open "$PG_PORT"; then log "PostgreSQL already on $PG_PORT"; return; fi
  local bin data="$RUN_DIR/pg"
  bin="$(pg_bin_dir)"
  mkdir -p "$RUN_DIR"
  if [ ! -s "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$data"
    chmod 700 "$data"
    pg_user_cmd "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  touch "$RUN_DIR/postgres.log"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$RUN_DIR/postgres.log"
  # Recorded before it starts: a caller stopped while pg_ctl waits for it still stops it.
  echo "$data" > "$RUN_DIR/postgres.started"
  started postgres
  # setsid: in a session of its own, so Ctrl-C in the terminal does not stop it before the Herald
  # processes that use it have drained (`make run` stops it last).
  pg_user_cmd setsid -w "$bin/pg_ctl" -D "$data" -l "$RUN_DIR/postgres.log" -w start \
    -o "-p $PG_PORT -k $data -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=256MB -c synchronous_commit=on" >/dev/null
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qtAc \
    "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'herald') THEN CREATE ROLE herald LOGIN SUPERUSER; END IF; END \$\$;"
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qtAc "SELECT 1 FROM pg_database WHERE datname = 'herald'" | grep -q 1 \
    || psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE herald OWNER herald"
  log "PostgreSQL on 127.0.0.1:$PG_PORT (data $data)"
}

start_redis() {
  if port_open "$REDIS_PORT"; then log "Redis already on $REDIS_PORT"; return; fi
  mkdir -p "$RUN_DIR"
  # A cache only: no persistence.
  setsid redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$RUN_DIR" > "$RUN_DIR/redis.log" 2>&1 &
  pid_file_write "$RUN_DIR/redis.pid" $!
  started redis
  wait_for_port "$REDIS_PORT" redis
  log "Redis on 127.0.0.1:$REDIS_PORT"
}

start_kafka() {
  if port_open "$KAFKA_PORT"; then log "Kafka broker already on $KAFKA_PORT"; return; fi
  local dir="$RUN_DIR/kafka"
  if [ "${HERALD_KAFKA_FRESH:-0}" = 1 ]; then rm -rf "$dir"; fi
  # Writes the settings every time (ports may have changed); formats the storage only once.
  "$SCRIPTS_DIR/kafka.sh" format --dir "$dir" --node-id 1 --port "$KAFKA_PORT" \
    --controller-port "$KAFKA_CONTROLLER_PORT" --voters "1@127.0.0.1:$KAFKA_CONTROLLER_PORT" \
    --log-file "$RUN_DIR/kafka.log"
  # setsid: see start_postgres. kafka.sh execs the JVM, so the pid is the broker's.
  setsid "$SCRIPTS_DIR/kafka.sh" run --dir "$dir" > "$RUN_DIR/kafka.out" 2>&1 &
  pid_file_write "$RUN_DIR/kafka.pid" $!
  started kafka
  wait_for_port "$KAFKA_PORT" kafka 60
  log "Apache Kafka $("$SCRIPTS_DIR/kafka.sh" version) on 127.0.0.1:$KAFKA_PORT (KRaft, data $dir/data)"
}

stop() {
  local names=("$@")
  [ ${#names[@]} -gt 0 ] || names=(kafka redis postgres)
  for name in "${names[@]}"; do
    case "$name" in
      # Waits for each to be gone (Kafka's controlled shutdown takes a few seconds), so that a start
      # right after finds its port and storage free.
      kafka) pid_files_stop 30 "$RUN_DIR/kafka.pid" ;;
      redis) pid_files_stop 10 "$RUN_DIR/redis.pid" ;;
      postgres)
        if [ -f "$RUN_DIR/postgres.started" ]; then
          local data
          data="$(cat "$RUN_DIR/postgres.started")"
          if pg_user_cmd "$(pg_bin_dir)/pg_ctl" -D "$data" status >/dev/null 2>&1; then
            pg_user_cmd "$(pg_bin_dir)/pg_ctl" -D "$data" -m fast stop >/dev/null || true
          fi
          rm -f "$RUN_DIR/postgres.started"
        fi ;;
    esac
  done
}

# stop_started_in FILE: a caller's goodbye: stops exactly the services its `start` started (FILE,
# from HERALD_STARTED_FILE) and removes FILE. Never `stop` with an empty list, which stops every
# service: a `make test` or `make bench` beside a developer's running services would take them.
stop_started_in() {
  local -a names=()
  [ -f "$1" ] && mapfile -t names < <(grep -v '^$' "$1")
  [ ${#names[@]} -eq 0 ] || stop "${names[@]}"
  rm -f "$1"
}

# Tests and benches create a database per test or scenario; left behind they fill the disk (29 GB
# after a few weeks of runs). A database someone is still connected to is left alone: it may be
# another run's, in progress.
drop_databases() {
  local pattern name
  for pattern in "$@"; do
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qtAc \
      "SELECT datname FROM pg_database WHERE datname LIKE '$pattern'" |
      while read -r name; do
        [ -n "$name" ] || continue
        psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qc "DROP DATABASE \"$name\"" 2>/dev/null \
          || log "kept $name: in use"
      done
  done
}

print_env() {
  cat <<ENV
export HERALD_DATABASE__URL=postgres://herald@127.0.0.1:$PG_PORT/herald
export HERALD_REDIS__URL=redis://127.0.0.1:$REDIS_PORT/0
export HERALD_KAFKA__BROKERS=127.0.0.1:$KAFKA_PORT
ENV
}

case "${1:-}" in
  install) install ;;
  build-deps) install_packages $(missing_build_packages) ;;
  start) install; start_postgres; start_redis; start_kafka ;;
  stop) shift; stop "$@" ;;
  stop-started) stop_started_in "$2" ;;
  env) print_env ;;
  drop-databases) shift; drop_databases "$@" ;;
  *) echo "usage: $0 install|build-deps|start|stop|stop-started|env|drop-databases" >&2; exit 2 ;;
esac
