#!/usr/bin/env python3
"""Herald's Grafana dashboards, as code. Writes grafana/dashboards/*.json.

    python3 grafana/generate.py           write the dashboards
    python3 grafana/generate.py --check   exit 1 if the committed JSON differs from what this makes

Standard library only, so the drift check runs anywhere. The JSON is Grafana's classic dashboard
model (schemaVersion 41), the one file provisioning loads; scripts/check-dashboards.sh validates it
against Grafana's published schema (npm @grafana/schema, see grafana/tools/) and runs every query
against a Prometheus scraping a running Herald.

Conventions:
  * every panel reads the data source variable ${datasource}; every selector is narrowed by the
    $cluster and $namespace variables (one Herald release at a time: the rules aggregate by
    namespace too; `grafana/check.py scope` checks it), and Herald's own series by $job and
    $instance as well (both "All" by default). $cluster is "All" (.*) by default, which also
    matches series without a cluster label (a single Prometheus has none);
  * the Kubernetes panels read cAdvisor and kube-state-metrics, kept to Herald's pods by a join
    with Herald's scrape targets (HERALD_PODS), which also gives them the job label;
  * a series that exists only once something happened (a 5xx, a retry, a produce error) is written
    `... or vector(0)` or `(x or 0 * y) / y`, so that a healthy system shows 0, not "No data";
  * rates use $__rate_interval; the "now" stats use a fixed 5m window.
"""
import argparse
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "dashboards"

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# One Herald release: its cluster (where several meet) and its namespace.
RELEASE_SCOPE = 'cluster=~"$cluster", namespace=~"$namespace"'
SCOPE = f'{RELEASE_SCOPE}, job=~"$job", instance=~"$instance"'
RI = "$__rate_interval"
V1 = 'route=~"/v1/.*"'
SENT = 'status="sent"'
RETRYING = 'status="retrying"'
POST = 'method="POST"'
INGEST_ROUTES = 'route=~"/v1/notifications(/batch)?"'
SCHEMA_VERSION = 41


def sel(metric, *matchers):
    """A selector of Herald's own series, narrowed to the dashboard's release, $job and $instance."""
    return f"{metric}{{{', '.join((SCOPE,) + matchers)}}}"


def release_sel(metric, *matchers):
    """A selector narrowed to the dashboard's release only: series recorded per namespace (and job),
    and the series of exporters beside Herald (cAdvisor, kube-state-metrics, kafka-exporter)."""
    return f"{metric}{{{', '.join((RELEASE_SCOPE,) + matchers)}}}"


# Herald's pods (value 1, with their job), from the targets of Herald's scrape jobs: Prometheus
# keeps a target for a pod that does not answer (up 0), so a crash-looping pod stays in the
# Kubernetes panels. Joined with `* on (cluster, namespace, pod) group_left (job) HERALD_PODS`.
HERALD_TARGETS = sel("up", 'job=~"herald-api|herald-worker"')
HERALD_PODS = f"group by (cluster, namespace, pod, job) ({HERALD_TARGETS})"
POD_KEYS = "cluster, namespace, pod"
# Containers of cAdvisor's series: not the pod's own cgroup (container="") nor the pause container.
CONTAINERS = 'container!="", container!="POD"'
# The HPAs of Herald's deployments: the chart's for the API (<release>-api), and the one KEDA makes
# for the workers' ScaledObject (keda-hpa-<release>-worker).
HERALD_HPAS = 'horizontalpodautoscaler=~"(keda-hpa-)?.+-(api|worker)"'


def per_herald_pod(expr):
    """expr, aggregated per pod, kept to Herald's pods and labelled with their job."""
    return f"sum by ({POD_KEYS}) ({expr}) * on ({POD_KEYS}) group_left (job) {HERALD_PODS}"


def rate(metric, *matchers, window=RI, select=sel):
    return f"rate({select(metric, *matchers)}[{window}])"


def quantile(q, metric, by=(), *matchers, window=RI):
    """histogram_quantile over a histogram's buckets, kept apart by `by`."""
    labels = ", ".join(tuple(by) + ("le",))
    return f"histogram_quantile({q}, sum by ({labels}) ({rate(metric + '_bucket', *matchers, window=window)}))"


def ratio(part, whole, by=""):
    """part / whole where part may have no series yet: 0 then, not absent."""
    agg = f"sum by ({by})" if by else "sum"
    return f"({agg} ({part}) or 0 * {agg} ({whole})) / {agg} ({whole})"


def target(expr, legend="__auto", ref="A"):
    return {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": True,
        "refId": ref,
    }


def thresholds(*steps):
    """steps: (value, color) pairs above the green base."""
    return {
        "mode": "absolute",
        "steps": [{"color": "green", "value": None}] + [{"color": c, "value": v} for v, c in steps],
    }


class Panels:
    """Lays panels out left to right on Grafana's 24-column grid, rows below each other."""

    def __init__(self):
        self.panels = []
        self.next_id = 1
        self.x = 0
        self.y = 0
        self.row_height = 0

    def _place(self, panel, w, h):
        if self.x + w > 24:
            self.x, self.y = 0, self.y + self.row_height
            self.row_height = 0
        panel["id"] = self.next_id
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.next_id += 1
        self.x += w
        self.row_height = max(self.row_height, h)
        self.panels.append(panel)

    def row(self, title):
        if self.x:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        self._place({"collapsed": False, "panels": [], "title": title, "type": "row"}, 24, 1)
        self.x, self.y, self.row_height = 0, self.y + 1, 0

    def timeseries(self, title, targets, unit="short", description="", lines=(), w=12, h=8,
                   minimum=None, maximum=None, legend_calcs=("mean", "max", "lastNotNull")):
        """lines: (value, color) thresholds drawn as lines (an SLA, a limit)."""
        defaults = {
            "custom": {
                "drawStyle": "line",
                "fillOpacity": 10,
                "lineWidth": 1,
                "showPoints": "never",
                "spanNulls": False,
                "thresholdsStyle": {"mode": "line" if lines else "off"},
            },
            "thresholds": thresholds(*lines),
            "unit": unit,
        }
        if minimum is not None:
            defaults["min"] = minimum
        if maximum is not None:
            defaults["max"] = maximum
        self._place(
            {
                "datasource": DATASOURCE,
                "description": description,
                "fieldConfig": {"defaults": defaults, "overrides": []},
                "options": {
                    "legend": {
                        "calcs": list(legend_calcs),
                        "displayMode": "table",
                        "placement": "bottom",
                        "showLegend": True,
                    },
                    "tooltip": {"mode": "multi", "sort": "desc"},
                },
                "targets": _refs(targets),
                "title": title,
                "type": "timeseries",
            },
            w,
            h,
        )

    def stat(self, title, expr, unit="short", description="", steps=(), w=4, h=4, legend="__auto",
             text_mode="value", decimals=None):
        defaults = {"color": {"mode": "thresholds"}, "thresholds": thresholds(*steps), "unit": unit}
        if decimals is not None:
            defaults["decimals"] = decimals
        self._place(
            {
                "datasource": DATASOURCE,
                "description": description,
                "fieldConfig": {"defaults": defaults, "overrides": []},
                "options": {
                    "colorMode": "value",
                    "graphMode": "area" if text_mode == "value" else "none",
                    "justifyMode": "auto",
                    "orientation": "auto",
                    "percentChangeColorMode": "standard",
                    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "showPercentChange": False,
                    "textMode": text_mode,
                    "wideLayout": True,
                },
                "targets": [target(expr, legend)],
                "title": title,
                "type": "stat",
            },
            w,
            h,
        )


