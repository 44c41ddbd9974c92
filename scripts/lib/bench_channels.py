#!/usr/bin/env python3
"""The `channels` scenario of `make bench` (scripts/bench.sh), the parts that are not process
control: the plan (offered rate per channel beside its lane's ceiling), the recipients (one user
with a contact on every channel, through `PUT /v1/users/{id}`) and the request bodies the load
generator sends, and the report.

Accept-to-delivery is measured per delivery from two clocks that are the same clock: the
notification's `created_at` (the API's wall clock when its handler took the request, stored in
PostgreSQL) and the simulator's `received_at` for the delivery's reference (the simulator's wall
clock when the provider took the message, before its 50 ms answer). Both processes read the
host's CLOCK_REALTIME to the microsecond, so the difference is exact; it is the time a recipient
waits. The worker's recorded sent time (`deliveries.updated_at`) is reported beside it: it adds
the provider's answer and the recorder's batched write, and uses PostgreSQL's transaction clock.

Subcommands (each prints JSON or writes files; errors exit non-zero with a reason):
  plan     --duration S --rate R --ceiling-share F --latency-ms L --config FILE
  users    --api URL --key KEY --simulator URL --users N --out-dir DIR
  report   --plan FILE --out-dir DIR --simulator URL --deliveries CSV
"""

import argparse
import csv
import http.client
import json
import os
import re
import sys
import tomllib
import urllib.request
from urllib.parse import urlsplit

# Channel -> the provider whose lane carries it (email fails over to SMTP only while SendGrid's
# circuit is open; its receipts are looked up at both).
CHANNEL_PROVIDERS = {
    "email": "sendgrid",
    "sms": "twilio",
    "slack": "slack",
    "discord": "discord",
    "telegram": "telegram",
    "webhook": "webhook",
}
RECEIPT_PROVIDERS = {"email": ["sendgrid", "smtp"]}
# A valid Standard Webhooks secret: the simulator verifies every webhook's signature with it.
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WEBHOOK_ENDPOINT = "bench"
# What /_sim/received answers at most per call.
MAX_RECEIVED = 200_000


def fail(message):
    print(f"[bench channels] {message}", file=sys.stderr)
    sys.exit(1)


def lane_settings(config_file, provider):
    """The lane's bounds as a worker started from this environment sees them: the TOML defaults,
    overridden by HERALD_PROVIDERS__<PROVIDER>__<KEY> as herald-config reads the environment."""
    with open(config_file, "rb") as file:
        section = tomllib.load(file)["providers"][provider]
    settings = {}
    for key in ("max_in_flight", "requests_per_second", "max_held"):
        override = os.environ.get(f"HERALD_PROVIDERS__{provider.upper()}__{key.upper()}")
        settings[key] = int(override) if override else int(section[key])
    return settings


def plan(args):
    latency_s = args.latency_ms / 1000
    channels = {}
    for channel, provider in CHANNEL_PROVIDERS.items():
        lane = lane_settings(args.config, provider)
        # A lane sends at most max_in_flight calls per provider latency, and at most its rate.
        ceiling = min(lane["max_in_flight"] / latency_s, lane["requests_per_second"])
        offered = max(1, int(min(args.rate, ceiling * args.ceiling_share)))
        channels[channel] = {
            "provider": provider,
            "lane": lane,
            "ceiling_deliveries_per_second": round(ceiling, 1),
            "offered_deliveries_per_second": offered,
            "expected_deliveries": int(offered * args.duration),
        }
    json.dump(
        {
            "simulator_latency_ms": args.latency_ms,
            "duration_seconds": args.duration,
            "ceiling_share": args.ceiling_share,
            "channels": channels,
        },
        sys.stdout,
        indent=2,
    )


