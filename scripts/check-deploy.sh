#!/usr/bin/env bash
# Checks everything Herald ships for containers and Kubernetes, with the ecosystem's own tools
# (pinned in scripts/tools.sh; nothing is fetched but packages):
#
#   1. hadolint on every Dockerfile;
#   2. the chart's copies of ops/prometheus/*.yml and grafana/dashboards/*.json are current
#      (scripts/sync-chart-files.sh --check), and values.schema.json knows every key of
#      config/herald.toml;
#   3. helm lint --strict, alone and with every values file (helm/herald/ci/*.yaml, k8s/values.yaml);
#      steps 3 to 8 run on a scratch copy of the chart synced from ops/prometheus and
#      grafana/dashboards as they are now, so they validate the current rules and dashboards even
#      while the chart's committed copies are behind (step 2 reports that);
#   4. helm template with every values file, then
#        kubernetes-validate --strict against Kubernetes 1.30 (the chart's minimum) and 1.37:
#          every built-in kind; a kind it has no schema for fails, except the custom resources
#          of the next step;
#        k8s/crd-schemas/validate-crds.py: KEDA ScaledObject, ServiceMonitor, PodMonitor, PrometheusRule,
#          Strimzi KafkaTopic/Kafka/KafkaNodePool against their CRDs' schemas (vendored);
#        helm/tests/check-rendered.py: security contexts, secretKeyRef-only credentials, probes,
#          grace periods vs. drain deadlines, replicas vs. partitions, selectors, promtool check
#          rules on the PrometheusRules, dashboard JSON;
#   5. the chart refuses what it must (more workers than partitions, a secret in values, unknown
#      keys, scale to zero, a loopback listen address, a provider's base URL missing without the
#      simulator, Kafka brokers or a token endpoint on a port the NetworkPolicy drops), and
#      check-rendered.py fails on broken renderings (a writable root filesystem, a plain credential,
#      a short grace period, a policy cutting the pods off from Kafka, ...); variants no ci/ values
#      file shows alone render and check too (Kafka's OAUTHBEARER login, NodeLocal DNSCache);
#   6. k8s/dev-cluster/*.yaml validates the same way, and so does the distributed k6 run
#      load-tests/k8s/testrun.py renders (a k6-operator TestRun);
#   7. k8s/herald/ is what the chart renders from k8s/values.yaml (no drift);
#   8. helm package includes the embedded files.
#
#   scripts/check-deploy.sh              run every check; exit 1 if any failed
#   scripts/check-deploy.sh render-k8s   copy the rules and dashboards into the chart
#                                        (sync-chart-files.sh), then write k8s/herald/*.yaml from
#                                        it: the one command after changing either (then commit)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/tools.sh install
eval "$(scripts/tools.sh env)"

CHART_SOURCE=helm/herald
KUBE_VERSIONS=(1.30.0 1.37.0)
K8S_VALUES=k8s/values.yaml
K8S_OUT=k8s/herald
RELEASE=herald
NAMESPACE=herald

# k8s/herald/: the release's resources, and the migrations Job (a Helm hook) on its own, to be
# applied first: docs/DEPLOY.md.
render_k8s() {
  local chart="$1" out="$2"
  local header="# GENERATED from helm/herald with k8s/values.yaml by \`scripts/check-deploy.sh render-k8s\`: do not edit.
# helm template $RELEASE helm/herald --namespace $NAMESPACE -f $K8S_VALUES"
  mkdir -p "$out"
  {
    echo "$header --no-hooks"
    echo "# Apply after migrations.yaml has completed (docs/DEPLOY.md)."
    helm template "$RELEASE" "$chart" --namespace "$NAMESPACE" -f "$K8S_VALUES" --no-hooks
  } > "$out/herald.yaml"
  {
    echo "$header --show-only templates/migrations.yaml"
    echo "# herald-api migrate (and create-topics): apply and wait for it before herald.yaml, at every upgrade:"
    echo "#   kubectl -n $NAMESPACE delete job herald-migrations --ignore-not-found"
    echo "#   kubectl apply -f k8s/herald/migrations.yaml"
    echo "#   kubectl -n $NAMESPACE wait --for=condition=complete --timeout=10m job/herald-migrations"
    helm template "$RELEASE" "$chart" --namespace "$NAMESPACE" -f "$K8S_VALUES" --show-only templates/migrations.yaml
  } > "$out/migrations.yaml"
}

