# herald-analyze at the end of a load run (sourced by scripts/bench.sh and scripts/load-test.sh).
#
# analyze_results BIN_DIR HTML INPUT... [-- METRICS...]: prints the analyzer's summary of the
# run's result files, with the cache advice from the Prometheus snapshots after `--`, and writes
# the HTML report to HTML. Its status is the analyzer's: 2 when a result file cannot be read.
# The targets are load-tests/targets.toml (the SLA, and what each endpoint is held to).
analyze_results() {
  local bin_dir=$1 html=$2
  shift 2
  local inputs=() metrics=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do inputs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  metrics=("$@")
  local analyzer="$bin_dir/herald-analyze"
  if [ ! -x "$analyzer" ]; then
    printf '[analyze] %s is missing: build it with `cargo build --release --bin herald-analyze`\n' "$analyzer" >&2
    return 2
  fi
  local args=("${inputs[@]}" --targets load-tests/targets.toml --html "$html")
  [ ${#metrics[@]} -eq 0 ] || args+=(--metrics "${metrics[@]}")
  printf '[analyze] %s\n' "herald-analyze ${args[*]}" >&2
  "$analyzer" "${args[@]}"
}