def _refs(targets):
    """(expr, legend) pairs or target dicts -> targets with refIds A, B, C, ..."""
    out = []
    for i, t in enumerate(targets):
        expr, legend = t if isinstance(t, tuple) else (t, "__auto")
        out.append(target(expr, legend, chr(ord("A") + i)))
    return out


def variables():
    def query(name, label, expr, description="", one_release=False):
        """A variable of the label's values. one_release: a single value (no "All"), so that a sum is
        never taken over two releases; otherwise several, "All" (.*) by default."""
        variable = {
            "allValue": ".*",
            "current": {"text": ["All"], "value": ["$__all"]},
            "datasource": DATASOURCE,
            "description": description,
            "includeAll": True,
            "label": label,
            "multi": True,
            "name": name,
            "options": [],
            "query": expr,
            "refresh": 2,
            "regex": "",
            "sort": 1,
            "type": "query",
        }
        if one_release:
            del variable["allValue"]
            # No value chosen: Grafana takes the first one found when the dashboard loads.
            variable.update(current={"text": "", "value": ""}, includeAll=False, multi=False)
        return variable

    return [
        {
            "hide": 0,
            "includeAll": False,
            "label": "Data source",
            "multi": False,
            "name": "datasource",
            "options": [],
            "query": "prometheus",
            "refresh": 1,
            "regex": "",
            "type": "datasource",
        },
        # Every Herald process declares herald_task_restarts_total at start-up, API and worker alike.
        query("cluster", "Cluster", "label_values(herald_task_restarts_total, cluster)",
              "Where several clusters' series meet (Thanos, Mimir, federation). Without a cluster label "
              "there are no values, and All matches every series."),
        query("namespace", "Namespace", 'label_values(herald_task_restarts_total{cluster=~"$cluster"}, namespace)',
              "The Herald release: one namespace at a time, as the alerts aggregate.", one_release=True),
        query("job", "Job", f"label_values(herald_task_restarts_total{{{RELEASE_SCOPE}}}, job)"),
        query("instance", "Instance", f'label_values(herald_task_restarts_total{{{RELEASE_SCOPE}, job=~"$job"}}, instance)'),
    ]


def dashboard(uid, title, description, panels, tags=()):
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [
            {
                "asDropdown": True,
                "icon": "external link",
                "includeVars": True,
                "keepTime": True,
                "tags": ["herald"],
                "targetBlank": False,
                "title": "Herald dashboards",
                "tooltip": "",
                "type": "dashboards",
                "url": "",
            }
        ],
        "panels": panels.panels,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["herald", *tags],
        "templating": {"list": variables()},
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


def percentiles(metric, by=(), *matchers, legend_prefix=""):
    prefix = legend_prefix
    return [
        (quantile(q, metric, by, *matchers), f"{prefix}P{int(q * 100)}")
        for q in (0.5, 0.95, 0.99)
    ]


# --- (1) SLA overview ---------------------------------------------------------------------------

