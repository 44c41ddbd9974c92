"""The rebalance scenario's measuring half (scripts/lib/bench_rebalance.sh).

    bench_rebalance.py poll OUT PORT...
        every 50 ms, each worker's /readyz on PORT: one JSON line per round, {"at": epoch seconds,
        "held": {port: partitions or null when it does not answer}}, until SIGTERM
    bench_rebalance.py report --polls FILE --events FILE --deliveries CSV --partitions N
                              --protocol NAME --out FILE
        per event (a worker joining, leaving, killed): when the assignment settled, how long some
        partition had no owner, the fewest partitions owned meanwhile, and the accept-to-delivery
        latency of the notifications accepted in the 10 s after it

A partition has no owner from the moment the live workers hold fewer than all of them (a worker
that does not answer holds none: it was killed) until they hold all of them again. An eager
rebalance takes every partition from every member first; an incremental one only those that move.
"""

import argparse
import csv
import json
import signal
import sys
import time
import urllib.request

POLL_SECONDS = 0.05
LATENCY_WINDOW_SECONDS = 10


def held_by(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=0.5) as response:
            return json.load(response).get("assigned_partitions")
    except OSError:
        return None
    except ValueError:
        return None


def poll(out, ports):
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    with open(out, "w") as log:
        while not stopping:
            started = time.time()
            held = {port: held_by(port) for port in ports}
            log.write(json.dumps({"at": started, "held": held}) + "\n")
            log.flush()
            time.sleep(max(0.0, POLL_SECONDS - (time.time() - started)))


def percentile(values, fraction):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def without_blips(polls):
    """The poll rounds without a blip: a running worker that missed one answer (busy for half a
    second) says nothing about who holds what. A worker not started yet, or gone (left, killed),
    does not answer either, and holds nothing."""
    first_answer, last_answer = {}, {}
    for poll in polls:
        for port, held in poll["held"].items():
            if held is not None:
                first_answer.setdefault(port, poll["at"])
                last_answer[port] = poll["at"]
    def blip(poll, port, held):
        return held is None and first_answer.get(port, float("inf")) < poll["at"] < last_answer[port]
    return [poll for poll in polls if not any(blip(poll, port, held) for port, held in poll["held"].items())]


def report(arguments):
    polls = without_blips([json.loads(line) for line in open(arguments.polls) if line.strip()])
    events = []
    for line in open(arguments.events):
        at, name = line.split(maxsplit=1)
        events.append((float(at), name.strip()))
    deliveries = [(float(accepted), float(sent)) for accepted, sent in csv.reader(open(arguments.deliveries))]
    total = arguments.partitions
    results = []
    for index, (at, name) in enumerate(events):
        # A poll round started just before the next event may already see it: leave those out.
        until = events[index + 1][0] - 0.25 if index + 1 < len(events) else polls[-1]["at"]
        window = [p for p in polls if at <= p["at"] < until]
        owned = [(p["at"], sum(h or 0 for h in p["held"].values())) for p in window]
        changes = [current["at"] for previous, current in zip(window, window[1:])
                   if {k: v or 0 for k, v in previous["held"].items()} != {k: v or 0 for k, v in current["held"].items()}]
        short = [when for when, count in owned if count < total]
        unowned_ms = settled_at = None
        fewest = min((count for _, count in owned), default=None)
        if short:
            first_short = short[0]
            back = [when for when, count in owned if when > short[-1] and count == total]
            # A kill leaves partitions without an owner from the kill itself; a join or a leave from
            # the first poll that sees fewer than all held.
            start = at if name.startswith("kill") else first_short
            if back:
                settled_at = back[0]
                unowned_ms = round((settled_at - start) * 1000)
        latencies = [(sent - accepted) * 1000 for accepted, sent in deliveries if at <= accepted < at + LATENCY_WINDOW_SECONDS]
        results.append({
            "event": name,
            # From the event to the last change of who holds what: the rebalance's whole length.
            "settled_after_ms": round((changes[-1] - at) * 1000) if changes else 0,
            "partitions_without_owner_ms": unowned_ms if short else 0,
            "fewest_partitions_owned": fewest,
            "settled": bool(not short or settled_at),
            "accept_to_delivery_ms_next_10s": {
                "p50": round(percentile(latencies, 0.50), 1) if latencies else None,
                "p99": round(percentile(latencies, 0.99), 1) if latencies else None,
                "max": round(max(latencies), 1) if latencies else None,
            },
        })
    document = {"protocol": arguments.protocol, "partitions": total, "events": results}
    json.dump(document, open(arguments.out, "w"), indent=2)
    print(f"{arguments.protocol}:")
    print(f"  {'event':<16}{'settled ms':>11}{'no owner ms':>12}{'fewest held':>12}{'p99 ms':>10}{'max ms':>10}")
    for result in results:
        latency = result["accept_to_delivery_ms_next_10s"]
        print(f"  {result['event']:<16}{str(result['settled_after_ms']):>11}{str(result['partitions_without_owner_ms']):>12}"
              f"{str(result['fewest_partitions_owned']):>12}{str(latency['p99']):>10}{str(latency['max']):>10}")
    if not all(result["settled"] for result in results):
        sys.exit("a rebalance did not settle: some partitions stayed without an owner")


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "poll":
        poll(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["report"])
    parser.add_argument("--polls", required=True)
    parser.add_argument("--events", required=True)
    parser.add_argument("--deliveries", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--protocol", required=True)
    parser.add_argument("--out", required=True)
    report(parser.parse_args())


if __name__ == "__main__":
    main()
