#!/usr/bin/env python3
"""Checks what the Herald chart rendered against the rules schemas cannot express.

    check-rendered.py RENDERED.yaml      (the output of `helm template`)

  * no Secret is rendered, and every credential reaches the pods through secretKeyRef only (the SMTP
    URL may also be empty, failover off, or the simulator's sink, which carries no credentials);
  * every Herald pod runs non-root, with a read-only root filesystem, no privilege escalation,
    no capabilities and the RuntimeDefault seccomp profile; every container has resources;
  * the API and the workers have /healthz liveness and /readyz readiness probes and spread over
    zones and nodes; the migrations Job is a pre-install/pre-upgrade hook;
  * OpenTelemetry: the standard OTEL_* variables, all of them or none, on every Herald process;
  * herald.toml parses and listens on every interface;
  * the worker's SMTP failover (HERALD_SMTP_URL) is always set: the simulator's Service with the
    simulator, else a Secret or empty, never the built-in loopback default;
  * terminationGracePeriodSeconds outlasts the drain deadlines (workers: 2 x drain_timeout_ms);
  * the KEDA ScaledObject never allows more workers than partitions, watches the configured topic
    and consumer group, and the Strimzi KafkaTopic has the configured partitions and retention;
  * Services, PodDisruptionBudgets, the HPA and the ScaledObject select or target what exists;
  * every object fits client-side `kubectl apply`; ServiceMonitors scrape a port their Service has; PrometheusRule groups pass
    `promtool check rules`; dashboard ConfigMaps hold JSON Grafana's sidecar can load as it is.
Prints what it checked; exits 1 on the first list of problems.
"""

import json
import os
import subprocess
import sys
import tempfile
import tomllib

import yaml

CREDENTIAL_ENV = {"HERALD_DATABASE__URL", "HERALD_REDIS__URL",
                  "HERALD_SENDGRID_API_KEY", "HERALD_PROVIDERS__SENDGRID__API_KEY",
                  "HERALD_TWILIO_AUTH_TOKEN", "HERALD_PROVIDERS__TWILIO__AUTH_TOKEN",
                  "HERALD_TELEGRAM_BOT_TOKEN", "HERALD_PROVIDERS__TELEGRAM__BOT_TOKEN",
                  "HERALD_PROVIDERS__PUSHOVER__APP_TOKEN",
                  "HERALD_SMTP_URL", "HERALD_PROVIDERS__SMTP__URL"}
# The email failover's URL (a credential) may also be a plain value, but only an empty one (failover
# off) or, when the simulator is rendered, its Service's SMTP sink (no credentials in it).
SMTP_URL_ENV = ("HERALD_SMTP_URL", "HERALD_PROVIDERS__SMTP__URL")
# Settings of config/herald.toml that are secrets: never in the rendered herald.toml.
SECRET_SETTINGS = ("database.url", "redis.url", "providers.sendgrid.api_key",
                   "providers.twilio.auth_token", "providers.telegram.bot_token",
                   "providers.pushover.app_token", "providers.smtp.url")
# The providers reached at a configured base URL, and the path the simulator serves each under
# (the chart's herald.simProviderPaths): the simulator's Service plus it with the simulator, else a
# real endpoint.
SIM_PATHS = {"sendgrid": "", "twilio": "", "telegram": "/telegram", "pushover": "/pushover"}
CREDENTIAL_WORDS = ("PASSWORD", "TOKEN", "API_KEY", "SECRET")
API_SHUTDOWN_SECONDS = 46  # herald-api startup.rs: 30 + 10 + 1 + 5 (see _helpers.tpl)

problems = []
checked = []


def problem(message):
    problems.append(message)


def name_of(doc):
    return f"{doc['kind']}/{doc['metadata']['name']}"


def pod_spec(doc):
    if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
        return doc["spec"]["template"]["spec"]
    return None


def matches(selector, labels):
    return all(labels.get(key) == value for key, value in selector.items())