def sla():
    p = Panels()
    all_v1 = rate("herald_http_requests_total", V1, window="5m")
    errors_v1 = rate("herald_http_requests_total", V1, 'status_class="5xx"', window="5m")
    p.row("Service levels (objectives on the /v1 routes)")
    p.stat("Requests/s", f"sum({all_v1})", "reqps", "API requests on /v1 routes, last 5 minutes.")
    p.stat("P95 latency (SLO < 100 ms)", quantile(0.95, "herald_http_request_duration_seconds", (), V1, window="5m"), "s",
           "95% of /v1 requests are answered within this, last 5 minutes. Objective: under 100 ms.",
           ((0.1, "red"),))
    p.stat("P99 latency (SLO < 500 ms)", quantile(0.99, "herald_http_request_duration_seconds", (), V1, window="5m"), "s",
           "99% of /v1 requests are answered within this, last 5 minutes. Objective: under 500 ms.",
           ((0.5, "red"),))
    p.stat("5xx ratio (SLO < 1%)", ratio(errors_v1, all_v1), "percentunit",
           "Share of /v1 requests answered with a 5xx, last 5 minutes. Objective: under 1%.",
           ((0.01, "red"),))
    p.stat("Accept → provider P95", quantile(0.95, "herald_accept_to_sent_seconds", window="5m"), "s",
           "95% of deliveries reach the provider within this after the API's 202, last 5 minutes.",
           ((60, "red"),))
    p.stat("Components down", f'count({sel("up")} == 0) or vector(0)', "none",
           "Scrape targets of the selected jobs that do not answer.", ((1, "red"),))

    p.row("Latency")
    p.timeseries(
        "API latency P50 / P95 / P99 (lines: P95 SLO 100 ms, P99 SLO 500 ms)",
        percentiles("herald_http_request_duration_seconds", (), V1),
        "s",
        "Latency of /v1 requests. The objectives: P95 under 100 ms (orange line), P99 under 500 ms (red line).",
        lines=((0.1, "orange"), (0.5, "red")),
    )
    p.timeseries(
        "API P99 latency by route",
        [(quantile(0.99, "herald_http_request_duration_seconds", ("method", "route"), V1), "{{method}} {{route}}")],
        "s",
        "P99 latency per /v1 route.",
        lines=((0.5, "red"),),
    )
    p.timeseries(
        "Accept → provider latency P50 / P95 / P99",
        percentiles("herald_accept_to_sent_seconds"),
        "s",
        "From the API's 202 to the provider's acceptance of a delivery (herald_accept_to_sent_seconds), end to end.",
        w=24,
    )

    p.row("Throughput and errors")
    p.timeseries(
        "Requests/s by route and status class",
        [(f"sum by (route, status_class) ({rate('herald_http_requests_total')})", "{{route}} {{status_class}}")],
        "reqps",
        "Every API route, including /metrics and the probes.",
    )
    all_ri = rate("herald_http_requests_total", V1)
    p.timeseries(
        "5xx ratio (line: SLO 1%) and 4xx ratio",
        [
            (ratio(rate("herald_http_requests_total", V1, 'status_class="5xx"'), all_ri), "5xx (counts against the SLO)"),
            (ratio(rate("herald_http_requests_total", V1, 'status_class="4xx"'), all_ri), "4xx (client errors, not counted)"),
        ],
        "percentunit",
        "Share of /v1 requests answered 5xx (server errors, the availability objective: under 1%) and 4xx.",
        lines=((0.01, "red"),),
        minimum=0,
    )
    p.timeseries(
        "Error budget burn rate (lines: 6x and 14.4x alerts)",
        [
            (f"{release_sel('herald:api_errors:ratio_rate1h')} / 0.01", "5xx, 1h"),
            (f"{release_sel('herald:api_errors:ratio_rate6h')} / 0.01", "5xx, 6h"),
            (f"{release_sel('herald:api_slower_than_500ms:ratio_rate1h')} / 0.01", "slower than 500 ms, 1h"),
            (f"{release_sel('herald:api_slower_than_100ms:ratio_rate1h')} / 0.05", "slower than 100 ms, 1h"),
        ],
        "none",
        "How many times faster than the objectives allow each error budget is spent, from the recording rules "
        "in ops/prometheus/herald-recording-rules.yml. 1 spends the 30-day budget in 30 days; the alerts fire at "
        "14.4 (1h and 5m: critical), 6 (6h and 30m: critical for 5xx, warning for latency) and 3 (1d and 2h: warning).",
        lines=((6, "orange"), (14.4, "red")),
        minimum=0,
    )
    p.timeseries(
        "Notifications accepted/s and deliveries sent/s",
        [
            (f"sum({rate('herald_notifications_accepted_total')})", "notifications accepted"),
            (f"sum({rate('herald_deliveries_total', SENT)})", "deliveries sent"),
        ],
        "ops",
        "Notifications committed by the API, and deliveries (recipient × channel) the providers accepted.",
    )
    return dashboard(
        "herald-sla",
        "Herald / SLA overview",
        "Service level objectives of the Herald API (P95 < 100 ms, P99 < 500 ms, 5xx < 1%) and end-to-end delivery latency.",
        p,
        ("sla",),
    )


# --- (2) Ingest and outbox ----------------------------------------------------------------------

def ingest():
    p = Panels()
    p.row("Now")
    p.stat("Accepted/s", f"sum({rate('herald_notifications_accepted_total', window='5m')})", "ops",
           "Notifications committed to PostgreSQL, last 5 minutes.")
    p.stat("Rejected/s", f"sum({rate('herald_ingest_rejected_total', window='5m')})", "ops",
           "Notifications or requests refused after validation, last 5 minutes.", ((1, "orange"),))
    p.stat("Outbox backlog", f"max({sel('herald_outbox_backlog')})", "short",
           "Notifications committed but not yet acknowledged by the broker (all replicas).", ((100000, "orange"), (800000, "red")))
    p.stat("Oldest outbox entry", f"max({sel('herald_outbox_oldest_age_seconds')})", "s",
           "Age of the oldest notification waiting for the broker.", ((60, "orange"), (300, "red")))
    p.stat("Parked publications", f"max({sel('herald_outbox_parked')})", "short",
           "Records the broker refused for good, not replayed yet (herald-api parked / replay-parked).", ((1, "red"),))
    p.stat("Bisections (range)", f"sum(increase({sel('herald_ingest_bisections_total')}[$__range]))", "short",
           "Commit batches split because PostgreSQL refused a row, over the dashboard's time range.", ((1, "orange"),),
           decimals=0)

    p.row("Ingest")
    p.timeseries(
        "Notifications accepted/s and scheduled released/s",
        [
            (f"sum({rate('herald_notifications_accepted_total')})", "accepted"),
            (f"sum({rate('herald_scheduled_released_total')})", "scheduled, released when due"),
        ],
        "ops",
    )
    p.timeseries(
        "Rejected/s by reason",
        [(f"sum by (reason) ({rate('herald_ingest_rejected_total')})", "{{reason}}")],
        "ops",
        "queue_full, bytes_in_flight, outbox_full and unavailable are 503s; refused_by_database 422; idempotency_conflict 409.",
    )
    p.timeseries(
        "Ingest requests/s by status class",
        [(f"sum by (route, status_class) ({rate('herald_http_requests_total', POST, INGEST_ROUTES)})",
          "{{route}} {{status_class}}")],
        "reqps",
    )
    p.timeseries(
        "Commit batch rows P50 / P95 / P99 and mean",
        percentiles("herald_ingest_commit_batch_rows")
        + [(f"sum({rate('herald_ingest_commit_batch_rows_sum')}) / sum({rate('herald_ingest_commit_batch_rows_count')})", "mean")],
        "short",
        "Notifications per group-commit batch (one SQL statement).",
    )
    p.timeseries(
        "Commit duration P50 / P95 / P99",
        percentiles("herald_ingest_commit_duration_seconds"),
        "s",
        "Time to write one group-commit batch to PostgreSQL, bisections included.",
    )
    p.timeseries(
        "Commits/s, bisections/s, auth throttled/s",
        [
            (f"sum({rate('herald_ingest_commit_duration_seconds_count')})", "commit batches"),
            (f"sum({rate('herald_ingest_bisections_total')})", "bisections"),
            (f"sum({rate('herald_auth_throttled_total')})", "429 for unknown API keys"),
        ],
        "ops",
    )

    p.row("Outbox and publishing")
    p.timeseries(
        "Outbox backlog",
        [(f"max({sel('herald_outbox_backlog')})", "notifications waiting for the broker")],
        "short",
        "The true count over all replicas (each replica reports it). At outbox.max_unpublished (default 1,000,000) the API answers 503.",
        lines=((800000, "red"),),
    )
    p.timeseries(
        "Oldest outbox entry age (line: alert at 300 s)",
        [(f"max({sel('herald_outbox_oldest_age_seconds')})", "oldest entry")],
        "s",
        lines=((300, "red"),),
    )
    p.timeseries(
        "Publish batches/s by path and outcome",
        [(f"sum by (path, outcome) ({rate('herald_kafka_publish_batches_total')})", "{{path}} {{outcome}}")],
        "ops",
        "fast_path: right after the commit; relay: the outbox relay (batches older than outbox.grace_ms).",
    )
    p.timeseries(
        "Notifications published by the relay/s",
        [(f"sum({rate('herald_outbox_relay_notifications_total')})", "relay")],
        "ops",
        "Notifications the relay published because the fast path could not.",
    )
    p.timeseries(
        "Parked publications",
        [
            (f"max({sel('herald_outbox_parked')})", "waiting for replay"),
            (f"sum(increase({sel('herald_outbox_parked_total')}[{RI}]))", "newly parked"),
        ],
        "short",
        "Records the broker refused for good. See `herald-api parked`, then `herald-api replay-parked`.",
    )
    p.timeseries(
        "Days held past the retention",
        [(f"max({sel('herald_retention_blocked_partitions')})", "blocked days")],
        "short",
        "Daily partitions past retention.days not dropped because they hold unfinished notifications.",
    )
    return dashboard(
        "herald-ingest",
        "Herald / Ingest and outbox",
        "The API's group commit and transactional outbox: accepted and rejected notifications, commit batches, "
        "the outbox backlog, publishing and parked records.",
        p,
        ("ingest",),
    )


