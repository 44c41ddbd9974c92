#!/usr/bin/env python3
"""The load scripts/check-dashboards.sh drives a running Herald with, so that every dashboard panel
and every series an alert reads has data: single and batch notifications (email and SMS, some to
recipients without a phone: skipped), scheduled ones, reads (one notification, lists), requests the
API refuses (422, 409, 401), and provider trouble (the simulator fails, rate-limits and slows some
sends, so the worker retries and, with a small worker.max_attempts, dead-letters).

    load.py API_URL API_KEY SIMULATOR_URL [--seconds 40] [--rate 40]

Standard library only. Counts requests, not time: it never fails on latency. It exits non-zero
only when the API accepted nothing or the simulator received nothing.
"""
import argparse
import collections
import concurrent.futures
import datetime
import json
import random
import threading
import time
import urllib.error
import urllib.request

USERS = 60

# Provider trouble, set on the simulator at run time (PUT /_sim/config/{provider}). The rates are
# shares of valid requests; 429s carry Retry-After: 1.
SIMULATOR = {
    "sendgrid": {"latency_ms": 20, "latency_jitter_ms": 30, "failure_rate": 0.05, "rate_limit_rate": 0.02},
    "twilio": {"latency_ms": 30, "latency_jitter_ms": 40, "failure_rate": 0.25, "rate_limit_rate": 0.1,
               "retry_after": "1"},
}


class Api:
    def __init__(self, url, key):
        self.url = url.rstrip("/")
        self.key = key
        self.counts = collections.Counter()
        self.ids = collections.deque(maxlen=500)
        self.lock = threading.Lock()

    def call(self, method, path, body=None, key=None, headers=None, label=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers={
            "Authorization": f"Bearer {key or self.key}",
            "Content-Type": "application/json",
            **(headers or {}),
        })
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        except OSError as error:  # refused, reset, timeout: counted, never fatal
            status, payload = type(error).__name__, b""
        with self.lock:
            self.counts[f"{label or method} {status}"] += 1
        try:
            return status, json.loads(payload) if payload else None
        except ValueError:
            return status, None

    def remember(self, status, body):
        if status == 202 and body:
            ids = [body["id"]] if "id" in body else [r["id"] for r in body.get("results", []) if r.get("id")]
            with self.lock:
                self.ids.extend(ids)

    def some_id(self):
        with self.lock:
            return random.choice(self.ids) if self.ids else None


def notification(users, subject="Check", scheduled_in=None):
    body = {
        "user_ids": users,
        "channels": ["email", "sms"],
        "content": {"subject": subject, "body": "Pressure {{value}} at {{site}}"},
        "data": {"value": random.randint(1, 99), "site": "north"},
        "priority": random.choice(["low", "normal", "high"]),
    }
    if scheduled_in:
        at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=scheduled_in)
        body["scheduled_for"] = at.isoformat().replace("+00:00", "Z")
    return body


def users(n):
    return [f"obs-u{i}" for i in random.sample(range(USERS), n)]


def one_request(api, kind, serial):
    if kind == "single":
        api.remember(*api.call("POST", "/v1/notifications", notification(users(random.randint(1, 3))), label="single"))
    elif kind == "batch":
        items = [notification(users(random.randint(1, 2))) for _ in range(10)]
        api.remember(*api.call("POST", "/v1/notifications/batch", {"notifications": items}, label="batch",
                               headers={"Idempotency-Key": f"obs-batch-{serial}-{time.time_ns()}"}))
    elif kind == "templated":  # rendered by the worker from a compiled version it caches
        body = notification(users(random.randint(1, 2)))
        del body["content"]
        body["template_id"] = "obs-alert"
        api.remember(*api.call("POST", "/v1/notifications", body, label="templated"))
    elif kind == "get":
        found = api.some_id()
        if found:
            api.call("GET", f"/v1/notifications/{found}", label="get")
    elif kind == "list":
        api.call("GET", f"/v1/notifications?user_id={users(1)[0]}&limit=20", label="list")
    elif kind == "invalid":  # 422: a placeholder without a value
        body = notification(users(1))
        body["data"] = {}
        api.call("POST", "/v1/notifications", body, label="invalid")
    elif kind == "conflict":  # 409: one idempotency key, two different requests
        key = f"obs-conflict-{serial}-{time.time_ns()}"
        api.call("POST", "/v1/notifications", {**notification(users(1)), "idempotency_key": key}, label="idem")
        api.call("POST", "/v1/notifications", {**notification(users(1), "Other"), "idempotency_key": key}, label="idem")
    elif kind == "unauthorized":
        api.call("GET", "/v1/notifications?limit=1", key="hk_unknown", label="unauthorized")


