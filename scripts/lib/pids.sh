# Pid files: how a run records the processes it started (in $HERALD_RUN_DIR), so that a later run,
# `make stop`, or the run itself finds exactly those. Sourced, not run.
#
#   pid_file_write FILE PID          record PID and its start time in FILE
#   pid_file_live FILE               print the recorded pid if that process still runs (exit 1 if not)
#   pid_alive PID [START]            whether PID runs (not a zombie), started at START when given
#   pids_stop SECONDS PID...         SIGTERM to each, wait up to SECONDS for all to end, then SIGKILL
#                                    what still runs
#   pid_files_stop SECONDS FILE...   pids_stop on the recorded processes that still run; removes FILEs
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

# Polls rather than `wait`s: the processes need not be this shell's children, and a trapped signal
# interrupts `wait`, after which a caller's handler must not lose track of a process still stopping.
pids_stop() {
  local seconds=$1 pid tenths running
  shift
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for ((tenths = 0; tenths < seconds * 10; tenths++)); do
    running=0
    for pid in "$@"; do if pid_alive "$pid"; then running=1; fi; done
    [ "$running" = 1 ] || return 0
    sleep 0.1
  done
  for pid in "$@"; do
    if pid_alive "$pid"; then
      printf '[stop] pid %s did not stop within %ss of SIGTERM; killing it\n' "$pid" "$seconds" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}

pid_files_stop() {
  local seconds=$1 file pid pids=()
  shift
  for file in "$@"; do
    if pid="$(pid_file_live "$file")"; then pids+=("$pid"); fi
    rm -f "$file"
  done
  [ ${#pids[@]} -eq 0 ] || pids_stop "$seconds" "${pids[@]}"
}
