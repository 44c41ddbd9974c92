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
    and consumer group, and targets the workers' kind; the Strimzi KafkaTopic has the configured
    partitions and retention;
  * workers of a StatefulSet are static group members named by their pod (HERALD_WORKER__INSTANCE_ID
    from metadata.name, pods started and stopped in parallel); a Deployment's are never static
    (its pods' names change at every rollout); topology spread keys on the controller's revision
    label;
  * /metrics is on a port named metrics of its own, never the API's public port, and the
    ServiceMonitors scrape that port;
  * NetworkPolicies: a default deny selects every Herald pod, and each pod a policy of its own; every
    pod's egress has DNS; no egress rule reaches a cloud metadata address (169.254.169.254,
    fd00:ec2::254) nor has no destination; every pod with herald.toml reaches its kafka.brokers'
    ports (and, with an OAUTHBEARER login, its token endpoint's port); only the workers reach the
    public internet, but for that token endpoint; the metrics ports admit only named peers;
  * Services, PodDisruptionBudgets, the HPA and the ScaledObject select or target what exists;
  * every object fits client-side `kubectl apply`; ServiceMonitors scrape a port their Service has; PrometheusRule groups pass
    `promtool check rules`, every alert has a severity of critical or warning and a runbook_url
    naming its page (docs/runbooks/<Alert>.md, under metrics.prometheusRule.runbookBaseUrl when
    that is set); dashboard ConfigMaps hold JSON Grafana's sidecar can load as it is;
  * the kafka-exporter PodMonitor keeps the series of the release's two consumer groups (from
    herald.toml), labelled as the rules read them (namespace, job herald-kafka-exporter,
    herald_consumer).