MIX = [("single", 40), ("templated", 5), ("batch", 8), ("get", 25), ("list", 12), ("invalid", 5), ("conflict", 3), ("unauthorized", 2)]


def configure_simulator(url):
    for provider, behaviour in SIMULATOR.items():
        request = urllib.request.Request(f"{url.rstrip('/')}/_sim/config/{provider}", method="PUT",
                                         data=json.dumps(behaviour).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def simulator_stats(url):
    with urllib.request.urlopen(f"{url.rstrip('/')}/_sim/stats", timeout=10) as response:
        return json.load(response)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("api_url")
    parser.add_argument("api_key")
    parser.add_argument("simulator_url")
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--rate", type=float, default=40, help="requests per second over the whole mix")
    args = parser.parse_args()

    configure_simulator(args.simulator_url)
    api = Api(args.api_url, args.api_key)
    for i in range(USERS):
        user = {"email": f"obs-u{i}@example.com", "locale": "en"}
        if i % 10:  # every tenth recipient has no phone: its SMS deliveries are skipped
            user["phone"] = f"+1415555{i:04d}"
        api.call("PUT", f"/v1/users/obs-u{i}", user, label="user")
    status, _ = api.call("PUT", "/v1/templates/obs-alert", {"channels": {
        "email": {"subject": "Pressure at {{ data.site }}", "text": "Pressure {{ data.value }} at {{ data.site }}",
                  "html": "<p>Pressure <b>{{ data.value }}</b> at {{ data.site }}</p>"},
        "sms": {"text": "Pressure {{ data.value }} at {{ data.site }}"},
    }}, label="template")
    if status not in (200, 201):
        print(f"load: the template was not written ({status}): the templated notifications would all be refused")
        return 1
    # Routing rules that route every channel: the workers evaluate them on each notification.
    status, _ = api.call("PUT", "/v1/routing-rules", {"rules": [
        {"name": "pages", "channels": ["email", "sms"], "when": [{"field": "value", "op": "gte", "value": 90}]},
        {"name": "everything", "channels": ["email", "sms"]},
    ]}, label="rules")
    if status != 200:
        print(f"load: the routing rules were not written ({status})")
        return 1
    # Due while the load runs: the scheduler releases them.
    for delay in (3, 8, 15):
        api.remember(*api.call("POST", "/v1/notifications", notification(users(2), scheduled_in=delay),
                               label="scheduled"))

    kinds = [k for k, weight in MIX for _ in range(weight)]
    started = time.monotonic()
    serial = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        pending = set()
        while time.monotonic() - started < args.seconds:
            due = started + serial / args.rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            pending = {f for f in pending if not f.done()}
            if len(pending) < 64:  # an overloaded API is not queued up without bound
                pending.add(pool.submit(one_request, api, random.choice(kinds), serial))
            serial += 1
        concurrent.futures.wait(pending)

    print("load: " + ", ".join(f"{key}: {n}" for key, n in sorted(api.counts.items())))
    stats = simulator_stats(args.simulator_url)
    print("simulator: " + ", ".join(
        f"{p} {s.get('requests', 0)} requests ({s.get('accepted', 0)} accepted, {s.get('server_errors', 0)} 5xx, "
        f"{s.get('rate_limited', 0)} 429)" for p, s in sorted(stats.items()) if isinstance(s, dict)))
    accepted = sum(n for key, n in api.counts.items() if key.endswith(" 202") and not key.startswith("user"))
    if not accepted:
        print("load: the API accepted nothing")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