def users(args):
    """Creates the recipients through the API (so their contacts pass its validation) and writes
    one body file per channel, a notification per line, spread over the recipients."""
    api = urlsplit(args.api)
    connection = http.client.HTTPConnection(api.hostname, api.port, timeout=10)
    headers = {"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"}
    simulator = args.simulator.rstrip("/")
    user_ids = []
    for index in range(args.users):
        user_id = f"bench-channels-{index}"
        user = {
            "email": f"{user_id}@example.com",
            "phone": f"+1415555{index:04d}",
            "channel_data": {
                "slack": {"webhook_url": f"{simulator}/slack/services/T0001/B{index:04d}/bench-secret"},
                "discord": {"webhook_url": f"{simulator}/discord/api/webhooks/{1001 + index}/bench-token"},
                "telegram": {"chat_id": 1000 + index},
                "webhook": {"url": f"{simulator}/webhooks/{WEBHOOK_ENDPOINT}", "secret": WEBHOOK_SECRET},
            },
        }
        connection.request("PUT", f"/v1/users/{user_id}", json.dumps(user), headers)
        response = connection.getresponse()
        answer = response.read()
        if response.status not in (200, 201):
            fail(f"PUT /v1/users/{user_id} answered {response.status}: {answer[:300]!r}")
        user_ids.append(user_id)
    connection.close()
    for channel in CHANNEL_PROVIDERS:
        with open(os.path.join(args.out_dir, f"channels-body-{channel}.jsonl"), "w") as file:
            for user_id in user_ids:
                notification = {
                    "user_ids": [user_id],
                    "channels": [channel],
                    "content": {"subject": "Pressure alert", "body": "Pressure {{value}} bar on {{machine}}"},
                    "data": {"value": 7.2, "machine": "press-4"},
                }
                file.write(json.dumps(notification) + "\n")
    print(json.dumps({"users": len(user_ids)}))


TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def epoch_micros(timestamp):
    """An RFC 3339 time with up to nanoseconds (chrono's form) as Unix microseconds."""
    from datetime import datetime

    match = TIMESTAMP.match(timestamp)
    if not match:
        fail(f"unreadable timestamp {timestamp!r}")
    whole, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    seconds = datetime.fromisoformat(whole + zone).timestamp()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    return int(seconds) * 1_000_000 + micros


def get_json(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def percentile(sorted_values, share):
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * share
    lower = int(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * (position - lower)


def latency_summary(micros):
    values = sorted(micros)
    return {
        name: round(percentile(values, share) / 1000, 1) if values else None
        for name, share in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))
    }


def accepted_count(out_dir, channel):
    data = json.load(open(os.path.join(out_dir, f"oha-channels-{channel}.json")))
    return data.get("statusCodeDistribution", {}).get("202", 0)