if [ "${1:-}" = render-k8s ]; then
  scripts/sync-chart-files.sh "$CHART_SOURCE"
  render_k8s "$CHART_SOURCE" "$K8S_OUT"
  echo "rendered $K8S_OUT/herald.yaml and $K8S_OUT/migrations.yaml from $CHART_SOURCE with $K8S_VALUES"
  exit 0
fi
if [ $# -gt 0 ]; then
  echo "usage: $0 [render-k8s]" >&2
  exit 2
fi

started=$SECONDS
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failures=()
passed=0

# The chart every later step renders: helm/herald with the rules and dashboards of now.
mkdir -p "$scratch/chart"
cp -r "$CHART_SOURCE" "$scratch/chart/"
CHART="$scratch/chart/$(basename "$CHART_SOURCE")"
scripts/sync-chart-files.sh "$CHART" > /dev/null

# check NAME COMMAND...: runs COMMAND, prints its name and a summary line; on failure its output.
check() {
  local name="$1"
  shift
  local log="$scratch/log"
  if "$@" > "$log" 2>&1; then
    passed=$((passed + 1))
    printf 'ok    %s\n' "$name"
    grep -E '^(  ok:|summary:|chart files)' "$log" | sed 's/^summary: /        /; s/^  ok: /        /; s/^chart files/        chart files/' || true
  else
    failures+=("$name")
    printf 'FAIL  %s\n' "$name"
    sed 's/^/        /' "$log"
  fi
}

# The custom resource kinds validate-crds.py has schemas for ("Kind apiVersion" lines).
crd_kinds() {
  python3 - <<'EOF'
import glob, json
for path in sorted(glob.glob("k8s/crd-schemas/*.json")):
    props = json.load(open(path))["properties"]
    print(props["kind"]["const"], props["apiVersion"]["const"])
EOF
}

# validate FILE: kubernetes-validate --strict for built-in kinds (a kind it does not know fails
# unless validate-crds.py has its CRD schema), then the CRD schemas.
validate() {
  local file="$1" output unknown
  local versions=()
  for version in "${KUBE_VERSIONS[@]}"; do versions+=(-k "$version"); done
  output="$(kubernetes-validate --strict --quiet "${versions[@]}" "$file")" || {
    echo "$output"
    return 1
  }
  unknown="$(echo "$output" | grep "Couldn't find schema" | sed -E 's/.*for kind ([^ ]+) with api version ([^ ]+) for .*/\1 \2/' | sort -u)"
  if [ -n "$unknown" ] && [ -n "$(comm -23 <(echo "$unknown") <(crd_kinds | sort -u))" ]; then
    echo "kinds neither kubernetes-validate nor k8s/crd-schemas knows:"
    comm -23 <(echo "$unknown") <(crd_kinds | sort -u)
    return 1
  fi
  echo "$output" | grep -v "Couldn't find schema" || true
  python3 k8s/crd-schemas/validate-crds.py --require "$file" > "$scratch/crd.log" || {
    cat "$scratch/crd.log"
    return 1
  }
  local kinds
  kinds="$(python3 -c '
import sys, yaml, collections
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
print(", ".join(f"{n} {k}" for k, n in sorted(collections.Counter(d["kind"] for d in docs).items())))' "$file")"
  echo "summary: kubernetes-validate --strict (${KUBE_VERSIONS[*]}) + CRD schemas: $kinds"
}

# render_and_check VALUES [HELM_ARGS...]: helm template with VALUES (and more -f/--set), validated
# and checked by check-rendered.py.
render_and_check() {
  local values="$1" out="$scratch/rendered.yaml"
  shift
  helm template "$RELEASE" "$CHART" --namespace "$NAMESPACE" -f "$values" "$@" > "$out"
  validate "$out"
  python3 helm/tests/check-rendered.py "$out"
}

# must_refuse DESCRIPTION EXPECTED_MESSAGE HELM_ARGS...: helm template must fail with the message.
# The values are helm/herald/ci/minimal-values.yaml, or $REFUSE_VALUES when set.
must_refuse() {
  local description="$1" expected="$2"
  shift 2
  local output
  if output="$(helm template "$RELEASE" "$CHART" --namespace "$NAMESPACE" \
    -f "${REFUSE_VALUES:-$CHART_SOURCE/ci/minimal-values.yaml}" "$@" 2>&1)"; then
    echo "rendered although it must refuse: $description ($*)"
    return 1
  fi
  if ! grep -qF -- "$expected" <<< "$output"; then
    echo "refused $description, but not with \"$expected\":"
    echo "$output"
    return 1
  fi
  echo "  ok: refuses $description"
}

# minimal_values_without KEY: helm/herald/ci/minimal-values.yaml less config.KEY (dotted), written
# to the scratch directory; prints its path. (`--set KEY=null` cannot remove a key the chart's
# defaults lack: the schema then sees null.)
minimal_values_without() {
  local out="$scratch/minimal-without-$1.yaml"
  python3 - "$CHART_SOURCE/ci/minimal-values.yaml" "$1" "$out" <<'EOF'
import sys, yaml
values = yaml.safe_load(open(sys.argv[1]))
*tables, key = ["config"] + sys.argv[2].split(".")
table = values
for name in tables:
    table = table[name]
del table[key]
yaml.safe_dump(values, open(sys.argv[3], "w"))
EOF
  echo "$out"
}

# The providers minimal-values.yaml gives a base URL: each one's is required without the simulator.
minimal_base_url_providers() {
  python3 -c '
import sys, yaml
providers = yaml.safe_load(open(sys.argv[1]))["config"]["providers"]
print(" ".join(name for name, settings in providers.items() if "base_url" in settings))' \
    "$CHART_SOURCE/ci/minimal-values.yaml"
}

refusals() {
  local status=0
  must_refuse "more KEDA replicas than partitions" "exceeds config.kafka.partitions" \
    --set worker.keda.enabled=true --set worker.keda.maxReplicaCount=9 || status=1
  must_refuse "more worker replicas than partitions" "worker.replicas (9) exceeds config.kafka.partitions (8)" \
    --set worker.replicas=9 || status=1
  must_refuse "KEDA scaling to zero" "minReplicaCount" \
    --set worker.keda.enabled=true --set worker.keda.minReplicaCount=0 || status=1
  must_refuse "Strimzi topics of one replica" "kafkaTopic.replicas is 1" \
    --set kafkaTopic.enabled=true --set kafkaTopic.replicas=1 || status=1
  must_refuse "create-topics with two replicas" "config.kafka.replication_factor is 2" \
    --set config.kafka.replication_factor=2 || status=1
  must_refuse "a KEDA fallback above the maximum" "worker.keda.fallback.replicas (4) is outside" \
    --set worker.keda.enabled=true --set worker.keda.maxReplicaCount=2 || status=1
  must_refuse "a database URL in values" "additional properties 'url' not allowed" \
    --set config.database.url=postgres://user:pw@db/herald || status=1
  must_refuse "an unknown key" "additional properties 'replica' not allowed" \
    --set api.replica=3 || status=1
  must_refuse "a loopback listen address" "config.server.host must be 0.0.0.0" \
    --set config.server.host=127.0.0.1 || status=1
  must_refuse "a missing database Secret" "secrets.databaseUrl.name" \
    --set secrets.databaseUrl.name= || status=1
  must_refuse "retention.ms set by hand" "retention.ms" \
    --set kafkaTopic.enabled=true --set-string 'kafkaTopic.config.retention\.ms=1' || status=1
  must_refuse "a bot token in values" "additional properties 'bot_token' not allowed" \
    --set config.providers.telegram.bot_token=123:abc || status=1
  must_refuse "a Pushover app token in values" "additional properties 'app_token' not allowed" \
    --set config.providers.pushover.app_token=aPushoverAppTokenForTests00001 || status=1
  must_refuse "a Kafka password in values" "additional properties 'password' not allowed" \
    --set config.kafka.security.sasl.password=hunter2 || status=1
  must_refuse "a Kafka CA path in values (it comes from secrets.kafkaTls)" "additional properties 'ca_file' not allowed" \
    --set config.kafka.security.ca_file=/etc/ssl/ca.pem || status=1
  must_refuse "a SASL login without its password Secret" "secrets.kafkaSaslPassword.name is required" \
    --set config.kafka.security.protocol=sasl_ssl --set config.kafka.security.sasl.mechanism=scram-sha-512 \
    --set config.kafka.security.sasl.username=herald || status=1
  must_refuse "sasl_ssl without a mechanism" "config.kafka.security.sasl.mechanism is required" \
    --set config.kafka.security.protocol=sasl_ssl || status=1
  must_refuse "TLS files for a plaintext Kafka" "secrets.kafkaTls is set, but config.kafka.security.protocol" \
    --set secrets.kafkaTls.name=kafka-ca || status=1
  local provider
  for provider in $(minimal_base_url_providers); do
    REFUSE_VALUES="$(minimal_values_without "providers.$provider.base_url")" \
      must_refuse "real providers without providers.$provider.base_url" \
      "config.providers.$provider.base_url is required unless providerSim.enabled" || status=1
  done
  must_refuse "an SMTP URL in values" "additional properties 'url' not allowed" \
    --set config.providers.smtp.url=smtp://user:pw@mail.example.com:587 || status=1
  must_refuse "an SMTP failover without its sender" "config.providers.smtp.from is required" \
    --set secrets.smtpUrl.name=herald-smtp || status=1
  must_refuse "the simulator's SMTP listen address in providerSim.env" "HERALD_SIM_SMTP_LISTEN" \
    --set providerSim.enabled=true --set providerSim.env.HERALD_SIM_SMTP_LISTEN=127.0.0.1:2525 || status=1
  must_refuse "reads that could take every connection" "must be below config.database.max_connections" \
    --set config.server.max_concurrent_reads=16 --set config.database.max_connections=16 || status=1
  must_refuse "Kafka brokers on a port the NetworkPolicy does not allow" \
    "config.kafka.brokers: b-1.kafka.example.com:9096 is on port 9096, which networkPolicy.egress.kafka.ports (9092) does not allow" \
    --set config.kafka.brokers=b-1.kafka.example.com:9096 || status=1
  REFUSE_VALUES="$CHART_SOURCE/ci/secure-connections-values.yaml" \
    must_refuse "MSK's SASL_SSL brokers (9096) with the policy's default Kafka port" \
    "is on port 9096, which networkPolicy.egress.kafka.ports (9092) does not allow" \
    --set-json 'networkPolicy.egress.kafka.ports=[9092]' || status=1
  REFUSE_VALUES="$CHART_SOURCE/ci/secure-connections-values.yaml" \
    must_refuse "an OAUTHBEARER token endpoint on a port the NetworkPolicy does not allow" \
    "token_endpoint_url https://login.example.com:8443/token is on port 8443, which networkPolicy.egress.oauthTokenEndpoint.ports (443) does not allow" \
    -f helm/tests/kafka-oauthbearer-values.yaml \
    --set config.kafka.security.sasl.oauthbearer.token_endpoint_url=https://login.example.com:8443/token || status=1
  must_refuse "an egress peer of every address (the cloud metadata service too)" \
    "networkPolicy.egress.database.to: an ipBlock of 0.0.0.0/0 would reach the cloud metadata service" \
    --set 'networkPolicy.egress.database.to[0].ipBlock.cidr=0.0.0.0/0' || status=1
  must_refuse "a worker workload that is neither a StatefulSet nor a Deployment" "worker/workload" \
    --set worker.workload=DaemonSet || status=1
  REFUSE_VALUES="$CHART_SOURCE/ci/secure-connections-values.yaml" \
    must_refuse "KEDA reading lag over SASL_SSL without a TriggerAuthentication" \
    "worker.keda.authenticationRef.name is required with config.kafka.security.protocol sasl_ssl" \
    --set worker.keda.enabled=true --set database.connectionLimit=2000 || status=1
  must_refuse "a client key beside the OIDC token endpoint's CA" "secrets.kafkaOauthCa holds the OIDC token endpoint's CA only" \
    --set secrets.kafkaOauthCa.name=idp-ca --set secrets.kafkaOauthCa.keyKey=tls.key || status=1
  must_refuse "no database connection limit" "database.connectionLimit is required" \
    --set database.connectionLimit=null || status=1
  # minimal-values.yaml: an API HPA of at most 10 (+3 surge), 2 workers (a StatefulSet: no surge),
  # the Job: 16 pods of 16 connections; as a Deployment a rollout adds a worker.
  must_refuse "pods that could open more connections than the database takes" \
    "Herald could open 256 database connections, above database.connectionLimit (255)" \
    --set database.connectionLimit=255 || status=1
  must_refuse "a worker Deployment's rollout surge beyond the database's limit" \
    "Herald could open 272 database connections, above database.connectionLimit (256)" \
    --set worker.workload=Deployment --set database.connectionLimit=256 || status=1
  must_refuse "a KEDA ceiling whose connections the database cannot take" \
    "Herald could open 352 database connections, above database.connectionLimit (297)" \
    --set worker.keda.enabled=true --set worker.keda.maxReplicaCount=8 --set worker.keda.fallback.replicas=4 \
    || status=1
  return $status
}

chart_files_current() {
  scripts/sync-chart-files.sh --check "$CHART_SOURCE" || {
    echo "(the later checks used the current sources; run scripts/check-deploy.sh render-k8s and commit)"
    return 1
  }
}

# must_be_caught DESCRIPTION EXPECTED SED_SCRIPT HELM_ARGS...: what the chart renders with HELM_ARGS
# and then edited by SED_SCRIPT (for what no value can produce) must fail check-rendered.py with
# EXPECTED: a check that cannot fail checks nothing.
must_be_caught() {
  local description="$1" expected="$2" edit="$3" out="$scratch/mutant.yaml" output
  shift 3
  helm template "$RELEASE" "$CHART" --namespace "$NAMESPACE" -f "$CHART_SOURCE/ci/minimal-values.yaml" "$@" \
    | sed -e "$edit" > "$out"
  if output="$(python3 helm/tests/check-rendered.py "$out")"; then
    echo "check-rendered.py passed although $description ($*)"
    return 1
  fi
  grep -qF -- "$expected" <<< "$output" || {
    echo "check-rendered.py failed for $description, but not with \"$expected\":"
    echo "$output"
    return 1
  }
  echo "  ok: catches $description"
}

mutants() {
  local status=0
  must_be_caught "a writable root filesystem" "readOnlyRootFilesystem must be true" "" \
    --set containerSecurityContext.readOnlyRootFilesystem=false || status=1
  must_be_caught "a credential as a plain value" "must come from a secretKeyRef" "" \
    --set 'api.extraEnv[0].name=HERALD_SENDGRID_API_KEY' --set 'api.extraEnv[0].value=SG.x' || status=1
  must_be_caught "an SMTP URL with credentials as a plain value" "HERALD_SMTP_URL must come from a secretKeyRef" "" \
    --set 'worker.extraEnv[0].name=HERALD_SMTP_URL' --set 'worker.extraEnv[0].value=smtp://u:p@mail:587' || status=1
  must_be_caught "a worker without HERALD_SMTP_URL (the loopback default)" "HERALD_SMTP_URL must be set" \
    "/name: HERALD_SMTP_URL/,+1d" || status=1
  must_be_caught "the worker's SMTP failover not at the simulator" "not the simulator's smtp://herald-provider-sim:2525" \
    "s|smtp://herald-provider-sim:2525|smtp://127.0.0.1:2525|" --set providerSim.enabled=true || status=1
  must_be_caught "Pushover's base URL not at the simulator" "not the simulator's http://herald-provider-sim:9090/pushover" \
    "s|http://herald-provider-sim:9090/pushover|http://127.0.0.1:9090/pushover|" --set providerSim.enabled=true || status=1
  must_be_caught "a Pushover app token as a plain value" "HERALD_PROVIDERS__PUSHOVER__APP_TOKEN must come from a secretKeyRef" "" \
    --set 'worker.extraEnv[0].name=HERALD_PROVIDERS__PUSHOVER__APP_TOKEN' \
    --set 'worker.extraEnv[0].value=aPushoverAppTokenForTests00001' || status=1
  must_be_caught "the simulator's SMTP sink on loopback" "HERALD_SIM_SMTP_LISTEN 127.0.0.1:2525 must be 0.0.0.0" \
    "/name: HERALD_SIM_SMTP_LISTEN/{n;s/0.0.0.0/127.0.0.1/;}" --set providerSim.enabled=true || status=1
  must_be_caught "a worker grace period no longer than its drain" "terminationGracePeriodSeconds 60 must exceed" \
    "s/terminationGracePeriodSeconds: 90$/terminationGracePeriodSeconds: 60/" || status=1
  must_be_caught "a readiness probe on /healthz" "readinessProbe must GET /readyz" \
    "/readinessProbe:/,/path:/s|path: /readyz|path: /healthz|" || status=1
  must_be_caught "an egress rule reaching the cloud metadata service" \
    "reaches the cloud metadata address 169.254.169.254" "/- 169.254.169.254\/32/d" || status=1
  must_be_caught "an egress rule without a destination" "an egress rule without \`to\` reaches every address" \
    "/# Redis/,/- to:/s|- to:|- toNowhere:|" || status=1
  must_be_caught "the API reaching the public internet" "Deployment/herald-api: reaches the public internet on [443]" \
    "/name: herald-api$/,/^---/s|port: 5432|port: 443|" || status=1
  must_be_caught "a NetworkPolicy cutting the pods off from Kafka's brokers" \
    "its NetworkPolicies allow no egress to port 9092 of kafka.brokers" "s|port: 9092$|port: 9093|" || status=1
  # The token endpoint's rule lets the API and the Job reach public addresses only with OAUTHBEARER.
  must_be_caught "the API on the internet once Kafka's login is no longer OAUTHBEARER" \
    "Deployment/herald-api: reaches the public internet on [443]" \
    's|mechanism = "oauthbearer"|mechanism = "scram-sha-512"|' \
    -f "$CHART_SOURCE/ci/secure-connections-values.yaml" -f helm/tests/kafka-oauthbearer-values.yaml || status=1
  must_be_caught "an OAUTHBEARER token endpoint no pod may reach" \
    "allow no egress to port 8443 of kafka.security.sasl.oauthbearer.token_endpoint_url" \
    's|https://login.example.com/|https://login.example.com:8443/|' \
    -f "$CHART_SOURCE/ci/secure-connections-values.yaml" -f helm/tests/kafka-oauthbearer-values.yaml || status=1
  must_be_caught "a StatefulSet worker without its static membership" \
    "HERALD_WORKER__INSTANCE_ID must be the pod's name" "s|fieldPath: metadata.name|fieldPath: metadata.uid|" || status=1
  must_be_caught "static membership on a Deployment's random pod names" "a Deployment's pods change names" "" \
    --set worker.workload=Deployment --set 'worker.extraEnv[0].name=HERALD_WORKER__INSTANCE_ID' \
    --set 'worker.extraEnv[0].value=worker' || status=1
  must_be_caught "KEDA scaling a Deployment while the workers are a StatefulSet" "not the workers (StatefulSet/herald-worker)" \
    "/scaleTargetRef:/,/name:/s|kind: StatefulSet|kind: Deployment|" --set worker.keda.enabled=true \
    --set database.connectionLimit=1000 || status=1
  must_be_caught "a ServiceMonitor scraping the API's public port" "scrapes port http, not the metrics port" \
    "s|- port: metrics|- port: http|" --set metrics.serviceMonitor.enabled=true || status=1
  return $status
}

# values.schema.json must list every key of config/herald.toml but the secrets, and no other.
config_schema_in_sync() {
  python3 - <<'EOF'
import json, tomllib
toml = tomllib.load(open("config/herald.toml", "rb"))
schema = json.load(open("helm/herald/values.schema.json"))["properties"]["config"]

def toml_keys(table, path=()):
    """Every leaf key of the TOML, as a dotted path; tables are walked to any depth."""
    for key, value in table.items():
        if isinstance(value, dict):
            yield from toml_keys(value, path + (key,))
        else:
            yield ".".join(path + (key,))

def schema_keys(node, path=()):
    for key, child in node.get("properties", {}).items():
        if child.get("type") == "object" and "properties" in child:
            yield from schema_keys(child, path + (key,))
        else:
            yield ".".join(path + (key,))

secrets = {"database.url", "database.listen_url", "redis.url", "providers.sendgrid.api_key", "providers.twilio.auth_token",
           "providers.telegram.bot_token", "providers.pushover.app_token", "providers.smtp.url",
           "unsubscribe.signing_key", "unsubscribe.previous_signing_keys",
           "kafka.security.sasl.password", "kafka.security.sasl.password_file",
           "kafka.security.sasl.oauthbearer.client_secret",
           "kafka.security.sasl.oauthbearer.client_secret_file"}
# Paths of files the chart mounts from Secrets (secrets.kafkaTls, secrets.redisTls) and sets itself.
chart_set_files = {"kafka.security.ca_file", "kafka.security.certificate_file", "kafka.security.key_file",
                   "kafka.security.sasl.oauthbearer.ca_file",
                   "redis.ca_file", "redis.certificate_file", "redis.key_file"}
optional = {"worker.instance_id"}
want = set(toml_keys(toml)) - secrets - chart_set_files
have = set(schema_keys(schema))
missing, extra = sorted(want - have), sorted(have - want - optional)
for key in missing: print(f"config.{key}: in config/herald.toml but not in values.schema.json")
for key in extra: print(f"config.{key}: in values.schema.json but not in config/herald.toml")
if missing or extra: raise SystemExit(1)
print(f"summary: values.schema.json lists the {len(want)} non-secret keys of config/herald.toml")
EOF
}

k8s_in_sync() {
  render_k8s "$CHART" "$scratch/k8s"
  diff -u "$K8S_OUT" "$scratch/k8s" || {
    echo "k8s/herald/ differs from the chart's rendering (above): run scripts/check-deploy.sh render-k8s"
    return 1
  }
  echo "summary: $K8S_OUT/herald.yaml and migrations.yaml match helm template with $K8S_VALUES"
}

dev_cluster() {
  local status=0 file
  for file in k8s/dev-cluster/*.yaml; do
    validate "$file" || status=1
  done
  return $status
}

# The distributed k6 run (load-tests/k8s/testrun.py): its default rendering validates (the TestRun
# against k6-operator's CRD), and it refuses a rate its runners could not offer.
load_test_run() {
  load-tests/k8s/testrun.py > "$scratch/testrun.yaml" || return 1
  validate "$scratch/testrun.yaml" || return 1
  if load-tests/k8s/testrun.py --rate 1000000 --parallelism 2 > /dev/null 2>&1; then
    echo "testrun.py accepted 500,000 requests/s per runner"
    return 1
  fi
}

package_includes_files() {
  helm package "$CHART" -d "$scratch/package" > /dev/null
  local listing
  listing="$(tar -tzf "$scratch"/package/herald-*.tgz)"
  grep -q '^herald/files/prometheus/herald-alerts.yml$' <<< "$listing" || {
    echo "the packaged chart lacks files/prometheus/herald-alerts.yml"
    return 1
  }
  grep -q '^herald/values.schema.json$' <<< "$listing" || {
    echo "the packaged chart lacks values.schema.json"
    return 1
  }
  echo "summary: helm package: $(grep -c . <<< "$listing") files, with values.schema.json and files/"
}

echo "tools: $(helm version --short), kubernetes-validate $(kubernetes-validate --version)," \
  "$(hadolint --version | head -n 1), $(promtool --version 2>&1 | head -n 1 | cut -d' ' -f1-3)"

mapfile -t dockerfiles < <(find . -path ./target -prune -o -path ./.tools -prune -o -path ./node_modules -prune -o \
  -type f \( -name 'Dockerfile' -o -name 'Dockerfile.*' -o -name '*.Dockerfile' \) -print | sort)
if [ ${#dockerfiles[@]} -eq 0 ]; then
  failures+=("hadolint: no Dockerfile found")
else
  check "hadolint ${dockerfiles[*]}" hadolint "${dockerfiles[@]}"
fi
check "helm/herald/files/ matches ops/prometheus and grafana/dashboards" chart_files_current
check "values.schema.json covers config/herald.toml" config_schema_in_sync

values_files=("$CHART_SOURCE"/ci/*.yaml "$K8S_VALUES")
check "helm lint --strict $CHART_SOURCE" helm lint --strict "$CHART"
for values in "${values_files[@]}"; do
  check "helm lint --strict -f $values" helm lint --strict "$CHART" -f "$values"
  check "helm template -f $values | validate" render_and_check "$values"
done
# Variants no values file of ci/ shows alone: Kafka's OAUTHBEARER login (every component reaches the
# token endpoint), and the DNS rule of a cluster with NodeLocal DNSCache (docs/DEPLOY.md, "Network
# policies").
check "helm template -f secure-connections-values.yaml -f helm/tests/kafka-oauthbearer-values.yaml | validate" \
  render_and_check "$CHART_SOURCE/ci/secure-connections-values.yaml" -f helm/tests/kafka-oauthbearer-values.yaml
check "helm template -f minimal-values.yaml with NodeLocal DNSCache's DNS peers | validate" \
  render_and_check "$CHART_SOURCE/ci/minimal-values.yaml" --set-json \
  'networkPolicy.egress.dns.to=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"kube-system"}},"podSelector":{"matchLabels":{"k8s-app":"kube-dns"}}},{"ipBlock":{"cidr":"169.254.20.10/32"}}]'
check "the chart refuses what it must" refusals
check "check-rendered.py catches what it must" mutants
check "k8s/dev-cluster/*.yaml validate" dev_cluster
check "load-tests/k8s/testrun.py renders a valid TestRun" load_test_run
check "k8s/herald/ matches the chart (no drift)" k8s_in_sync
check "helm package" package_includes_files

echo
if [ ${#failures[@]} -gt 0 ]; then
  echo "check-deploy: ${#failures[@]} failed, $passed passed ($((SECONDS - started)) s):"
  printf '  - %s\n' "${failures[@]}"
  exit 1
fi
echo "check-deploy: all $passed checks passed ($((SECONDS - started)) s)"
