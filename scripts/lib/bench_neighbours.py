#!/usr/bin/env python3
"""The `neighbours` scenario of `make bench` (scripts/bench.sh): one tenant's latency alone and
beside each attack another tenant can make, as a ratio (issue 14's noisy-neighbour figures).

Tenant B (the neighbour measured) sends the same steady load in every phase: notifications to its
users by SMS and by signed webhook (the simulator answering in --latency-ms), one per request at
--b-rate requests/s, and reads its newest notifications at --b-read-rate requests/s. Tenant A
attacks in every phase but the first, each time in one way (ATTACKS below, in the order they run).
Per phase, B's figures: the P50/P99 of its POSTs and of its reads (oha, fixed arrival rate,
latency-corrected) and of its accept-to-delivery time (the notification's `created_at` to the
delivery's recorded `sent`, both from PostgreSQL), each also as a ratio of the same figure alone.

Phases follow each other without a pause: what an attack leaves behind (A's backlog of a flood,
its deliveries still retrying against a tarpit) is part of what the next phases measure.

Fails (exit 1, with the reason) when one of B's accepted notifications is not delivered within
--drain-seconds, when B's requests were refused (any non-2xx beyond 1% in a phase), or when an
attack could not be made (the API refused A's set-up).

Usage: bench_neighbours.py --api URL --key-a KEY --key-b KEY --simulator URL --database-url URL
       --out-dir DIR --phase-seconds S --b-rate R --b-read-rate R --latency-ms L --drain-seconds S
"""

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

# B's users, each with a phone and a signed webhook at the simulator.
B_USERS = 50
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WEBHOOK_ENDPOINT = "neighbours"
# A's users: the target of its floods (whose history the slow reads ask for), its tarpit webhook,
# and one it never sends to (a recipient filter that finds nothing among the newest notifications
# takes the index path, the slow one).
A_FLOOD_USER = "a-flood"
A_TARPIT_USER = "a-tarpit"
# The attacks, in the order they run; each is A's, at the multiple of B's rate given.
ATTACKS = [
    "priority_flood",
    "tarpit_webhooks",
    "trickling_bodies",
    "bogus_keys",
    "slow_reads",
    "placeholder_bombs",
    "tarpit_subscriptions",
    "request_flood",
]
# A's flood: ten times B's whole rate, all `priority: high`, on the SMS lane B uses.
FLOOD_MULTIPLE = 10
TRICKLING_CONNECTIONS = 64
# The trickling client's own address, so that it is another client than B (on loopback, every
# 127.0.0.0/8 address is this host).
TRICKLING_SOURCE_ADDRESS = "127.0.0.2"
SLOW_READ_CONNECTIONS = 16
# B reads on as many connections as one tenant's read permits (server.max_concurrent_reads_per_tenant):
# more would be refused by B's own bound, not by a neighbour.
B_READ_CONNECTIONS = 2
# The slow reads' rate, as a multiple of B's reads: far more than A's read permits can serve at
# once (each such read takes tens of milliseconds), so A's permits stay taken the whole phase.
SLOW_READ_MULTIPLE = 20
# A tenant holds at most this many subscriptions (herald-domain MAX_SUBSCRIPTIONS_PER_TENANT).
TARPIT_SUBSCRIPTIONS = 20
# B's requests answered other than 2xx, beyond which a phase fails.
MAX_B_REFUSED_SHARE = 0.01


def fail(message):
    print(f"[bench neighbours] {message}", file=sys.stderr)
    sys.exit(1)


def log(message):
    print(f"[bench neighbours] {message}", file=sys.stderr, flush=True)