def report(args):
    the_plan = json.load(open(args.plan))
    simulator = args.simulator.rstrip("/")
    stats = get_json(f"{simulator}/_sim/stats")
    # The first receipt of each reference (a repeat would be an in-doubt resend, counted apart).
    first_receipt = {}
    for provider in {p for c in CHANNEL_PROVIDERS for p in RECEIPT_PROVIDERS.get(c, [CHANNEL_PROVIDERS[c]])}:
        records = get_json(f"{simulator}/_sim/received?provider={provider}&limit={MAX_RECEIVED}")["messages"]
        if len(records) < stats[provider]["messages"]:
            fail(f"{provider}: the simulator kept {len(records)} of {stats[provider]['messages']} messages "
                 "(its record ring overflowed): receipt times would be missing")
        for record in records:
            reference = record.get("reference")
            if reference and reference not in first_receipt:
                first_receipt[reference] = epoch_micros(record["received_at"])

    rows_by_channel = {channel: [] for channel in CHANNEL_PROVIDERS}
    with open(args.deliveries) as file:
        for delivery_id, channel, status, accepted_us, updated_us in csv.reader(file):
            rows_by_channel[channel].append((delivery_id, status, int(accepted_us), int(updated_us)))

    results, problems = {}, []
    for channel, channel_plan in the_plan["channels"].items():
        rows = rows_by_channel[channel]
        accepted = accepted_count(args.out_dir, channel)
        sent = [row for row in rows if row[1] == "sent"]
        received, to_receipt, to_recorded = [], [], []
        for delivery_id, _status, accepted_us, updated_us in sent:
            receipt_us = first_receipt.get(delivery_id)
            if receipt_us is None:
                continue
            received.append((accepted_us, receipt_us))
            to_receipt.append(receipt_us - accepted_us)
            to_recorded.append(updated_us - accepted_us)
        providers = RECEIPT_PROVIDERS.get(channel, [channel_plan["provider"]])
        duplicates = sum(stats[provider]["duplicates"] for provider in providers)
        window_s = ((max(r for _, r in received) - min(a for a, _ in received)) / 1e6) if received else 0
        results[channel] = {
            "provider": channel_plan["provider"],
            "lane_max_in_flight": channel_plan["lane"]["max_in_flight"],
            "lane_requests_per_second": channel_plan["lane"]["requests_per_second"],
            "ceiling_deliveries_per_second": channel_plan["ceiling_deliveries_per_second"],
            "offered_deliveries_per_second": channel_plan["offered_deliveries_per_second"],
            "accepted": accepted,
            "deliveries_sent": len(sent),
            "deliveries_received_by_provider": len(received),
            "duplicates_at_provider": duplicates,
            "window_seconds": round(window_s, 2),
            "deliveries_per_second": round(len(received) / window_s, 1) if window_s else None,
            "accept_to_delivery_ms": latency_summary(to_receipt),
            "accept_to_sent_recorded_ms": latency_summary(to_recorded),
        }
        if accepted == 0:
            problems.append(f"{channel}: the API accepted nothing")
        if len(received) < accepted:
            problems.append(f"{channel}: {len(received)} of {accepted} accepted deliveries reached the provider")
        if duplicates:
            problems.append(f"{channel}: {duplicates} duplicates at the provider")
    untracked = {p: s["untracked_references"] for p, s in stats.items() if s["untracked_references"]}
    if untracked:
        problems.append(f"the simulator's reference table overflowed: {untracked}")

    loads = {}
    for name in ("before", "after"):
        path = os.path.join(args.out_dir, f"channels-loadavg-{name}.txt")
        if os.path.exists(path):
            loads[name] = open(path).read().split()[:3]
    summary = {
        "simulator_latency_ms": the_plan["simulator_latency_ms"],
        "duration_seconds": the_plan["duration_seconds"],
        "accept_time": "notifications.created_at (API wall clock when the handler took the request)",
        "delivery_time": "simulator received_at of the delivery's reference (provider took the message)",
        "ceiling": "min(lane max_in_flight / simulator latency, lane requests_per_second)",
        "deliveries_per_second": "deliveries received by the provider / (last receipt - first accept), per channel",
        "machine": {"cpus": os.cpu_count(), "loadavg_1_5_15": loads},
        "channels": results,
    }
    json.dump(summary, open(os.path.join(args.out_dir, "channels.json"), "w"), indent=2)

    print(f"channels: simulator latency {the_plan['simulator_latency_ms']} ms on every provider, "
          f"{the_plan['duration_seconds']}s offered; {os.cpu_count()} CPUs, load average {loads}")
    header = (f"{'channel':<10}{'in_flight':>10}{'rate':>7}{'ceiling/s':>10}{'offered/s':>10}"
              f"{'delivered/s':>12}{'sent':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'rec p50':>9}{'rec p99':>9}")
    print(header)
    for channel, r in results.items():
        latency, recorded = r["accept_to_delivery_ms"], r["accept_to_sent_recorded_ms"]
        print(f"{channel:<10}{r['lane_max_in_flight']:>10}{r['lane_requests_per_second']:>7}"
              f"{r['ceiling_deliveries_per_second']:>10}{r['offered_deliveries_per_second']:>10}"
              f"{str(r['deliveries_per_second']):>12}{r['deliveries_sent']:>8}"
              f"{str(latency['p50']):>9}{str(latency['p95']):>9}{str(latency['p99']):>9}"
              f"{str(recorded['p50']):>9}{str(recorded['p99']):>9}")
    print("(p50/p95/p99: accept -> the provider's receipt; rec: accept -> the worker's recorded 'sent', "
          "which adds the provider's answer and the recorder's write)")
    print(f"written to {args.out_dir}/channels.json")
    if problems:
        fail("; ".join(problems))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    plan_parser = commands.add_parser("plan")
    plan_parser.add_argument("--duration", type=float, required=True)
    plan_parser.add_argument("--rate", type=float, required=True)
    plan_parser.add_argument("--ceiling-share", type=float, required=True)
    plan_parser.add_argument("--latency-ms", type=int, required=True)
    plan_parser.add_argument("--config", required=True)
    users_parser = commands.add_parser("users")
    users_parser.add_argument("--api", required=True)
    users_parser.add_argument("--key", required=True)
    users_parser.add_argument("--simulator", required=True)
    users_parser.add_argument("--users", type=int, required=True)
    users_parser.add_argument("--out-dir", required=True)
    report_parser = commands.add_parser("report")
    report_parser.add_argument("--plan", required=True)
    report_parser.add_argument("--out-dir", required=True)
    report_parser.add_argument("--simulator", required=True)
    report_parser.add_argument("--deliveries", required=True)
    args = parser.parse_args()
    {"plan": plan, "users": users, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