# --- (3) Kafka ----------------------------------------------------------------------------------

def kafka():
    p = Panels()
    # Per topic and partition: the main topic and the high-priority one have partitions of the same numbers.
    lag = f"max by (topic, partition) ({sel('herald_consumer_lag')})"
    p.row("Now")
    p.stat("Consumer lag", f"sum({lag})", "short", "Records behind the high watermarks, all partitions.",
           ((1000, "orange"), (100000, "red")), w=6)
    p.stat("Assigned partitions", f"sum({sel('herald_worker_assigned_partitions')})", "short",
           "Partitions the selected workers hold.", w=6)
    p.stat("Idle workers", f"count({sel('herald_worker_assigned_partitions')} == 0) or vector(0)", "short",
           "Workers holding no partition: more replicas than partitions, or a rebalance under way "
           "(raise the partitions before the replicas: docs/DEPLOY.md).", ((1, "orange"),), w=6)
    p.stat("Produce errors/s", f"sum({rate('herald_kafka_produce_errors_total', window='5m')}) or vector(0)", "ops",
           "Records the producers (API and worker) failed to deliver, last 5 minutes.", ((0.01, "red"),), w=6)

    p.row("Consumer (workers)")
    p.timeseries(
        "Consumer lag per partition",
        [(lag, "{{topic}} {{partition}}")],
        "short",
        "Records behind the high watermark, per partition (the consumer's own watermarks).",
    )
    p.timeseries(
        "Consumed records/s",
        [(f"sum by (instance) ({rate('herald_kafka_consumed_records_total')})", "{{instance}}")],
        "ops",
    )
    p.timeseries(
        "Assigned partitions per worker",
        [(f"sum by (instance) ({sel('herald_worker_assigned_partitions')})", "{{instance}}")],
        "short",
    )
    p.timeseries(
        "Partitions assigned and revoked",
        [(f"sum by (instance, change) (increase({sel('herald_worker_partitions_moved_total')}[{RI}]))",
          "{{change}} {{instance}}")],
        "short",
        "Rebalances: partitions each worker gained and gave up. Steady traffic here is a group that "
        "keeps rebalancing (workers restarting, or missing their session timeout).",
    )
    p.timeseries(
        "Admission batch duration P50 / P95 / P99",
        percentiles("herald_worker_batch_duration_seconds"),
        "s",
        "From a partition batch's records to its deliveries in PostgreSQL.",
    )
    p.timeseries(
        "Deliveries admitted/s by how",
        [(f"sum by (as) ({rate('herald_deliveries_admitted_total')})", "{{as}}")],
        "ops",
        "sending: straight to a provider lane; queued: the lane was full; skipped: no address; existing: a redelivered record.",
    )

    p.row("Producers (API and worker)")
    p.timeseries(
        "Produced records/s by client",
        [(f"sum by (client) ({rate('herald_kafka_produced_records_total')})", "{{client}}")],
        "ops",
        "api: notifications to the topic; worker: dead letters.",
        w=8,
    )
    p.timeseries(
        "Producer queue depth",
        [(f"sum by (client, instance) ({sel('herald_kafka_producer_queue_messages')})", "{{client}} {{instance}}")],
        "short",
        "Messages in librdkafka's local queue, not yet acknowledged.",
        w=8,
    )
    p.timeseries(
        "Produce errors/s by client",
        [(f"sum by (client) ({rate('herald_kafka_produce_errors_total')}) or vector(0)", "{{client}}")],
        "ops",
        w=8,
    )

    # The status-events group (status_events.subscriptions_group_id: the events topic to webhook
    # subscriptions) as each worker's status-events consumer reports it: no kafka-exporter needed.
    status_events_own_lag = f"max by (topic, partition) ({sel('herald_status_events_consumer_lag')})"
    p.row("Status-events consumer (workers)")
    p.timeseries(
        "Status-events consumer lag per partition (workers' view)",
        [(status_events_own_lag, "{{topic}} {{partition}}")],
        "short",
        "Status events behind the high watermark, per partition of the events topic (notification-events), as "
        "the worker holding it reports it (herald_status_events_consumer_lag, its own watermarks). Events wait "
        "here until their sends are stored for the webhook subscriptions. HeraldStatusEventsConsumerLagHigh/"
        "Growing read it where kafka-exporter does not report the group.",
        w=24,
    )

    # The broker's view (kafka-exporter, through the chart's PodMonitor: metrics.kafkaExporter),
    # there whether or not a worker runs.
    exporter_lag = release_sel("kafka_consumergroup_lag", 'job="herald-kafka-exporter"')
    p.row("Consumer groups on the broker (kafka-exporter)")
    p.timeseries(
        "Lag per group and topic (broker view)",
        [(f"sum by (consumergroup, topic) (clamp_min({exporter_lag}, 0))", "{{consumergroup}} {{topic}}")],
        "short",
        "kafka_consumergroup_lag of this release's two groups: the workers' (config.worker.group_id, on the topic "
        "and {topic}.high) and the status events' (status_events.subscriptions_group_id, on notification-events, "
        "which takes events to webhook subscriptions). From the committed offsets, so it is there when no worker "
        "runs. Needs metrics.kafkaExporter.enabled and Strimzi's kafkaExporter on the Kafka cluster.",
        w=16,
    )
    status_events_lag = release_sel("herald:kafka_consumergroup_lag:sum", 'herald_consumer="status-events"')
    status_events_reported_lag = release_sel("herald:status_events_consumer_lag:sum")
    p.stat("Status-events group lag", f"sum({status_events_lag}) or sum({status_events_reported_lag})",
           "short", "Status events the webhook-subscriptions group has not consumed yet: kafka-exporter's view, "
           "or without it the workers' own (herald:status_events_consumer_lag:sum).",
           ((10000, "orange"), (100000, "red")), w=8, h=8)
    return dashboard(
        "herald-kafka",
        "Herald / Kafka",
        "The topic between the API and the workers: consumer lag per partition, produce and consume rates, "
        "producer queues and errors, the consumer group.",
        p,
        ("kafka",),
    )


