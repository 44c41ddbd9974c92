# Pid files: how a run records the processes it started (in $HERALD_RUN_DIR), so that a later run,
# `make stop`, or the run itself finds exactly those. Sourced, not run.
#
#   pid_file_write FILE PID          record PID and its start time in FILE
#   pid_file_live FILE               print the recorded pid if that process still runs (exit 1 if not)
#   pid_alive PID [START]            whether PID runs (not a zombie), started at START when given
#   pid_stop PID SECONDS [NAME]      SIGTERM, wait up to SECONDS for it to end, then SIGKILL
#   pid_file_stop FILE SECONDS       pid_stop on the recorded process (if it still runs); removes FILE
#
# A file holds "PID START": START is the process's start time in clock ticks since boot (field 22 of
# /proc/PID/stat), so a pid the kernel has since given to another process is never taken for ours,
# and a stopped run's files are harmless however long they lie around.

# The start time of PID, or nothing when it does not run. The command name (field 2) may hold spaces
# and parentheses: the fields are counted after its closing parenthesis.
pid_start_time() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  # shellcheck disable=SC2086
  set -- $stat
  # $1 is the state (field 3), so field 22 is $20; a zombie has ended.
  [ "$1" != Z ] || return 1
  echo "${20}"
}

pid_alive() {
  local pid=$1 expected_start=${2:-} start
  start="$(pid_start_time "$pid")" || return 1
  [ -z "$expected_start" ] || [ "$start" = "$expected_start" ]
}

pid_file_write() {
  local file=$1 pid=$2 start
  start="$(pid_start_time "$pid")" || start=""
  echo "$pid $start" > "$file"
}

pid_file_live() {
  local file=$1 pid start
  [ -f "$file" ] || return 1
  read -r pid start < "$file" || true
  [ -n "${pid:-}" ] && pid_alive "$pid" "${start:-}" || return 1
  echo "$pid"
}

pid_stop() {
  local pid=$1 seconds=$2 name=${3:-pid $1}
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  local tenths
  for ((tenths = 0; tenths < seconds * 10; tenths++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  printf '[stop] %s did not stop within %ss of SIGTERM; killing it\n' "$name" "$seconds" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

pid_file_stop() {
  local file=$1 seconds=$2 pid
  if pid="$(pid_file_live "$file")"; then
    pid_stop "$pid" "$seconds" "$(basename "$file" .pid) (pid $pid)"
  fi
  rm -f "$file"
}
