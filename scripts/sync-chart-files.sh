#!/usr/bin/env bash
# Copies the files the Helm chart embeds from where they are maintained into the chart (Helm reads
# only files inside the chart directory, and a self-contained chart can be packaged, pushed to a
# registry or vendored as it is):
#
#   ops/prometheus/*.yml        ->  helm/herald/files/prometheus/*.yml   (one PrometheusRule: every group of
#                                   herald-alerts.yml and of the recording rules the alerts read)
#   grafana/dashboards/*.json   ->  helm/herald/files/dashboards/*.json  (dashboard ConfigMaps)
#
#   scripts/sync-chart-files.sh [CHART]           copy (files removed at the source are removed here)
#   scripts/sync-chart-files.sh --check [CHART]   change nothing; exit 1 and show the difference if
#                                                 the copies differ from their sources
# CHART defaults to helm/herald; scripts/check-deploy.sh syncs a scratch copy of the chart, so that
# it always validates what ops/prometheus and grafana/dashboards hold now.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=sync
if [ "${1:-}" = --check ]; then
  mode=--check
  shift
fi
chart="${1:-helm/herald}"
if [ $# -gt 1 ] || [ ! -f "$chart/Chart.yaml" ]; then
  echo "usage: $0 [--check] [CHART_DIRECTORY]" >&2
  exit 2
fi

CHART_FILES="$chart/files"
RULES_SOURCE=ops/prometheus
RULES_COPY="$CHART_FILES/prometheus"
DASHBOARDS_SOURCE=grafana/dashboards
DASHBOARDS_COPY="$CHART_FILES/dashboards"

# The expected tree: what the chart's files/ must hold.
expected="$(mktemp -d)"
trap 'rm -rf "$expected"' EXIT
mkdir -p "$expected/prometheus" "$expected/dashboards"
if [ ! -f "$RULES_SOURCE/herald-alerts.yml" ]; then
  echo "sync-chart-files: $RULES_SOURCE/herald-alerts.yml is missing" >&2
  exit 1
fi
# Rule files only: a top-level `groups:` (tests/ holds promtool unit tests; a scrape configuration
# placed beside the rules would not be one either).
for file in "$RULES_SOURCE"/*.yml "$RULES_SOURCE"/*.yaml; do
  if [ -f "$file" ] && grep -q '^groups:' "$file"; then cp "$file" "$expected/prometheus/"; fi
done
if [ -d "$DASHBOARDS_SOURCE" ]; then
  find "$DASHBOARDS_SOURCE" -maxdepth 1 -type f -name '*.json' -exec cp {} "$expected/dashboards/" \;
fi

if [ "$mode" = --check ]; then
  mkdir -p "$RULES_COPY" "$DASHBOARDS_COPY"
  if diff -ru --exclude=.gitkeep "$expected/prometheus" "$RULES_COPY" \
    && diff -ru --exclude=.gitkeep "$expected/dashboards" "$DASHBOARDS_COPY"; then
    echo "chart files in sync with their sources: $(find "$RULES_COPY" -maxdepth 1 -name '*.y*ml' | wc -l)" \
      "rule file(s) in $RULES_COPY ($(cat "$RULES_COPY"/*.y*ml | grep -c '^ *- alert:') alerts," \
      "$(cat "$RULES_COPY"/*.y*ml | grep -c '^ *- record:') recording rules)," \
      "$(find "$DASHBOARDS_COPY" -maxdepth 1 -name '*.json' | wc -l) dashboard(s) in $DASHBOARDS_COPY"
    exit 0
  fi
  echo "chart files differ from their sources (above): run scripts/sync-chart-files.sh" >&2
  exit 1
fi

mkdir -p "$RULES_COPY" "$DASHBOARDS_COPY"
find "$RULES_COPY" -maxdepth 1 -type f \( -name '*.yml' -o -name '*.yaml' \) -delete
find "$DASHBOARDS_COPY" -maxdepth 1 -type f -name '*.json' -delete
cp "$expected/prometheus/"* "$RULES_COPY/"
find "$expected/dashboards" -maxdepth 1 -type f -name '*.json' -exec cp {} "$DASHBOARDS_COPY/" \;
touch "$DASHBOARDS_COPY/.gitkeep"
echo "synced $(ls "$RULES_COPY" | wc -l) rule file(s) into $RULES_COPY and" \
  "$(find "$DASHBOARDS_COPY" -maxdepth 1 -name '*.json' | wc -l) dashboard(s) into $DASHBOARDS_COPY"