# --- (4) Delivery and providers -----------------------------------------------------------------

def delivery():
    p = Panels()
    requests_5m = rate("herald_provider_requests_total", window="5m")
    failed_5m = rate("herald_provider_requests_total", 'outcome!="sent"', window="5m")
    p.row("Now")
    p.stat("Deliveries sent/s", f"sum({rate('herald_deliveries_total', SENT, window='5m')})", "ops",
           "Deliveries the providers accepted, last 5 minutes.")
    p.stat("Provider failures", ratio(failed_5m, requests_5m), "percentunit",
           "Share of provider requests that failed (retryable or permanent), last 5 minutes.", ((0.1, "red"),))
    p.stat("Dead letters (range)", f"sum(increase({sel('herald_dead_letters_total')}[$__range]))", "short",
           "Deliveries failed for good over the dashboard's time range.", ((1, "orange"),), decimals=0)
    p.stat("Parked records", f"max({sel('herald_worker_parked_records')})", "short",
           "Kafka records the workers could not process, not replayed yet.", ((1, "red"),))
    p.stat("In doubt (range)", f"sum(increase({sel('herald_deliveries_in_doubt_total')}[$__range]))", "short",
           "Deliveries taken over from a dead worker, over the dashboard's time range.", ((1, "orange"),), decimals=0)
    p.stat("Outcomes pending", f"sum({sel('herald_outcomes_pending')})", "short",
           "Outcomes of provider calls not yet written to PostgreSQL.", ((1000, "orange"),))

    p.row("Deliveries")
    p.timeseries(
        "Deliveries/s by channel, provider and status",
        [(f"sum by (channel, provider, status) ({rate('herald_deliveries_total')})", "{{channel}} {{provider}} {{status}}")],
        "ops",
    )
    p.timeseries(
        "Retries/s (deliveries set to retrying)",
        [(f"sum by (channel, provider) ({rate('herald_deliveries_total', RETRYING)}) or vector(0)",
          "{{channel}} {{provider}}")],
        "ops",
        "Attempts that failed and will be retried (timeouts, connection errors, 5xx, 429).",
    )
    p.timeseries(
        "Delivery queue claims/s",
        [(f"sum by (provider) ({rate('herald_delivery_queue_claimed_total')}) or vector(0)", "{{provider}}")],
        "ops",
        "Deliveries claimed from the PostgreSQL delivery queue: retries, and what a full lane queued.",
    )
    p.timeseries(
        "Delivery queue: due deliveries by provider",
        [(f"max by (provider) ({sel('herald_delivery_queue_due')})", "{{provider}}")],
        "short",
        "Deliveries due now and waiting in PostgreSQL for a provider lane (counted up to 100,000). "
        "A slow provider grows it while Kafka's lag stays low; KEDA scales the workers on it.",
    )
    p.timeseries(
        "Delivery queue: oldest due delivery's wait by provider",
        [(f"max by (provider) ({sel('herald_delivery_queue_oldest_due_age_seconds')})", "{{provider}}")],
        "s",
        "How long the oldest due delivery has waited for its provider's lane (HeraldDeliveryQueueBacklogOld above 5 minutes).",
    )
    p.timeseries(
        "Accept → provider latency P50 / P95 / P99",
        percentiles("herald_accept_to_sent_seconds"),
        "s",
    )

    p.row("Providers")
    p.timeseries(
        "Provider latency P50 / P95 / P99",
        [(quantile(q, "herald_provider_request_duration_seconds", ("provider",)), f"{{{{provider}}}} P{int(q * 100)}")
         for q in (0.5, 0.95, 0.99)],
        "s",
    )
    p.timeseries(
        "Provider requests/s by outcome",
        [(f"sum by (provider, outcome) ({rate('herald_provider_requests_total')})", "{{provider}} {{outcome}}")],
        "ops",
        "sent, retryable_error (timeouts, 5xx, 429), permanent_error (other 4xx).",
    )
    p.timeseries(
        "Provider failure ratio (line: alert at 10%)",
        [(ratio(rate("herald_provider_requests_total", 'outcome!="sent"'), rate("herald_provider_requests_total"), "provider"),
          "{{provider}}")],
        "percentunit",
        lines=((0.1, "red"),),
        minimum=0,
    )
    p.timeseries(
        "Rate-limiter wait P50 / P95 / P99",
        [(quantile(q, "herald_rate_limit_wait_seconds", ("provider",)), f"{{{{provider}}}} P{int(q * 100)}")
         for q in (0.5, 0.95, 0.99)],
        "s",
        "Time a send waited for its provider's rate limit (requests_per_second, shared by the replicas).",
    )
    p.timeseries(
        "Shared rate limit: effective rate and fallbacks",
        [
            (f"max by (provider) ({sel('herald_provider_rate_limit_effective_per_second')})", "{{provider}} effective/s"),
            (f"sum by (provider) ({rate('herald_provider_rate_limited_total')}) or vector(0)", "{{provider}} 429/s"),
            (f"sum by (provider) ({rate('herald_provider_rate_limit_fallbacks_total')}) or vector(0)",
             "{{provider}} fallbacks/s"),
        ],
        "short",
        "The rate all replicas share (requests_per_second, cut on SendGrid/Twilio/Pushover 429s and grown back), "
        "the 429s answered, and the fallbacks to a local share while Redis is unreachable.",
    )

    p.row("Provider lanes")
    p.timeseries(
        "Lane held, in flight and capacity",
        [
            (f"sum by (provider) ({sel('herald_lane_held_deliveries')})", "{{provider}} held"),
            (f"sum by (provider) ({sel('herald_lane_in_flight_requests')})", "{{provider}} in flight"),
            (f"sum by (provider) ({sel('herald_lane_max_held')})", "{{provider}} max held"),
        ],
        "short",
        "Deliveries a lane holds (waiting in memory, in flight, or sent with the outcome not yet recorded), requests in flight, and the lane's max_held.",
    )
    p.timeseries(
        "Lane saturation: held / max held (line: alert at 90%)",
        [(f"sum by (provider) ({sel('herald_lane_held_deliveries')}) / sum by (provider) ({sel('herald_lane_max_held')})",
          "{{provider}}")],
        "percentunit",
        "A full lane queues new deliveries in PostgreSQL: the provider is slow or its rate limit is the bottleneck.",
        lines=((0.9, "red"),),
        minimum=0,
    )
    p.timeseries(
        "Circuit breakers not closed, by provider and state",
        [("max by (provider, state) (" + sel("herald_provider_circuit_state", 'state!="closed"') + ")",
          "{{provider}} {{state}}")],
        "short",
        "1 while a provider's circuit is open (calls refused, deliveries wait with their attempts) or half-open "
        "(probe calls only). 0 everywhere is the healthy picture.",
        minimum=0,
        maximum=1,
    )

    p.row("Provider callbacks, status events and webhook subscriptions")
    p.timeseries(
        "Provider reports/s by report and outcome",
        [(f"sum by (provider, report, outcome) ({rate('herald_provider_reports_total')}) or vector(0)",
          "{{provider}} {{report}} {{outcome}}"),
         (f"sum by (provider, reason) ({rate('herald_provider_callbacks_refused_total')}) or vector(0)",
          "{{provider}} refused: {{reason}}")],
        "ops",
        "Signed SendGrid and Twilio callbacks: reports applied to sent deliveries, reports that changed nothing, "
        "and callbacks refused (401, 400).",
        w=8,
    )
    p.timeseries(
        "Status events: produced/s and backlog",
        [(f"sum({rate('herald_status_events_produced_total')}) or vector(0)", "produced/s"),
         (f"max({sel('herald_status_events_backlog')})", "waiting in PostgreSQL"),
         (f"max({sel('herald_status_events_oldest_age_seconds')})", "oldest age (s)")],
        "short",
        "Delivery status changes relayed to the notification-events topic; the backlog is what the relay has not "
        "produced yet.",
        w=8,
    )
    p.timeseries(
        "Webhook subscription sends/s by outcome",
        [(f"sum by (outcome) ({rate('herald_webhook_subscription_attempts_total')}) or vector(0)", "{{outcome}}"),
         (f"sum({rate('herald_webhook_subscription_parked_total')}) or vector(0)", "parked")],
        "ops",
        "Status events POSTed to tenants' subscribed endpoints (Standard Webhooks signed), retried with backoff, "
        "parked after the last attempt.",
        w=8,
    )

    p.row("Groups")
    p.timeseries(
        "Group fan-out: members planned/s and records produced/s",
        [(f"sum({rate('herald_group_members_planned_total')}) or vector(0)", "members planned/s"),
         (f"sum({rate('herald_group_records_produced_total')}) or vector(0)", "records produced/s"),
         (f"sum({rate('herald_group_expansion_failures_total')}) or vector(0)", "failed steps/s (retried)")],
        "ops",
        "Notifications to groups are expanded by the workers page by page: each member as of acceptance becomes "
        "a recipient once and gets one record (produced again only after its worker died).",
        w=8,
    )
    p.timeseries(
        "Group expansions: running, waiting and oldest",
        [(f"sum({sel('herald_group_expansions_running')})", "running"),
         (f"max({sel('herald_group_expansions_waiting')})", "not finished"),
         (f"max({sel('herald_group_expansion_oldest_age_seconds')})", "oldest age (s)")],
        "short",
        "groups.max_concurrent_expansions per worker, one per tenant at a time; an old oldest means the workers "
        "cannot produce or plan (broker or database away) or none runs.",
        w=8,
    )
    p.timeseries(
        "Group expansions finished/s",
        [(f"sum({rate('herald_group_expansions_finished_total')}) or vector(0)", "finished/s")],
        "ops",
        w=8,
    )

    p.row("Templates and preferences")
    p.timeseries(
        "Template render failures/s by reason",
        [(f"sum by (reason) ({rate('herald_template_render_failures_total')}) or vector(0)", "{{reason}}")],
        "ops",
        "Deliveries failed without a provider call because their template did not render: a variable missing "
        "from the notification's data, output over its bound, out of fuel, or the version unavailable "
        "(docs/DESIGN.md, \"Templates\"). The tenant's to fix; the delivery's last_error names the variable.",
        w=12,
    )
    p.timeseries(
        "Compiled templates: cache hit ratio",
        [(ratio(rate("herald_cache_lookups_total", 'kind="template",result="hit"'),
                rate("herald_cache_lookups_total", 'kind="template"')), "hit ratio")],
        "percentunit",
        "Template versions are immutable: a worker compiles each once and keeps it (templates.compiled_cache_entries).",
        w=12,
    )
    skipped = rate("herald_deliveries_total", 'status="skipped"')
    p.timeseries(
        "Recipients' preferences: skipped and deferred/s",
        [(f"sum({skipped}) or vector(0)", "skipped (opted out or no contact)"),
         (f"sum({rate('herald_deliveries_deferred_by_quiet_hours_total')}) or vector(0)", "deferred to the end of quiet hours")],
        "ops",
        "Deliveries not sent because their recipient opted out of the channel or category (or has no contact on it), "
        "and deliveries held in the queue until their recipient's quiet hours end (docs/DESIGN.md, \"Preferences\").",
        w=12,
    )
    p.timeseries(
        "Routing decisions/s by result",
        [(f"sum by (result) ({rate('herald_routing_decisions_total')}) or vector(0)", "{{result}}")],
        "ops",
        "Notifications of tenants with routing rules, judged as their deliveries are admitted: matched (a rule chose "
        "their channels, and perhaps their template; deliveries on other channels are skipped naming it) or "
        "unmatched (sent as written). docs/DESIGN.md, \"Routing rules\".",
        w=12,
    )
    p.timeseries(
        "Unsubscribe links followed/s by result",
        [(f"sum by (result) ({rate('herald_unsubscribes_total')}) or vector(0)", "{{result}}")],
        "ops",
        "One-click unsubscribes (POST /v1/unsubscribe/{token}, from an email's List-Unsubscribe or a template's "
        "unsubscribe_url): opted_out recorded an opt-out, already found it recorded, unknown_user found the user "
        "deleted, invalid was no link Herald signed (a 404; a steady rate is someone guessing). "
        "docs/DESIGN.md, \"Unsubscribe links\".",
        w=12,
    )

    p.row("Failures, doubts and sessions")
    p.timeseries(
        "Dead letters",
        [
            (f"sum(increase({sel('herald_dead_letters_total')}[{RI}]))", "produced to the dead-letter topic"),
            (f"sum(increase({sel('herald_dead_letters_unproduced_total')}[{RI}]))", "left in PostgreSQL only"),
        ],
        "short",
        "Deliveries that failed for good (permanent error or worker.max_attempts).",
        w=8,
    )
    p.timeseries(
        "Parked records",
        [
            (f"max({sel('herald_worker_parked_records')})", "waiting for replay"),
            (f"sum by (reason) (increase({sel('herald_worker_parked_records_total')}[{RI}]))", "parked: {{reason}}"),
        ],
        "short",
        "See `herald-worker parked`, then `herald-worker replay-parked`.",
        w=8,
    )
    p.timeseries(
        "In doubt",
        [(f"sum(increase({sel('herald_deliveries_in_doubt_total')}[{RI}]))", "taken over from a dead worker")],
        "short",
        "Sent again with the same reference: may reach the recipient twice with the real providers.",
        w=8,
    )
    p.timeseries(
        "Outcomes pending and failed writes",
        [
            (f"sum by (instance) ({sel('herald_outcomes_pending')})", "pending {{instance}}"),
            (f"sum by (instance) (increase({sel('herald_outcome_record_failures_total')}[{RI}]))", "failed writes {{instance}}"),
        ],
        "short",
    )
    p.timeseries(
        "Worker sessions: fenced and lost",
        [
            (f"max by (instance) ({sel('herald_worker_session_fenced')})", "fenced {{instance}}"),
            (f"sum by (instance) (increase({sel('herald_worker_sessions_lost_total')}[{RI}]))", "lost {{instance}}"),
        ],
        "short",
        "Fenced: the heartbeat could not be renewed, no new provider call starts. Lost: the lease lapsed.",
    )
    return dashboard(
        "herald-delivery",
        "Herald / Delivery and providers",
        "The workers' deliveries through every provider: statuses, retries, provider latency and outcomes, "
        "shared rate limits, lanes, circuits, callbacks, status events, dead letters, parked records and the "
        "in-doubt set.",
        p,
        ("delivery",),
    )