def sim_service_urls(by_kind):
    """The simulator's HTTP base URL and SMTP URL through its Service, or (None, None) without one."""
    sims = [doc for doc in by_kind.get("Deployment", [])
            if doc["metadata"]["labels"].get("app.kubernetes.io/component") == "provider-sim"]
    if not sims:
        return None, None
    for svc in by_kind.get("Service", []):
        if matches(svc["spec"]["selector"], sims[0]["spec"]["template"]["metadata"]["labels"]):
            ports = {port.get("name"): port["port"] for port in svc["spec"]["ports"]}
            name = svc["metadata"]["name"]
            return (f"http://{name}:{ports['http']}" if "http" in ports else None,
                    f"smtp://{name}:{ports['smtp']}" if "smtp" in ports else None)
    return None, None


def main(path):
    docs = [doc for doc in yaml.safe_load_all(open(path)) if doc]
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)

    # Secrets and credentials.
    sim_http, sim_smtp = sim_service_urls(by_kind)
    plain_smtp_urls = {"", sim_smtp} if sim_smtp else {""}
    for doc in by_kind.get("Secret", []):
        problem(f"{name_of(doc)}: the chart must not render Secrets (it references existing ones)")
    checked.append("no Secret rendered")

    # herald.toml
    configs = {}
    for doc in by_kind.get("ConfigMap", []):
        if "herald.toml" in doc.get("data", {}):
            try:
                config = tomllib.loads(doc["data"]["herald.toml"])
            except tomllib.TOMLDecodeError as error:
                problem(f"{name_of(doc)}: herald.toml does not parse: {error}")
                continue
            configs[doc["metadata"]["name"]] = config
            host = config.get("server", {}).get("host")
            if host in ("127.0.0.1", "localhost", "::1"):
                problem(f"{name_of(doc)}: server.host {host} is unreachable from outside the pod")
            for setting in SECRET_SETTINGS:
                *tables, key = setting.split(".")
                table = config
                for name in tables:
                    table = table.get(name, {})
                if key in table:
                    problem(f"{name_of(doc)}: {setting} is a secret and must not be in herald.toml")
    if not configs:
        problem("no ConfigMap with herald.toml")
    checked.append(f"herald.toml parses ({len(configs)} ConfigMap(s))")

    workloads = [doc for kind in ("Deployment", "StatefulSet", "Job") for doc in by_kind.get(kind, [])]
    herald_workloads = [doc for doc in workloads
                        if doc["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "herald"]
    for doc in herald_workloads:
        spec = pod_spec(doc)
        pod_security = spec.get("securityContext", {})
        if pod_security.get("runAsNonRoot") is not True:
            problem(f"{name_of(doc)}: pod securityContext.runAsNonRoot must be true")
        if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problem(f"{name_of(doc)}: pod seccompProfile must be RuntimeDefault")
        if spec.get("automountServiceAccountToken") is not False:
            problem(f"{name_of(doc)}: automountServiceAccountToken must be false")
        if spec.get("enableServiceLinks") is not False:
            problem(f"{name_of(doc)}: enableServiceLinks must be false (Service variables look like HERALD_* settings)")
        for container in spec.get("initContainers", []) + spec["containers"]:
            where = f"{name_of(doc)} container {container['name']}"
            security = container.get("securityContext", {})
            if security.get("allowPrivilegeEscalation") is not False:
                problem(f"{where}: allowPrivilegeEscalation must be false")
            if security.get("readOnlyRootFilesystem") is not True:
                problem(f"{where}: readOnlyRootFilesystem must be true")
            if "ALL" not in security.get("capabilities", {}).get("drop", []):
                problem(f"{where}: capabilities must drop ALL")
            if not container.get("resources", {}).get("requests"):
                problem(f"{where}: resources.requests missing")
            for env in container.get("env", []):
                sensitive = env["name"] in CREDENTIAL_ENV or any(
                    word in env["name"] for word in CREDENTIAL_WORDS)
                if env["name"] in SMTP_URL_ENV and env.get("value") in plain_smtp_urls:
                    continue
                if sensitive and "secretKeyRef" not in env.get("valueFrom", {}):
                    problem(f"{where}: {env['name']} must come from a secretKeyRef")
    checked.append(f"security contexts and secretKeyRef-only credentials ({len(herald_workloads)} workloads)")

    deployments = {doc["metadata"]["name"]: doc for doc in by_kind.get("Deployment", [])}

    def component(name):
        for doc in deployments.values():
            if doc["metadata"]["labels"].get("app.kubernetes.io/component") == name:
                return doc
        return None

    def config_of(doc):
        for volume in pod_spec(doc).get("volumes", []):
            if "configMap" in volume and volume["configMap"]["name"] in configs:
                return configs[volume["configMap"]["name"]]
        problem(f"{name_of(doc)}: mounts no herald.toml ConfigMap")
        return {}

    api, worker = component("api"), component("worker")
    if not api or not worker:
        problem("the API and worker Deployments must both be rendered")
        return
    for doc, port in ((api, "http"), (worker, "metrics")):
        container = pod_spec(doc)["containers"][0]
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            got = container.get(probe, {}).get("httpGet", {})
            if got.get("path") != path or got.get("port") != port:
                problem(f"{name_of(doc)}: {probe} must GET {path} on port {port}, not {got}")
    checked.append("/healthz liveness and /readyz readiness probes")

    for doc in (api, worker):
        labels = doc["spec"]["template"]["metadata"]["labels"]
        spread = pod_spec(doc).get("topologySpreadConstraints", [])
        keys = {constraint["topologyKey"] for constraint in spread
                if matches(constraint.get("labelSelector", {}).get("matchLabels", {"": None}), labels)}
        if not spread:
            print(f"note: {name_of(doc)} has no topologySpreadConstraints")
        elif not keys:
            problem(f"{name_of(doc)}: topologySpreadConstraints select none of its own pods")
    checked.append("topology spread selects each component's own pods")

    for doc in by_kind.get("Job", []):
        if doc["metadata"]["labels"].get("app.kubernetes.io/component") != "migrations":
            continue
        hooks = set(doc["metadata"].get("annotations", {}).get("helm.sh/hook", "").split(","))
        if not {"pre-install", "pre-upgrade"} <= hooks:
            problem(f"{name_of(doc)}: must be a pre-install,pre-upgrade hook, not {sorted(hooks)}")
        else:
            checked.append("migrations Job is a pre-install/pre-upgrade hook")

    otel_standard = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_SERVICE_NAME",
                     "OTEL_TRACES_SAMPLER")
    otel_seen = {}
    for doc in herald_workloads:
        for container in pod_spec(doc)["containers"]:
            env = {item["name"]: item.get("value") for item in container.get("env", [])}
            if not any(name.startswith("OTEL_") for name in env):
                continue
            where = f"{name_of(doc)} container {container['name']}"
            missing = [name for name in otel_standard if not env.get(name)]
            if missing:
                problem(f"{where}: OTEL_* set, but not {', '.join(missing)}")
            if env.get("OTEL_EXPORTER_OTLP_PROTOCOL") not in ("grpc", "http/protobuf"):
                problem(f"{where}: OTEL_EXPORTER_OTLP_PROTOCOL must be grpc or http/protobuf")
            otel_seen[where] = env.get("OTEL_SERVICE_NAME")
    if otel_seen:
        if len(set(otel_seen.values())) < len({where.split(" ")[0] for where in otel_seen}):
            problem(f"OTEL_SERVICE_NAME must differ per component: {otel_seen}")
        for doc in (api, worker):
            if not any(where.startswith(name_of(doc) + " ") for where in otel_seen):
                problem(f"{name_of(doc)}: exports no traces although other components do")
        checked.append(f"OTEL_* variables on {len(otel_seen)} containers: "
                       + ", ".join(sorted(set(otel_seen.values()))))

    api_config, worker_config = config_of(api), config_of(worker)
    drain_seconds = worker_config.get("worker", {}).get("drain_timeout_ms", 30000) / 1000
    grace = pod_spec(worker).get("terminationGracePeriodSeconds", 30)
    if grace <= 2 * drain_seconds:
        problem(f"{name_of(worker)}: terminationGracePeriodSeconds {grace} must exceed 2 x drain "
                f"({2 * drain_seconds:g} s)")
    api_pod = pod_spec(api)
    pre_stop = api_pod["containers"][0].get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    if api_pod.get("terminationGracePeriodSeconds", 30) <= API_SHUTDOWN_SECONDS + pre_stop:
        problem(f"{name_of(api)}: terminationGracePeriodSeconds must exceed {API_SHUTDOWN_SECONDS} s + preStop")
    checked.append(f"grace periods: worker {grace} s > 2 x {drain_seconds:g} s drain, "
                   f"API {api_pod.get('terminationGracePeriodSeconds')} s > {API_SHUTDOWN_SECONDS} s + {pre_stop} s preStop")

    # Provider endpoints: the simulator's Service when it is rendered (and private networks allowed,
    # for recipients' URLs pointing at it), else real endpoints, never the loopback defaults.
    sim = component("provider-sim")
    for doc, config in ((api, api_config), (worker, worker_config)):
        providers = config.get("providers", {})
        allow_private = config.get("outbound", {}).get("allow_private_networks", False)
        if sim:
            if not sim_http:
                problem(f"{name_of(sim)}: no Service with a port named http selects the simulator")
                continue
            want = {name: sim_http + path for name, path in SIM_PATHS.items()}
            if not allow_private:
                problem(f"{name_of(doc)}: outbound.allow_private_networks must be true with the simulator "
                        "(recipients' Slack/Discord/webhook URLs point at its cluster IP)")
        else:
            want = {}
        for name in SIM_PATHS:
            url = providers.get(name, {}).get("base_url")
            if name in want and url != want[name]:
                problem(f"{name_of(doc)}: providers.{name}.base_url is {url}, not the simulator's {want[name]}")
            elif not want and (not url or "127.0.0.1" in url or "localhost" in url):
                problem(f"{name_of(doc)}: providers.{name}.base_url must name the real provider, not {url}")
    checked.append("provider endpoints: " + ("the simulator's Service, private networks allowed" if sim
                                             else "real base URLs for " + ", ".join(SIM_PATHS)))

    # The email failover: unset, the built-in default (a simulator on 127.0.0.1) would apply.
    smtp_env = [env for env in pod_spec(worker)["containers"][0].get("env", [])
                if env["name"] in SMTP_URL_ENV]
    if not smtp_env:
        problem(f"{name_of(worker)}: HERALD_SMTP_URL must be set (a Secret, the simulator's sink or empty), "
                "or the built-in loopback default applies")
    if sim and not sim_smtp:
        problem(f"{name_of(sim)}: no Service with a port named smtp selects the simulator (the workers' email failover)")
    for env in smtp_env:
        if "secretKeyRef" in env.get("valueFrom", {}):
            continue
        if sim and env.get("value") != sim_smtp:
            problem(f"{name_of(worker)}: {env['name']} is {env.get('value')!r}, not the simulator's {sim_smtp}")
        elif not sim and env.get("value") != "":
            problem(f"{name_of(worker)}: {env['name']} must come from a secretKeyRef or be empty (failover off)")
    if sim:
        sim_container = pod_spec(sim)["containers"][0]
        listen = {env["name"]: env.get("value") for env in sim_container.get("env", [])}.get("HERALD_SIM_SMTP_LISTEN")
        ports = {port.get("name"): port["containerPort"] for port in sim_container.get("ports", [])}
        if listen != f"0.0.0.0:{ports.get('smtp')}":
            problem(f"{name_of(sim)}: HERALD_SIM_SMTP_LISTEN {listen} must be 0.0.0.0:<its smtp port {ports.get('smtp')}>")
    smtp_how = ("a Secret" if any("secretKeyRef" in env.get("valueFrom", {}) for env in smtp_env)
                else repr(smtp_env[0].get("value")) if smtp_env else "unset")
    checked.append(f"email failover: the worker's HERALD_SMTP_URL is {smtp_how}"
                   + ("; the simulator's SMTP sink listens on 0.0.0.0" if sim else ""))

    kafka = worker_config.get("kafka", {})
    partitions = kafka.get("partitions", 8)
    scaled = by_kind.get("ScaledObject", [])
    for doc in scaled:
        spec = doc["spec"]
        if spec["scaleTargetRef"]["name"] != worker["metadata"]["name"]:
            problem(f"{name_of(doc)}: scales {spec['scaleTargetRef']['name']}, not the workers")
        if not 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions:
            problem(f"{name_of(doc)}: need 1 <= minReplicaCount <= maxReplicaCount <= partitions ({partitions})")
        if "replicas" in worker["spec"]:
            problem(f"{name_of(worker)}: sets replicas although KEDA owns the count")
        # Lag on every topic the workers consume, in their group; and the delivery queue.
        main_topic = kafka.get("topic", "notifications")
        consumed = {main_topic, kafka.get("high_priority_topic") or f"{main_topic}.high"}
        group = worker_config.get("worker", {}).get("group_id", "herald-workers")
        watched = set()
        for trigger in spec["triggers"]:
            meta = trigger["metadata"]
            if trigger["type"] == "prometheus":
                # The Prometheus Operator labels each target with its Service: the workers' one.
                worker_services = [
                    service["metadata"]["name"] for service in by_kind.get("Service", [])
                    if service["spec"].get("selector", {}).get("app.kubernetes.io/component") == "worker"
                ]
                wanted_selector = (f'namespace="{doc["metadata"]["namespace"]}", '
                                   f'service="{worker_services[0] if worker_services else "?"}"')
                if "herald_delivery_queue_due" not in meta.get("query", "") or wanted_selector not in meta["query"]:
                    problem(f"{name_of(doc)}: the prometheus trigger reads {meta.get('query')!r}, not this release's delivery queue")
                continue
            if trigger["type"] != "kafka":
                problem(f"{name_of(doc)}: an unexpected {trigger['type']} trigger")
                continue
            watched.add(meta.get("topic"))
            if meta.get("consumerGroup") != group:
                problem(f"{name_of(doc)}: trigger watches {meta.get('topic')}/{meta.get('consumerGroup')}")
            if meta.get("allowIdleConsumers") != "false":
                problem(f"{name_of(doc)}: allowIdleConsumers must be \"false\"")
        if watched != consumed:
            problem(f"{name_of(doc)}: lag triggers on {sorted(watched)}, the workers consume {sorted(consumed)}")
        fallback = spec.get("fallback")
        if fallback and not spec["minReplicaCount"] <= fallback["replicas"] <= spec["maxReplicaCount"]:
            problem(f"{name_of(doc)}: fallback replicas {fallback['replicas']} outside the replica range")
    if not scaled and worker["spec"].get("replicas", 1) > partitions:
        problem(f"{name_of(worker)}: {worker['spec']['replicas']} replicas for {partitions} partitions")
    checked.append(f"worker replicas bounded by {partitions} partitions"
                   + (" (KEDA ScaledObject)" if scaled else ""))

    retention_days = worker_config.get("retention", {}).get("days", 30)
    main_topic = kafka.get("topic", "notifications")
    # The topic of priority high notifications: as many partitions as the main one (docs/DESIGN.md).
    consumed_topics = {main_topic, kafka.get("high_priority_topic") or f"{main_topic}.high"}
    for doc in by_kind.get("KafkaTopic", []):
        spec = doc["spec"]
        if spec["config"].get("retention.ms") != (retention_days - 1) * 86400000:
            problem(f"{name_of(doc)}: retention.ms must be (retention.days - 1) days")
        if spec["topicName"] in consumed_topics and spec["partitions"] != partitions:
            problem(f"{name_of(doc)}: {spec['partitions']} partitions, herald.toml says {partitions}")
    rendered_topics = {doc["spec"]["topicName"] for doc in by_kind.get("KafkaTopic", [])}
    if rendered_topics and not consumed_topics <= rendered_topics:
        problem(f"KafkaTopics: {sorted(consumed_topics - rendered_topics)} missing (the workers consume them)")
    if by_kind.get("KafkaTopic"):
        checked.append(f"KafkaTopics: partitions and retention.ms from herald.toml ({len(by_kind['KafkaTopic'])})")

    pod_labels = [(doc, doc["spec"]["template"]["metadata"]["labels"]) for doc in deployments.values()]
    for doc in by_kind.get("Service", []) + by_kind.get("PodDisruptionBudget", []):
        selector = doc["spec"]["selector"]
        selector = selector.get("matchLabels", selector) if doc["kind"] == "PodDisruptionBudget" else selector
        if not any(matches(selector, labels) for _, labels in pod_labels):
            problem(f"{name_of(doc)}: selects no Deployment's pods")
    for doc in (api, worker):
        if not any(matches(pdb["spec"]["selector"]["matchLabels"], doc["spec"]["template"]["metadata"]["labels"])
                   for pdb in by_kind.get("PodDisruptionBudget", [])):
            print(f"note: {name_of(doc)} has no PodDisruptionBudget")
    for doc in by_kind.get("HorizontalPodAutoscaler", []):
        if doc["spec"]["scaleTargetRef"]["name"] not in deployments:
            problem(f"{name_of(doc)}: targets a Deployment that is not rendered")
        elif "replicas" in deployments[doc["spec"]["scaleTargetRef"]["name"]]["spec"]:
            problem(f"{name_of(doc)}: its Deployment sets replicas although the HPA owns the count")
    for doc in by_kind.get("ServiceMonitor", []):
        services = [svc for svc in by_kind.get("Service", [])
                    if matches(doc["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"])]
        if not services:
            problem(f"{name_of(doc)}: selects no Service")
        for endpoint in doc["spec"]["endpoints"]:
            for svc in services:
                if endpoint.get("port") not in {port.get("name") for port in svc["spec"]["ports"]}:
                    problem(f"{name_of(doc)}: {name_of(svc)} has no port named {endpoint.get('port')}")
    checked.append("Services, PDBs, HPA and ServiceMonitors select what is rendered")

    rules = by_kind.get("PrometheusRule", [])
    if rules:
        with tempfile.TemporaryDirectory() as scratch:
            files = []
            for doc in rules:
                file = os.path.join(scratch, doc["metadata"]["name"] + ".yml")
                with open(file, "w") as out:
                    yaml.safe_dump({"groups": doc["spec"]["groups"]}, out)
                files.append(file)
            result = subprocess.run(["promtool", "check", "rules", *files], capture_output=True, text=True)
            if result.returncode != 0:
                problem("promtool check rules failed:\n" + result.stdout + result.stderr)
        count = sum(len(group["rules"]) for doc in rules for group in doc["spec"]["groups"])
        checked.append(f"promtool check rules: {len(rules)} PrometheusRule(s), {count} rules")

    dashboards = [doc for doc in by_kind.get("ConfigMap", [])
                  if any(key.endswith(".json") for key in doc.get("data", {}))]
    # Client-side `kubectl apply` (k8s/herald/) keeps each object in an annotation of at most
    # 256 KiB; a growing dashboard would break it long before ConfigMaps' 1 MiB.
    sizes = {name_of(doc): len(json.dumps(doc, separators=(",", ":"))) for doc in docs}
    for name, size in sizes.items():
        if size > 256 * 1024 - 4096:
            problem(f"{name}: {size} bytes is too large for `kubectl apply` (256 KiB annotation)")
    checked.append(f"every object fits kubectl apply (largest {max(sizes.values()) // 1024} KiB)")

    uids = {}
    for doc in dashboards:
        if not doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "dashboards":
            continue
        for key, text in doc["data"].items():
            try:
                dashboard = json.loads(text)
            except json.JSONDecodeError as error:
                problem(f"{name_of(doc)}: {key} is not JSON: {error}")
                continue
            # The sidecar provisions the file as it is: nothing resolves an export's __inputs.
            if "__inputs" in dashboard or "${DS_" in text:
                problem(f"{name_of(doc)}: {key} is an export with __inputs/${{DS_...}}; the sidecar cannot fill them")
            if not dashboard.get("uid"):
                problem(f"{name_of(doc)}: {key} has no uid (links and provisioning need a stable one)")
            elif dashboard["uid"] in uids:
                problem(f"{name_of(doc)}: {key} repeats the uid of {uids[dashboard['uid']]}")
            else:
                uids[dashboard["uid"]] = key
    if dashboards:
        checked.append(f"dashboard ConfigMaps hold JSON ({len(dashboards)})")


if __name__ == "__main__":
    main(sys.argv[1])
    for line in checked:
        print(f"  ok: {line}")
    for line in problems:
        print(f"  FAIL: {line}")
    sys.exit(1 if problems else 0)