class Api:
    def __init__(self, url, key):
        self.url = url.rstrip("/")
        self.key = key

    def call(self, method, path, body=None):
        parts = urlsplit(self.url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        connection.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = connection.getresponse()
        answer = response.read()
        connection.close()
        return response.status, answer

    def must(self, method, path, body, expected):
        status, answer = self.call(method, path, body)
        if status not in expected:
            fail(f"{method} {path} answered {status}: {answer[:300]!r}")
        return json.loads(answer) if answer else None


class Tarpit:
    """A TCP endpoint that accepts every connection and never answers: the worst webhook a
    tenant can register. Counts the connections it holds at once."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1024)
        self.port = self.listener.getsockname()[1]
        self.held = []
        self.most_held = 0
        self.accepted = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()
        threading.Thread(target=self._drop_closed, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self):
        while True:
            connection, _ = self.listener.accept()
            connection.setblocking(False)
            with self.lock:
                self.accepted += 1
                self.held.append(connection)
                self.most_held = max(self.most_held, len(self.held))

    def _drop_closed(self):
        # A connection the client gave up on reads as closed (b""): forget it, so `most_held`
        # counts what the worker really holds open at once.
        while True:
            time.sleep(0.2)
            with self.lock:
                still_open = []
                for connection in self.held:
                    try:
                        if connection.recv(65536) == b"":
                            connection.close()
                            continue
                    except BlockingIOError:
                        pass
                    except OSError:
                        connection.close()
                        continue
                    still_open.append(connection)
                self.held = still_open

    def summary(self):
        with self.lock:
            return {"connections_accepted": self.accepted, "most_held_at_once": self.most_held}

    def most_held_since_last_asked(self):
        """The most connections held at once since the last call (a phase's own figure)."""
        with self.lock:
            most_held, self.most_held = self.most_held, len(self.held)
            return most_held


def notification(user_id, channel, phase, priority="normal"):
    return {
        "user_ids": [user_id],
        "channels": [channel],
        "content": {"subject": "Pressure alert", "body": "Pressure {{value}} bar on {{machine}}"},
        "data": {"value": 7.2, "machine": "press-4", "phase": phase},
        "priority": priority,
    }


def write_lines(path, bodies):
    with open(path, "w") as file:
        for body in bodies:
            file.write(json.dumps(body) + "\n")


def oha(args, name, url, key, rate, seconds, connections, method="GET", body_lines=None, body=None):
    """Starts a fixed-rate oha run (rate 0: as fast as `connections` allow); returns the process
    and where its JSON goes."""
    output = os.path.join(args.out_dir, f"oha-neighbours-{name}.json")
    command = ["oha", "-z", f"{seconds}s", "-c", str(connections), "--no-tui", "--output-format", "json",
               "-m", method, "-H", f"Authorization: Bearer {key}"]
    if rate:
        command += ["-q", str(rate), "--latency-correction"]
    if body_lines:
        command += ["-T", "application/json", "-Z", body_lines]
    elif body:
        command += ["-T", "application/json", "-D", body]
    command.append(url)
    process = subprocess.Popen(command, stdout=open(output, "w"), stderr=subprocess.DEVNULL)
    return process, output


def read_oha(output):
    data = json.load(open(output))
    codes = data.get("statusCodeDistribution", {})
    percentiles = data.get("latencyPercentiles") or {}
    return {
        "requests": sum(codes.values()),
        "status_codes": codes,
        "errors": data.get("errorDistribution", {}),
        "p50_ms": round(percentiles["p50"] * 1000, 2) if percentiles.get("p50") is not None else None,
        "p99_ms": round(percentiles["p99"] * 1000, 2) if percentiles.get("p99") is not None else None,
    }


def psql(args, sql):
    return subprocess.run(["psql", args.database_url, "-qtAc", sql], check=True, capture_output=True,
                          text=True).stdout


def set_up(args, tenant_a, tenant_b, tarpit):
    simulator = args.simulator.rstrip("/")
    for index in range(B_USERS):
        tenant_b.must("PUT", f"/v1/users/b-{index}", {
            "phone": f"+1415555{index:04d}",
            "channel_data": {"webhook": {"url": f"{simulator}/webhooks/{WEBHOOK_ENDPOINT}", "secret": WEBHOOK_SECRET}},
        }, (200, 201))
    tenant_a.must("PUT", f"/v1/users/{A_FLOOD_USER}", {"phone": "+14155559999"}, (200, 201))
    tenant_a.must("PUT", f"/v1/users/{A_TARPIT_USER}", {
        "channel_data": {"webhook": {"url": tarpit.url("/hook"), "secret": WEBHOOK_SECRET}},
    }, (200, 201))


class Attack:
    """One of A's attacks, started beside B's load and stopped with it."""

    def __init__(self, name):
        self.name = name
        self.processes = []
        self.threads = []
        self.stopping = threading.Event()
        self.counters = {}
        self.lock = threading.Lock()

    def count(self, key, by=1):
        with self.lock:
            self.counters[key] = self.counters.get(key, 0) + by

    def stop(self):
        self.stopping.set()
        for process, _ in self.processes:
            process.wait()
        for thread in self.threads:
            thread.join(timeout=15)
        summary = dict(self.counters)
        for process, output in self.processes:
            summary[os.path.basename(output)] = read_oha(output)
        return summary


def start_attack(name, args, tenant_a, tarpit):
    attack = Attack(name)
    seconds = args.phase_seconds
    url = args.api.rstrip("/")
    bodies_dir = args.out_dir
    if name == "priority_flood":
        path = os.path.join(bodies_dir, "neighbours-a-flood.jsonl")
        write_lines(path, [notification(A_FLOOD_USER, "sms", name, "high")])
        rate = FLOOD_MULTIPLE * args.b_rate
        attack.processes.append(oha(args, "a-flood", f"{url}/v1/notifications", tenant_a.key, rate, seconds, 64,
                                    "POST", body_lines=path))
    elif name == "tarpit_webhooks":
        path = os.path.join(bodies_dir, "neighbours-a-tarpit.jsonl")
        write_lines(path, [notification(A_TARPIT_USER, "webhook", name)])
        attack.processes.append(oha(args, "a-tarpit", f"{url}/v1/notifications", tenant_a.key, 2 * args.b_rate,
                                    seconds, 32, "POST", body_lines=path))
    elif name == "trickling_bodies":
        for _ in range(TRICKLING_CONNECTIONS):
            thread = threading.Thread(target=trickle, args=(attack, url, tenant_a.key), daemon=True)
            thread.start()
            attack.threads.append(thread)
    elif name == "bogus_keys":
        # Every request a different unknown key would need a generator per key; one bogus key at
        # five times B's rate from B's own address is the harsher case: the same client as B.
        path = os.path.join(bodies_dir, "neighbours-a-bogus.jsonl")
        write_lines(path, [notification("b-0", "sms", name)])
        attack.processes.append(oha(args, "a-bogus-keys", f"{url}/v1/notifications", "hk_bogus_" + "x" * 40,
                                    5 * args.b_rate, seconds, 32, "POST", body_lines=path))
    elif name in ("slow_reads", "request_flood"):
        # A recipient with no notification among A's newest: the index path, over A's whole flood.
        # `slow_reads` at a fixed rate that keeps A's read permits taken; `request_flood` the same
        # requests as fast as the connections go, answered 429 but each answered: what it costs is
        # the CPU every tenant shares (on this machine with the generator's own), which only a
        # rate limit in front of the API (an ingress) bounds.
        rate = SLOW_READ_MULTIPLE * args.b_read_rate if name == "slow_reads" else 0
        attack.processes.append(oha(args, f"a-{name.replace('_', '-')}",
                                    f"{url}/v1/notifications?user_id={A_FLOOD_USER}&limit=100",
                                    tenant_a.key, rate, seconds, SLOW_READ_CONNECTIONS))
    elif name == "placeholder_bombs":
        path = os.path.join(bodies_dir, "neighbours-a-bomb.json")
        bomb = notification(A_FLOOD_USER, "sms", name)
        bomb["content"]["body"] = "{{a}}" * 13_107
        bomb["data"]["a"] = "x" * 65_000
        with open(path, "w") as file:
            json.dump(bomb, file)
        attack.processes.append(oha(args, "a-bombs", f"{url}/v1/notifications", tenant_a.key, args.b_rate // 2,
                                    seconds, 16, "POST", body=path))
    elif name == "tarpit_subscriptions":
        made = 0
        for _ in range(TARPIT_SUBSCRIPTIONS):
            status, _ = tenant_a.call("POST", "/v1/webhooks", {"url": tarpit.url("/events"), "events": ["*"]})
            made += status == 201
        if made == 0:
            fail("tarpit_subscriptions: the API refused every subscription")
        attack.count("subscriptions", made)
        path = os.path.join(bodies_dir, "neighbours-a-events.jsonl")
        write_lines(path, [notification(A_FLOOD_USER, "sms", name)])
        attack.processes.append(oha(args, "a-events", f"{url}/v1/notifications", tenant_a.key, 2 * args.b_rate,
                                    seconds, 32, "POST", body_lines=path))
    else:
        fail(f"unknown attack {name}")
    return attack


def trickle(attack, api_url, key):
    """A body that arrives a byte a second, over and over until the phase ends: each connection
    holds whatever the API reserves for it until the API cuts it."""
    parts = urlsplit(api_url)
    while not attack.stopping.is_set():
        try:
            connection = socket.create_connection((parts.hostname, parts.port), timeout=30,
                                                  source_address=(TRICKLING_SOURCE_ADDRESS, 0))
        except OSError:
            attack.count("connect_failures")
            time.sleep(0.5)
            continue
        attack.count("connections")
        try:
            connection.sendall((f"POST /v1/notifications HTTP/1.1\r\nHost: {parts.hostname}\r\n"
                                f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n").encode())
            connection.settimeout(1.0)
            while not attack.stopping.is_set():
                connection.sendall(b"1\r\n \r\n")
                try:
                    answer = connection.recv(4096)
                except socket.timeout:
                    continue
                status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "closed"
                attack.count(f"answered_{status}")
                break
        except OSError:
            attack.count("cut")
        finally:
            connection.close()


def b_load(args, tenant_b, phase):
    path = os.path.join(args.out_dir, f"neighbours-b-{phase}.jsonl")
    write_lines(path, [notification(f"b-{index}", channel, phase)
                       for index in range(B_USERS) for channel in ("sms", "webhook")])
    url = args.api.rstrip("/")
    posts = oha(args, f"b-posts-{phase}", f"{url}/v1/notifications", tenant_b.key, args.b_rate,
                args.phase_seconds, 32, "POST", body_lines=path)
    reads = oha(args, f"b-reads-{phase}", f"{url}/v1/notifications?limit=10", tenant_b.key, args.b_read_rate,
                args.phase_seconds, B_READ_CONNECTIONS)
    return posts, reads


def wait_for_b(args, tenant_b_id, accepted_by_phase):
    """Waits until every one of B's accepted notifications' deliveries is sent; returns what is
    still missing (empty when none)."""
    deadline = time.monotonic() + args.drain_seconds
    while True:
        rows = psql(args, f"""
            SELECT n.data->>'phase', count(DISTINCT n.id), count(*) FILTER (WHERE d.status = 'sent')
            FROM notifications n JOIN deliveries d ON d.notification_id = n.id
            WHERE n.tenant_id = '{tenant_b_id}' GROUP BY 1""")
        done = {}
        for line in rows.splitlines():
            phase, notifications, sent = line.split("|")
            done[phase] = (int(notifications), int(sent))
        missing = {phase: f"{done.get(phase, (0, 0))[1]} of {accepted} sent"
                   for phase, accepted in accepted_by_phase.items()
                   if done.get(phase, (0, 0))[0] < accepted or done.get(phase, (0, 0))[1] < accepted}
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(1)


def accept_to_delivery(args, tenant_b_id):
    rows = psql(args, f"""
        SELECT n.data->>'phase',
          round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.updated_at - n.created_at)) * 1000)::numeric, 1),
          round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM d.updated_at - n.created_at)) * 1000)::numeric, 1)
        FROM notifications n JOIN deliveries d ON d.notification_id = n.id
        WHERE n.tenant_id = '{tenant_b_id}' AND d.status = 'sent' GROUP BY 1""")
    figures = {}
    for line in rows.splitlines():
        phase, p50, p99 = line.split("|")
        figures[phase] = {"p50_ms": float(p50), "p99_ms": float(p99)}
    return figures


def ratio(value, alone):
    return round(value / alone, 2) if value is not None and alone else None


def main():
    parser = argparse.ArgumentParser()
    for name in ("--api", "--key-a", "--key-b", "--simulator", "--database-url", "--out-dir"):
        parser.add_argument(name, required=True)
    for name in ("--phase-seconds", "--b-rate", "--b-read-rate", "--latency-ms", "--drain-seconds"):
        parser.add_argument(name, type=int, required=True)
    args = parser.parse_args()

    tenant_a, tenant_b = Api(args.api, args.key_a), Api(args.api, args.key_b)
    tarpit = Tarpit()
    set_up(args, tenant_a, tenant_b, tarpit)
    tenant_b_id = psql(args, f"SELECT tenant_id FROM users WHERE id = 'b-0'").strip()
    if not tenant_b_id:
        fail("tenant B's users were not stored")

    # A first phase, not reported, warms every cache, pool and lane: "alone" must not be the cold one.
    phases = {}
    for phase in ["warm_up", "alone"] + ATTACKS:
        log(f"{phase}: B at {args.b_rate} req/s for {args.phase_seconds}s")
        attack = start_attack(phase, args, tenant_a, tarpit) if phase in ATTACKS else None
        (posts, posts_output), (reads, reads_output) = b_load(args, tenant_b, phase)
        posts.wait()
        reads.wait()
        attack_summary = attack.stop() if attack else {}
        attack_summary["tarpit_most_held_at_once"] = tarpit.most_held_since_last_asked()
        phases[phase] = {"b_posts": read_oha(posts_output), "b_reads": read_oha(reads_output),
                         "attack": attack_summary}

    del phases["warm_up"]
    accepted_by_phase = {phase: figures["b_posts"]["status_codes"].get("202", 0) for phase, figures in phases.items()}
    log(f"waiting for B's deliveries: {accepted_by_phase}")
    missing = wait_for_b(args, tenant_b_id, accepted_by_phase)
    delivery = accept_to_delivery(args, tenant_b_id)

    alone = phases["alone"]
    alone_delivery = delivery.get("alone", {})
    problems = []
    for phase, figures in phases.items():
        figures["b_accept_to_delivery"] = delivery.get(phase, {"p50_ms": None, "p99_ms": None})
        figures["ratio_to_alone"] = {
            "post_p99": ratio(figures["b_posts"]["p99_ms"], alone["b_posts"]["p99_ms"]),
            "read_p99": ratio(figures["b_reads"]["p99_ms"], alone["b_reads"]["p99_ms"]),
            "accept_to_delivery_p99": ratio(figures["b_accept_to_delivery"]["p99_ms"], alone_delivery.get("p99_ms")),
        }
        for kind in ("b_posts", "b_reads"):
            answered = figures[kind]
            ok = sum(n for code, n in answered["status_codes"].items() if code.startswith("2"))
            if answered["requests"] == 0 or (answered["requests"] - ok) > MAX_B_REFUSED_SHARE * answered["requests"]:
                problems.append(f"{phase}: B's {kind} answered {answered['status_codes']} {answered['errors']}")
    if missing:
        problems.append(f"B's accepted notifications not all delivered after {args.drain_seconds}s: {missing}")

    result = {
        "b_load": {"posts_per_second": args.b_rate, "reads_per_second": args.b_read_rate,
                   "channels": ["sms", "webhook"], "simulator_latency_ms": args.latency_ms},
        "phase_seconds": args.phase_seconds,
        "accept_to_delivery": "notifications.created_at to the delivery's recorded sent (deliveries.updated_at)",
        "tarpit": tarpit.summary(),
        "machine": {"cpus": os.cpu_count(), "loadavg_1_5_15": open("/proc/loadavg").read().split()[:3]},
        "phases": phases,
    }
    json.dump(result, open(os.path.join(args.out_dir, "neighbours.json"), "w"), indent=2)

    print(f"neighbours: tenant B at {args.b_rate} POST/s (sms + webhook) and {args.b_read_rate} reads/s, "
          f"{args.phase_seconds}s per phase; P99 in ms, ratio to B alone")
    print(f"{'phase':<22}{'POST p50':>9}{'POST p99':>9}{'ratio':>7}{'read p99':>9}{'ratio':>7}"
          f"{'deliv p50':>10}{'deliv p99':>10}{'ratio':>7}")
    for phase, figures in phases.items():
        posts, reads, delivered = figures["b_posts"], figures["b_reads"], figures["b_accept_to_delivery"]
        ratios = figures["ratio_to_alone"]
        print(f"{phase:<22}{str(posts['p50_ms']):>9}{str(posts['p99_ms']):>9}{str(ratios['post_p99']):>7}"
              f"{str(reads['p99_ms']):>9}{str(ratios['read_p99']):>7}"
              f"{str(delivered['p50_ms']):>10}{str(delivered['p99_ms']):>10}{str(ratios['accept_to_delivery_p99']):>7}")
    if problems:
        fail("; ".join(problems))


if __name__ == "__main__":
    main()