# --- (5) Cache, database and process ------------------------------------------------------------

def resources():
    p = Panels()
    lookups = rate("herald_cache_lookups_total")
    p.row("Cache")
    p.timeseries(
        "Cache lookups/s by kind and result",
        [(f"sum by (kind, result) ({lookups})", "{{kind}} {{result}}")],
        "ops",
        "recipient: Redis, then PostgreSQL; content: the worker's in-process cache; template_reference and "
        "group_reference: the API's tag cache (in process and Redis, then PostgreSQL).",
    )
    p.timeseries(
        "Cache hit ratio by kind",
        [(ratio(rate("herald_cache_lookups_total", 'result="hit"'), lookups, "kind"), "{{kind}}")],
        "percentunit",
        minimum=0,
        maximum=1,
    )
    p.timeseries(
        "Tag cache: hits answered in process",
        [(ratio(rate("herald_cache_local_hits_total"),
                rate("herald_cache_lookups_total", 'result="hit",kind=~"template_reference|group_reference"'),
                "kind"), "{{kind}}")],
        "percentunit",
        "Of the tag cache's hits (template and group references at acceptance), the share answered by the "
        "API's in-process layer (its stamps still checked in Redis); the rest came from Redis. Low while "
        "the subscription to invalidations is down (docs/DESIGN.md, \"The tag cache\").",
        minimum=0,
        maximum=1,
    )
    p.timeseries(
        "Tag cache invalidations/s and those waiting for Redis",
        [(f"sum by (result) ({rate('herald_cache_invalidations_total')})", "{{result}}"),
         (f"sum({sel('herald_cache_invalidations_pending')})", "waiting for Redis"),
         (f"count({sel('herald_cache_subscription_up')} == 0) or vector(0)", "replicas not subscribed")],
        "short",
        "Tags invalidated by writes (templates, groups): published, deferred (Redis unreachable; retried every "
        "250 ms while that replica reads from PostgreSQL) or dropped (over 100,000 waiting: entries live until "
        "cache.ttl_seconds). Replicas not subscribed keep no in-process entries.",
        minimum=0,
    )
    p.timeseries(
        "Worker content cache size",
        [(f"sum by (instance) ({sel('herald_worker_content_cache_bytes')})", "{{instance}}")],
        "bytes",
        "Notification content cached in each worker, bounded by worker.content_cache_bytes (entries live "
        "10 minutes): part of the worker's memory that grows after a start and then stays flat.",
        minimum=0,
    )

    p.row("PostgreSQL")
    p.timeseries(
        "Statement duration P95 by operation",
        [(quantile(0.95, "herald_db_statement_duration_seconds", ("operation",)), "{{operation}}")],
        "s",
    )
    p.timeseries(
        "Statement duration P99 by operation",
        [(quantile(0.99, "herald_db_statement_duration_seconds", ("operation",)), "{{operation}}")],
        "s",
    )
    p.timeseries(
        "Statements/s by operation",
        [(f"sum by (operation) ({rate('herald_db_statement_duration_seconds_count')})", "{{operation}}")],
        "ops",
    )
    p.timeseries(
        "Client-side deadline exceeded/s by operation",
        [(f"sum by (operation) ({rate('herald_db_deadline_exceeded_total')}) or vector(0)", "{{operation}}")],
        "ops",
        "PostgreSQL calls abandoned at database.query_timeout_ms (answered 503 by the API).",
    )

    p.row("Processes")
    p.timeseries(
        "CPU (cores)",
        [(f"sum by (job, instance) ({rate('process_cpu_seconds_total')})", "{{job}} {{instance}}")],
        "short",
        w=8,
    )
    p.timeseries(
        "Resident memory",
        [(sel("process_resident_memory_bytes"), "{{job}} {{instance}}")],
        "bytes",
        w=8,
    )
    p.timeseries(
        "Open file descriptors / limit",
        [(f"{sel('process_open_fds')} / {sel('process_max_fds')}", "{{job}} {{instance}}")],
        "percentunit",
        lines=((0.8, "red"),),
        w=8,
    )
    p.timeseries(
        "Threads",
        [(sel("process_threads"), "{{job}} {{instance}}")],
        "short",
        w=8,
    )
    p.timeseries(
        "Task restarts (panics in long-running tasks)",
        [(f"sum by (job, task) (increase({sel('herald_task_restarts_total')}[{RI}]))", "{{job}} {{task}}")],
        "short",
        w=8,
    )
    p.timeseries(
        "Panics caught (one record, send or flush)",
        [(f"sum by (job, site) (increase({sel('herald_panics_caught_total')}[{RI}]))", "{{job}} {{site}}")],
        "short",
        w=8,
    )
    p.stat("Build", sel("herald_build_info"), "none", "Component and version of each process.",
           legend="{{component}} {{version}} ({{instance}})", text_mode="name", w=12)
    p.stat("Uptime (youngest process)", f"time() - max({sel('process_start_time_seconds')})", "s",
           "Since the most recent start among the selected processes.", w=12)

    # USE on Kubernetes: what the processes cannot see of themselves (their limits, being throttled,
    # being killed) and how many of them the autoscalers want.
    p.row("Kubernetes: saturation, limits, restarts, replicas")
    throttled = rate("container_cpu_cfs_throttled_periods_total", CONTAINERS, select=release_sel)
    periods = rate("container_cpu_cfs_periods_total", CONTAINERS, select=release_sel)
    p.timeseries(
        "CPU throttled (share of CFS periods)",
        [(f"{per_herald_pod(throttled)} / {per_herald_pod(periods)}", "{{job}} {{pod}}")],
        "percentunit",
        "Share of 100 ms scheduling periods in which a pod's container used up its CPU limit and waited (cAdvisor). "
        "Above a few percent, latency suffers before CPU looks busy: raise api.resources / worker.resources limits "
        "or add replicas.",
        lines=((0.25, "red"),),
        minimum=0,
        w=8,
    )
    memory = release_sel("container_memory_working_set_bytes", CONTAINERS)
    memory_limit = release_sel("kube_pod_container_resource_limits", 'resource="memory"')
    p.timeseries(
        "Memory working set / limit",
        [(f"{per_herald_pod(memory)} / {per_herald_pod(memory_limit)}", "{{job}} {{pod}}")],
        "percentunit",
        "Working set (what the OOM killer counts, cAdvisor) over the container's memory limit "
        "(kube-state-metrics). At 1 the kernel kills the container: OOMKilled.",
        lines=((0.9, "red"),),
        minimum=0,
        w=8,
    )
    restarts = f"increase({release_sel('kube_pod_container_status_restarts_total')}[{RI}])"
    oom_killed = release_sel("kube_pod_container_status_last_terminated_reason", 'reason="OOMKilled"')
    p.timeseries(
        "Container restarts, and those after an OOM kill",
        [(per_herald_pod(restarts), "restarts {{job}} {{pod}}"),
         (f"({per_herald_pod(restarts)}) and on ({POD_KEYS}) (sum by ({POD_KEYS}) ({oom_killed}) > 0)",
          "OOMKilled {{job}} {{pod}}")],
        "short",
        "Restarts of Herald's containers (kube-state-metrics), and those whose container last ended OOMKilled: "
        "raise the memory limit, or for workers lower worker.content_cache_bytes and the lanes' max_held. "
        "Other restarts: the liveness probe (a fatal Kafka producer error answers 503 on /healthz) or a crash "
        "(kubectl logs --previous).",
        w=8,
    )
    hpa_current = release_sel("kube_horizontalpodautoscaler_status_current_replicas", HERALD_HPAS)
    hpa_desired = release_sel("kube_horizontalpodautoscaler_status_desired_replicas", HERALD_HPAS)
    hpa_max = release_sel("kube_horizontalpodautoscaler_spec_max_replicas", HERALD_HPAS)
    p.timeseries(
        "Replicas: current vs desired (HPA, KEDA)",
        [(hpa_current, "current {{horizontalpodautoscaler}}"),
         (hpa_desired, "desired {{horizontalpodautoscaler}}"),
         (hpa_max, "max {{horizontalpodautoscaler}}")],
        "short",
        "The API's HorizontalPodAutoscaler (api.autoscaling) and the one KEDA makes for the workers' ScaledObject "
        "(keda-hpa-<release>-worker; worker.keda). Desired above current for long: pods cannot be scheduled (quota, "
        "nodes). Desired at max: the autoscaler wants more than it may have (the workers' max is bounded by the "
        "partitions).",
        minimum=0,
        w=12,
    )
    p.timeseries(
        "Pods per component (ready to be scraped / all)",
        [(f"sum by (job) ({HERALD_TARGETS})", "answering {{job}}"),
         (f"count by (job) ({HERALD_TARGETS})", "all {{job}}")],
        "short",
        "Herald's scrape targets: pods answering /metrics and all pods behind the Services. HeraldComponentDown "
        "pages when fewer than half answer; HeraldComponentPodDown warns for fewer pods.",
        minimum=0,
        w=12,
    )
    return dashboard(
        "herald-resources",
        "Herald / Cache, database and processes",
        "Recipient and content caches, PostgreSQL statement times and deadlines, and the processes: CPU, memory, "
        "file descriptors, task restarts and caught panics.",
        p,
        ("resources",),
    )


DASHBOARDS = {
    "herald-sla.json": sla,
    "herald-ingest.json": ingest,
    "herald-kafka.json": kafka,
    "herald-delivery.json": delivery,
    "herald-resources.json": resources,
}


def render(build):
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the committed JSON instead of writing")
    args = parser.parse_args()
    if args.check:
        stale = []
        for name, build in DASHBOARDS.items():
            path = OUT / name
            if not path.exists() or path.read_text() != render(build):
                stale.append(name)
        extra = sorted(p.name for p in OUT.glob("*.json") if p.name not in DASHBOARDS)
        for name in stale:
            print(f"drift: grafana/dashboards/{name} is not what grafana/generate.py makes")
        for name in extra:
            print(f"drift: grafana/dashboards/{name} is not made by grafana/generate.py")
        if stale or extra:
            print("run `python3 grafana/generate.py` and commit the result")
            return 1
        print(f"generator: the {len(DASHBOARDS)} committed dashboards match grafana/generate.py")
        return 0
    OUT.mkdir(exist_ok=True)
    for name, build in DASHBOARDS.items():
        (OUT / name).write_text(render(build))
        print(f"wrote grafana/dashboards/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