Prints what it checked; exits 1 on the first list of problems.
"""

import ipaddress
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import urllib.parse

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
                   "providers.pushover.app_token", "providers.smtp.url",
                   "kafka.security.sasl.password", "kafka.security.sasl.oauthbearer.client_secret")
# Files herald.toml may name (TLS to Kafka and Redis): each must be in a Secret volume every Herald
# container reading that herald.toml mounts.
TLS_FILE_SETTINGS = ("kafka.security.ca_file", "kafka.security.certificate_file", "kafka.security.key_file",
                     "kafka.security.sasl.oauthbearer.ca_file",
                     "redis.ca_file", "redis.certificate_file", "redis.key_file")
# The providers reached at a configured base URL, and the path the simulator serves each under
# (the chart's herald.simProviderPaths): the simulator's Service plus it with the simulator, else a
# real endpoint.
SIM_PATHS = {"sendgrid": "", "twilio": "", "telegram": "/telegram", "pushover": "/pushover"}
CREDENTIAL_WORDS = ("PASSWORD", "TOKEN", "API_KEY", "SECRET")
API_SHUTDOWN_SECONDS = 46  # herald-api startup.rs: 30 + 10 + 1 + 5 (see _helpers.tpl)
# The clouds' instance metadata services: no egress rule may reach them.
METADATA_ADDRESSES = [ipaddress.ip_address(address)
                      for address in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254")]
# The providers' ports: HTTPS, and SMTP's implicit TLS and submission.
PROVIDER_PORTS = {443, 465, 587}
# The label each controller puts on its pods to tell revisions apart (topology spread keys on it).
REVISION_LABEL = {"Deployment": "pod-template-hash", "StatefulSet": "controller-revision-hash"}

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

    tls_files = 0
    for doc in herald_workloads:
        spec = pod_spec(doc)
        volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
        config_volumes = {name for name, volume in volumes.items()
                          if volume.get("configMap", {}).get("name") in configs}
        for container in spec.get("initContainers", []) + spec["containers"]:
            mounts = container.get("volumeMounts", [])
            config_mounts = [mount for mount in mounts if mount["name"] in config_volumes]
            if not config_mounts:
                continue
            config = configs[volumes[config_mounts[0]["name"]]["configMap"]["name"]]
            for setting in TLS_FILE_SETTINGS:
                *tables, key = setting.split(".")
                table = config
                for name in tables:
                    table = table.get(name, {})
                path = table.get(key)
                if not path:
                    continue
                tls_files += 1
                holders = [mount for mount in mounts if path.startswith(mount["mountPath"].rstrip("/") + "/")]
                if not holders or "secret" not in volumes.get(holders[-1]["name"], {}):
                    problem(f"{name_of(doc)} container {container['name']}: {setting} {path} is in no Secret volume it mounts")
    checked.append(f"TLS files named in herald.toml are mounted from Secrets ({tls_files} paths)")

    deployments = {doc["metadata"]["name"]: doc for doc in by_kind.get("Deployment", [])}
    # The long-running workloads: the API's Deployment, the workers' StatefulSet (or Deployment).
    controllers = {doc["metadata"]["name"]: doc
                   for kind in ("Deployment", "StatefulSet") for doc in by_kind.get(kind, [])}

    def component(name):
        for doc in controllers.values():
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
        problem("the API and worker workloads must both be rendered")
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
        for constraint in spread:
            for key in constraint.get("matchLabelKeys", []):
                if key in REVISION_LABEL.values() and key != REVISION_LABEL[doc["kind"]]:
                    problem(f"{name_of(doc)}: matchLabelKeys {key} is not a label a {doc['kind']} puts on its "
                            f"pods ({REVISION_LABEL[doc['kind']]})")
    checked.append("topology spread selects each component's own pods, by its controller's revision label")

    # Static membership of the consumer group (docs/DEPLOY.md, "Rollouts and rebalances").
    worker_env = {env["name"]: env for env in pod_spec(worker)["containers"][0].get("env", [])}
    instance_id = worker_env.get("HERALD_WORKER__INSTANCE_ID")
    if worker["kind"] == "StatefulSet":
        if (instance_id or {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
            problem(f"{name_of(worker)}: HERALD_WORKER__INSTANCE_ID must be the pod's name (fieldRef "
                    f"metadata.name): its static group membership, not {instance_id}")
        if worker["spec"].get("podManagementPolicy") != "Parallel":
            problem(f"{name_of(worker)}: podManagementPolicy must be Parallel (a KEDA step starts its pods at once)")
        if worker["spec"].get("serviceName") not in {svc["metadata"]["name"] for svc in by_kind.get("Service", [])}:
            problem(f"{name_of(worker)}: serviceName {worker['spec'].get('serviceName')} is not a rendered Service")
        checked.append("workers: a StatefulSet, each a static group member named by its pod")
    else:
        if instance_id:
            problem(f"{name_of(worker)}: a Deployment's pods change names at every rollout: "
                    "HERALD_WORKER__INSTANCE_ID would leave each departed member's partitions "
                    "without an owner for the session timeout")
        checked.append("workers: a Deployment, dynamic group members")

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
        if (spec["scaleTargetRef"]["name"], spec["scaleTargetRef"].get("kind", "Deployment")) != (
                worker["metadata"]["name"], worker["kind"]):
            problem(f"{name_of(doc)}: scales {spec['scaleTargetRef'].get('kind', 'Deployment')}/"
                    f"{spec['scaleTargetRef']['name']}, not the workers ({name_of(worker)})")
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
    status_events = worker_config.get("status_events", {})
    status_events_topic = status_events.get("topic", "notification-events")
    status_events_hours = status_events.get("retention_hours", 0)
    for doc in by_kind.get("KafkaTopic", []):
        spec = doc["spec"]
        if spec["topicName"] == status_events_topic and status_events_hours:
            if spec["config"].get("retention.ms") != status_events_hours * 3600000:
                problem(f"{name_of(doc)}: retention.ms must be status_events.retention_hours")
        elif spec["config"].get("retention.ms") != (retention_days - 1) * 86400000:
            problem(f"{name_of(doc)}: retention.ms must be (retention.days - 1) days")
        if spec["topicName"] in consumed_topics and spec["partitions"] != partitions:
            problem(f"{name_of(doc)}: {spec['partitions']} partitions, herald.toml says {partitions}")
    rendered_topics = {doc["spec"]["topicName"] for doc in by_kind.get("KafkaTopic", [])}
    if rendered_topics and not consumed_topics <= rendered_topics:
        problem(f"KafkaTopics: {sorted(consumed_topics - rendered_topics)} missing (the workers consume them)")
    if by_kind.get("KafkaTopic"):
        checked.append(f"KafkaTopics: partitions and retention.ms from herald.toml ({len(by_kind['KafkaTopic'])})")

    pod_labels = [(doc, doc["spec"]["template"]["metadata"]["labels"]) for doc in controllers.values()]
    for doc in by_kind.get("Service", []) + by_kind.get("PodDisruptionBudget", []):
        selector = doc["spec"]["selector"]
        selector = selector.get("matchLabels", selector) if doc["kind"] == "PodDisruptionBudget" else selector
        if not any(matches(selector, labels) for _, labels in pod_labels):
            problem(f"{name_of(doc)}: selects no Deployment's or StatefulSet's pods")
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
            if endpoint.get("port") != "metrics":
                problem(f"{name_of(doc)}: scrapes port {endpoint.get('port')}, not the metrics port")
            for svc in services:
                if endpoint.get("port") not in {port.get("name") for port in svc["spec"]["ports"]}:
                    problem(f"{name_of(doc)}: {name_of(svc)} has no port named {endpoint.get('port')}")
    checked.append("Services, PDBs, HPA and ServiceMonitors select what is rendered")

    # /metrics and profiles on a port of their own: the API's public port never serves them.
    server = api_config.get("server", {})
    api_ports = {port.get("name"): port["containerPort"] for port in pod_spec(api)["containers"][0].get("ports", [])}
    if api_ports.get("metrics") != server.get("metrics_port") or server.get("metrics_port") == server.get("port"):
        problem(f"{name_of(api)}: container port metrics {api_ports.get('metrics')} must be herald.toml's "
                f"server.metrics_port {server.get('metrics_port')}, apart from server.port {server.get('port')}")
    worker_ports = {port.get("name"): port["containerPort"] for port in pod_spec(worker)["containers"][0].get("ports", [])}
    if worker_ports.get("metrics") != worker_config.get("worker", {}).get("metrics_port"):
        problem(f"{name_of(worker)}: container port metrics must be herald.toml's worker.metrics_port")
    checked.append(f"metrics ports: API {api_ports.get('metrics')} (public {api_ports.get('http')}), "
                   f"workers {worker_ports.get('metrics')}")

    def herald_toml_of(doc):
        """The herald.toml a workload mounts, or None (the provider simulator mounts none)."""
        for volume in pod_spec(doc).get("volumes", []):
            if "configMap" in volume and volume["configMap"]["name"] in configs:
                return configs[volume["configMap"]["name"]]
        return None

    check_network_policies(by_kind, herald_workloads, api, worker, herald_toml_of)

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
        alerts = [rule for doc in rules for group in doc["spec"]["groups"] for rule in group["rules"] if "alert" in rule]
        for alert in alerts:
            if alert.get("labels", {}).get("severity") not in ("critical", "warning"):
                problem(f"alert {alert['alert']}: severity {alert.get('labels', {}).get('severity')!r}")
            url = alert.get("annotations", {}).get("runbook_url", "")
            if not (url == f"docs/runbooks/{alert['alert']}.md"
                    or url.startswith(("https://", "http://")) and url.endswith(f"/{alert['alert']}.md")):
                problem(f"alert {alert['alert']}: runbook_url {url!r} does not name its page")
        checked.append(f"{len(alerts)} alerts with a severity and a runbook_url")

    # The kafka-exporter PodMonitor: what the alerts of group herald-kafka-exporter read.
    for doc in by_kind.get("PodMonitor", []):
        namespace = doc["metadata"]["namespace"]
        groups = {worker_config.get("worker", {}).get("group_id", "herald-workers"): "workers",
                  worker_config.get("status_events", {}).get("subscriptions_group_id",
                                                             "herald-webhook-subscriptions"): "status-events"}
        for endpoint in doc["spec"]["podMetricsEndpoints"]:
            target = {r["targetLabel"]: r.get("replacement") for r in endpoint.get("relabelings", [])
                      if r.get("action") == "replace" and "sourceLabels" not in r}
            if target.get("namespace") != namespace or target.get("job") != "herald-kafka-exporter":
                problem(f"{name_of(doc)}: labels its targets {target}, not namespace {namespace} and job herald-kafka-exporter")
            metric = endpoint.get("metricRelabelings", [])
            kept = [r for r in metric if r.get("action") == "keep" and r.get("sourceLabels") == ["consumergroup"]]
            named = {r.get("regex"): r.get("replacement") for r in metric
                     if r.get("action") == "replace" and r.get("targetLabel") == "herald_consumer"}
            for group, consumer in groups.items():
                if not kept or not re.fullmatch(kept[0]["regex"], group):
                    problem(f"{name_of(doc)}: does not keep the series of consumer group {group}")
                if not any(re.fullmatch(regex, group) and value == consumer for regex, value in named.items()):
                    problem(f"{name_of(doc)}: does not label consumer group {group} herald_consumer={consumer}")
        checked.append(f"{name_of(doc)} keeps and labels the consumer groups {sorted(groups)}")

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


def reaches_metadata(peer):
    """The metadata addresses an egress peer admits (an ipBlock's CIDR less its excepts)."""
    block = peer.get("ipBlock")
    if not block:
        return []
    network = ipaddress.ip_network(block["cidr"], strict=False)
    excepted = [ipaddress.ip_network(cidr, strict=False) for cidr in block.get("except", [])]
    return [str(address) for address in METADATA_ADDRESSES
            if address.version == network.version and address in network
            and not any(address.version == cut.version and address in cut for cut in excepted)]


def broker_ports(config):
    """The ports of kafka.brokers' entries (host:port, or scheme://host:port); librdkafka's 9092
    for an entry without one."""
    ports = set()
    for entry in config.get("kafka", {}).get("brokers", "").split(","):
        entry = entry.strip().split("://")[-1]
        if entry:
            found = re.search(r":(\d+)$", entry)
            ports.add(int(found.group(1)) if found else 9092)
    return ports


def oauth_token_port(config):
    """The OIDC token endpoint's port when Kafka's login is OAUTHBEARER, else None."""
    sasl = config.get("kafka", {}).get("security", {}).get("sasl", {})
    if sasl.get("mechanism", "none").lower() != "oauthbearer":
        return None
    url = urllib.parse.urlsplit(sasl.get("oauthbearer", {}).get("token_endpoint_url", ""))
    return url.port or {"http": 80}.get(url.scheme, 443)


def rule_allows_port(rule, port):
    """An egress rule admits TCP to the port (a number, or a range up to endPort)."""
    return any(port_spec.get("protocol", "TCP") == "TCP" and isinstance(port_spec.get("port"), int)
               and port_spec["port"] <= port <= port_spec.get("endPort", port_spec["port"])
               for port_spec in rule.get("ports", []))


def check_network_policies(by_kind, herald_workloads, api, worker, herald_toml_of):
    policies = by_kind.get("NetworkPolicy", [])
    if not policies:
        print("note: no NetworkPolicy rendered (networkPolicy.enabled false)")
        return

    def selected(policy, doc):
        return matches(policy["spec"]["podSelector"].get("matchLabels", {}),
                       doc["spec"]["template"]["metadata"]["labels"])

    deny_all = [policy for policy in policies
                if set(policy["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
                and not policy["spec"].get("ingress") and not policy["spec"].get("egress")]
    for doc in herald_workloads:
        if not any(selected(policy, doc) for policy in deny_all):
            problem(f"{name_of(doc)}: no default-deny NetworkPolicy selects its pods")
        own = [policy for policy in policies if policy not in deny_all and selected(policy, doc)]
        if not own:
            problem(f"{name_of(doc)}: no NetworkPolicy allows its pods anything (denied everything)")
        egress = [rule for policy in own for rule in policy["spec"].get("egress") or []]
        dns = [rule for rule in egress
               if any(port.get("port") == 53 and port.get("protocol") == "UDP" for port in rule.get("ports", []))]
        if own and any(policy["spec"].get("egress") for policy in own) and not dns:
            problem(f"{name_of(doc)}: its NetworkPolicies allow no DNS (UDP 53)")
    for policy in policies:
        for rule in policy["spec"].get("egress") or []:
            if not rule.get("to"):
                problem(f"{name_of(policy)}: an egress rule without `to` reaches every address, the cloud "
                        "metadata service's among them")
            for peer in rule.get("to", []):
                reached = reaches_metadata(peer)
                if reached:
                    problem(f"{name_of(policy)}: egress to {peer['ipBlock']['cidr']} reaches the cloud "
                            f"metadata address {', '.join(reached)}")
        for rule in policy["spec"].get("ingress") or []:
            if any(port.get("port") == "metrics" for port in rule.get("ports", [])) and not rule.get("from"):
                problem(f"{name_of(policy)}: the metrics port (metrics and profiles) is open to everyone")

    # Every process that talks to Kafka reaches its brokers' ports, and with an OAUTHBEARER login the
    # identity provider's token endpoint: else its own policy cuts it off.
    token_ports = {}
    for doc in herald_workloads:
        config = herald_toml_of(doc)
        if config is None:
            continue
        egress = [rule for policy in policies if policy not in deny_all and selected(policy, doc)
                  for rule in policy["spec"].get("egress") or []]
        for port in sorted(broker_ports(config)):
            if not any(rule_allows_port(rule, port) for rule in egress):
                problem(f"{name_of(doc)}: its NetworkPolicies allow no egress to port {port} of "
                        f"kafka.brokers ({config['kafka']['brokers']}): it is cut off from Kafka")
        token_port = oauth_token_port(config)
        if token_port is not None:
            token_ports[name_of(doc)] = token_port
            if not any(rule_allows_port(rule, token_port) for rule in egress):
                problem(f"{name_of(doc)}: its NetworkPolicies allow no egress to port {token_port} of "
                        "kafka.security.sasl.oauthbearer.token_endpoint_url: it cannot log in to Kafka")

    def internet_ports(doc):
        """The providers' ports (HTTPS, SMTP) a component may reach on any address (an ipBlock of
        0.0.0.0/0)."""
        ports = set()
        for policy in policies:
            if policy in deny_all or not selected(policy, doc):
                continue
            for rule in policy["spec"].get("egress") or []:
                if any(peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" for peer in rule.get("to", [])):
                    ports |= {port.get("port") for port in rule.get("ports", [])} & PROVIDER_PORTS
        return ports

    if 443 not in internet_ports(worker):
        problem(f"{name_of(worker)}: its NetworkPolicy does not let it reach the providers (public addresses, port 443)")
    # Only the workers call providers; the others reach public addresses on the token endpoint's
    # port alone, and only when Kafka's login is OAUTHBEARER.
    for doc in herald_workloads:
        if doc is worker:
            continue
        allowed = {token_ports[name_of(doc)]} if name_of(doc) in token_ports else set()
        public = internet_ports(doc) - allowed
        if public:
            problem(f"{name_of(doc)}: reaches the public internet on {sorted(public)}; only the workers "
                    "call providers (and, with an OAUTHBEARER Kafka login, every component the token endpoint)")
    checked.append(f"NetworkPolicies ({len(policies)}): default deny for {len(herald_workloads)} workloads, "
                   f"DNS for each, Kafka's broker ports, no metadata address, public internet for the "
                   f"workers only (ports {sorted(internet_ports(worker))})"
                   + (f" and the OAUTHBEARER token endpoint (port {sorted(set(token_ports.values()))}, "
                      f"{len(token_ports)} workloads)" if token_ports else "")
                   + ", metrics ports from named peers")


if __name__ == "__main__":
    main(sys.argv[1])
    for line in checked:
        print(f"  ok: {line}")
    for line in problems:
        print(f"  FAIL: {line}")
    sys.exit(1 if problems else 0)
