#!/usr/bin/env python3
"""A deployment's size for a request rate, from what each kind of request was measured to cost.

    BENCH_SCENARIOS=sizing make bench                      # writes bench-results/sizing.json
    python3 load-tests/sizing_plan.py bench-results/sizing.json [--rate 50000] [--json]

The measurements (scripts/lib/bench_sizing.sh): per request kind of the SLA's mix, each process's CPU
microseconds per request (a write's deliveries included), and the bytes a notification takes in the
brokers' logs. The plan (docs/DEPLOY.md, "Sizing for 50,000 requests/s", explains each rule):

  cores of a process kind = rate × Σ(share × µs per request) ÷ 10⁶ ÷ utilisation
  API pods                = its cores ÷ cores per pod, and enough read permits for the reads
                            (Little's law: reads/s × P95 read latency ≤ pods × max_concurrent_reads)
  worker pods             = its cores ÷ cores per pod; partitions = twice that (KEDA's room to grow)
  brokers                 = their cores × replication factor ÷ cores per broker, at least 3
  PostgreSQL              = its cores; PgBouncer's server pool 2 × those cores; clients: every pod's
                            pool at the replica ceilings plus a rollout's surge (the chart's check)
  Kafka storage           = notifications/s × bytes per notification × 86,400 × replication factor,
                            kept for the topic's retention (and the status events' own)
"""

import argparse
import json
import math
import sys

# The SLA's mix (load-tests/README.md): share of requests, notifications per request.
MIX = {"single": (0.5, 1), "batch": (0.1, 10), "get": (0.3, 0), "list": (0.1, 0)}
PROCESSES = ("api", "worker", "broker", "postgres")


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizing", help="bench-results/sizing.json")
    parser.add_argument("--rate", type=float, default=50000, help="requests/s of the SLA's mix")
    parser.add_argument("--utilisation", type=float, default=0.6,
                        help="the share of a core each process may use at the rate (headroom for bursts)")
    parser.add_argument("--api-pod-cores", type=float, default=2)
    parser.add_argument("--worker-pod-cores", type=float, default=2)
    parser.add_argument("--broker-cores", type=float, default=8)
    parser.add_argument("--replication-factor", type=int, default=3)
    parser.add_argument("--retention-days", type=float, default=29, help="config.retention.days − 1")
    parser.add_argument("--status-events-retention-days", type=float, default=3,
                        help="config.status_events.retention_hours ÷ 24 (production-values.yaml: 72 hours)")
    parser.add_argument("--max-connections", type=int, default=16, help="config.database.max_connections")
    parser.add_argument("--max-concurrent-reads", type=int, default=8, help="config.server.max_concurrent_reads")
    parser.add_argument("--json", action="store_true", help="the plan as JSON")
    return parser.parse_args()


def plan(sizing, options):
    rate = options.rate
    cores = {}
    for process in PROCESSES:
        microseconds = sum(share * sizing[kind]["cpu_us_per_request"].get(process, 0.0)
                           for kind, (share, _) in MIX.items())
        cores[process] = rate * microseconds / 1e6 / options.utilisation
    notifications_per_second = rate * sum(share * per_request for share, per_request in MIX.values())
    reads_per_second = rate * (MIX["get"][0] + MIX["list"][0])
    # Little's law: the reads in flight at once, at the 95th percentile latency measured for each
    # (the median leaves the permits short whenever reads bunch up: the sizing run's 503s).
    reads_in_flight = sum(rate * MIX[kind][0] * sizing[kind]["latency_ms"]["p95"] / 1000 for kind in ("get", "list"))
    api_pods = max(math.ceil(cores["api"] / options.api_pod_cores),
                   math.ceil(reads_in_flight / options.max_concurrent_reads), 2)
    worker_pods = max(math.ceil(cores["worker"] / options.worker_pod_cores), 2)
    partitions = 2 ** math.ceil(math.log2(2 * worker_pods))
    brokers = max(3, math.ceil(cores["broker"] * options.replication_factor / options.broker_cores))
    # The ceilings the autoscalers may reach: half as much again as the plan, within the partitions.
    api_max = math.ceil(api_pods * 1.5)
    worker_max = min(partitions, math.ceil(worker_pods * 1.5))
    # A rollout's surge: the API Deployment's 25%; the worker StatefulSet adds none. And the Job.
    pods_at_most = api_max + math.ceil(api_max / 4) + worker_max + 1
    topic_bytes = sizing["topic_bytes_per_notification"]
    events_bytes = sizing.get("status_events_bytes_per_notification", 0)
    replicated_per_day = notifications_per_second * 86400 * options.replication_factor
    bytes_per_day = replicated_per_day * (topic_bytes + events_bytes)
    bytes_retained = replicated_per_day * (topic_bytes * options.retention_days
                                           + events_bytes * options.status_events_retention_days)
    return {
        "rate": rate,
        "notifications_per_second": notifications_per_second,
        "reads_per_second": reads_per_second,
        "cores": {process: round(value, 1) for process, value in cores.items()},
        "api_pods": api_pods,
        "api_max_replicas": api_max,
        "reads_in_flight": round(reads_in_flight, 1),
        "worker_pods": worker_pods,
        "worker_max_replicas": worker_max,
        "partitions": partitions,
        "brokers": brokers,
        "postgres_cores": math.ceil(cores["postgres"]),
        "pgbouncer_default_pool_size": 2 * math.ceil(cores["postgres"]),
        "pgbouncer_max_client_conn": pods_at_most * options.max_connections,
        "kafka_bytes_per_notification": {"topic": topic_bytes, "status_events": events_bytes},
        "kafka_gigabytes_per_day": round(bytes_per_day / 1e9, 1),
        "kafka_terabytes_retained": round(bytes_retained / 1e12, 1),
    }


def main():
    options = arguments()
    with open(options.sizing) as handle:
        sizing = json.load(handle)
    missing = [kind for kind in MIX if kind not in sizing]
    if missing:
        sys.exit(f"sizing_plan.py: {options.sizing} lacks {', '.join(missing)}: not a sizing scenario's result")
    result = plan(sizing, options)
    if options.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    print(f"{result['rate']:,.0f} requests/s of the SLA mix: {result['notifications_per_second']:,.0f} notifications/s, "
          f"{result['reads_per_second']:,.0f} reads/s")
    print(f"cores at {options.utilisation:.0%} utilisation: " + ", ".join(f"{p} {c}" for p, c in result["cores"].items()))
    print(f"API: {result['api_pods']} pods of {options.api_pod_cores:g} cores (HPA maximum {result['api_max_replicas']}; "
          f"{result['reads_in_flight']} reads in flight)")
    print(f"workers: {result['worker_pods']} pods of {options.worker_pod_cores:g} cores (KEDA maximum "
          f"{result['worker_max_replicas']}), {result['partitions']} partitions")
    per_notification = result["kafka_bytes_per_notification"]
    print(f"Kafka: {result['brokers']} brokers of {options.broker_cores:g} cores; bytes per notification: "
          f"{per_notification['topic']:.0f} in the topic, {per_notification['status_events']:.0f} in the status events': "
          f"{result['kafka_gigabytes_per_day']} GB/day with {options.replication_factor} replicas, "
          f"{result['kafka_terabytes_retained']} TB kept ({options.retention_days:g} and "
          f"{options.status_events_retention_days:g} days)")
    print(f"PostgreSQL: {result['postgres_cores']} cores; PgBouncer default_pool_size {result['pgbouncer_default_pool_size']}, "
          f"max_client_conn {result['pgbouncer_max_client_conn']}")


if __name__ == "__main__":
    main()
