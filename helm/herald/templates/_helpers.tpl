{{/* Names ------------------------------------------------------------------------------------ */}}

{{- define "herald.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "herald.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<component>", e.g. herald-api. Call with (dict "root" $ "component" "api"). */}}
{{- define "herald.componentName" -}}
{{- printf "%s-%s" (include "herald.fullname" .root | trunc 50 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "herald.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels: call with (dict "root" $ "component" "api"). */}}
{{- define "herald.selectorLabels" -}}
app.kubernetes.io/name: {{ include "herald.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "herald.labels" -}}
{{ include "herald.selectorLabels" . }}
app.kubernetes.io/part-of: herald
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ include "herald.chart" .root }}
{{- end -}}

{{- define "herald.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "herald.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Image reference: call with (dict "root" $ "image" .Values.image.api). */}}
{{- define "herald.image" -}}
{{- $registry := .root.Values.image.registry -}}
{{- $repository := ternary (printf "%s/%s" (trimSuffix "/" $registry) .image.repository) .image.repository (ne $registry "") -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* herald.toml --------------------------------------------------------------------------------- */}}

{{/* One TOML value. Helm reads numbers in values files as float64; Herald's settings are
     integers, strings, booleans or lists of them, so whole numbers are written as integers. */}}
{{- define "herald.tomlValue" -}}
{{- if kindIs "string" . -}}
{{- toJson . -}}
{{- else if kindIs "bool" . -}}
{{- ternary "true" "false" . -}}
{{- else if or (kindIs "float64" .) (kindIs "float32" .) -}}
{{- if eq (float64 .) (float64 (int64 .)) -}}{{- int64 . -}}{{- else -}}{{- . -}}{{- end -}}
{{- else if or (kindIs "int" .) (kindIs "int64" .) (kindIs "int32" .) -}}
{{- . -}}
{{- else if kindIs "slice" . -}}
{{- $items := list -}}
{{- range . }}{{ $items = append $items (include "herald.tomlValue" .) }}{{ end -}}
[{{ join ", " $items }}]
{{- else -}}
{{- fail (printf "herald.toml: unsupported value %v (%s)" . (kindOf .)) -}}
{{- end -}}
{{- end -}}

{{/* A TOML key: bare when it can be, else a quoted string. */}}
{{- define "herald.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{- . -}}{{- else -}}{{- toJson . -}}{{- end -}}
{{- end -}}

{{/* One TOML table: its own keys under [path], then each sub-table as [path.key], recursively
     (TOML puts a table's keys before the headers of its sub-tables). A table with only sub-tables
     gets no header of its own ([providers.sendgrid], never an empty [providers]). Call with
     (dict "path" "providers" "table" $map); the empty path is the document's root. */}}
{{- define "herald.tomlTable" -}}
{{- $path := .path -}}
{{- $table := .table -}}
{{- $scalars := list -}}
{{- $tables := list -}}
{{- range $key := keys $table | sortAlpha -}}
{{- if kindIs "map" (get $table $key) -}}
{{- $tables = append $tables $key -}}
{{- else -}}
{{- $scalars = append $scalars $key -}}
{{- end -}}
{{- end -}}
{{- if and $path (or $scalars (not $tables)) }}

[{{ $path }}]
{{- end }}
{{- range $key := $scalars }}
{{ include "herald.tomlKey" $key }} = {{ include "herald.tomlValue" (get $table $key) }}
{{- end }}
{{- range $key := $tables }}
{{- $sub := include "herald.tomlKey" $key }}
{{- include "herald.tomlTable" (dict "path" (ternary (printf "%s.%s" $path $sub) $sub (ne $path "")) "table" (get $table $key)) }}
{{- end }}
{{- end -}}

{{/* The providers Herald reaches at a configured base URL (config.providers.<name>.base_url), each
     with the path the provider simulator serves it under. With providerSim.enabled the chart points
     each base URL at the simulator's Service plus this path; without it, each base URL is required
     (validate.yaml: the built-in defaults point at a simulator on 127.0.0.1). A new provider with
     a base URL joins by one line here (and in helm/tests/check-rendered.py, SIM_PATHS). */}}
{{- define "herald.simProviderPaths" -}}
sendgrid: ""
twilio: ""
telegram: /telegram
pushover: /pushover
{{- end -}}

{{/* .Values.config as Herald gets it. With providerSim.enabled: the base URLs of
     herald.simProviderPaths point at the simulator's Service (Telegram's Bot API under /telegram,
     Pushover's Message API under /pushover), and
     outbound.allow_private_networks is true. The latter because the URLs of Slack, Discord and
     webhook recipients are given by tenants and point at the simulator too
     (http://<fullname>-provider-sim:<port>/slack/..., /discord/...), a Service with a private
     cluster IP, which Herald otherwise refuses (SSRF guard) both when a user is saved (API) and
     when a delivery is sent (worker). Never set it in production: it lets tenants make the
     worker call into the cluster's network.
     providers.smtp.url (the email failover) is not set here: it is a secret, never in herald.toml;
     the worker gets it as HERALD_SMTP_URL (herald.smtpUrlEnv). */}}
{{- define "herald.effectiveConfig" -}}
{{- $config := deepCopy .Values.config -}}
{{- if .Values.providerSim.enabled -}}
{{- $sim := printf "http://%s:%d" (include "herald.componentName" (dict "root" . "component" "provider-sim")) (int .Values.providerSim.port) -}}
{{- $providers := default dict $config.providers -}}
{{- range $provider, $path := include "herald.simProviderPaths" . | fromYaml -}}
{{- $_ := set $providers $provider (merge (dict "base_url" (printf "%s%s" $sim $path)) (omit (default dict (get $providers $provider)) "base_url")) -}}
{{- end -}}
{{- $_ := set $config "providers" $providers -}}
{{- $_ := set $config "outbound" (merge (dict "allow_private_networks" true) (omit (default dict $config.outbound) "allow_private_networks")) -}}
{{- end -}}
{{- /* The TLS files of secrets.kafkaTls and secrets.redisTls, where herald.volumeMounts mounts them. */ -}}
{{- range $tls := (include "herald.tlsSecrets" . | fromYaml).tls -}}
{{- $secret := get $.Values.secrets $tls.secret -}}
{{- if $secret.name -}}
{{- $section := $config -}}
{{- range $key := $tls.section -}}
{{- if not (kindIs "map" (get $section $key)) -}}{{- $_ := set $section $key dict -}}{{- end -}}
{{- $section = get $section $key -}}
{{- end -}}
{{- if $secret.caKey -}}{{- $_ := set $section "ca_file" (printf "%s/ca.crt" $tls.mountPath) -}}{{- end -}}
{{- if $secret.certificateKey -}}
{{- $_ := set $section "certificate_file" (printf "%s/tls.crt" $tls.mountPath) -}}
{{- $_ := set $section "key_file" (printf "%s/tls.key" $tls.mountPath) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* Secrets of TLS files (CA bundle, client certificate and key), each mounted read-only at its
     mountPath in every Herald pod, their paths written into herald.toml's section (the files
     are config.kafka.security.ca_file and the like, never values). A Secret's keys become fixed
     file names: ca.crt, tls.crt, tls.key. */}}
{{- define "herald.tlsSecrets" -}}
tls:
  - {secret: kafkaTls, section: [kafka, security], mountPath: /etc/herald-tls/kafka, volume: kafka-tls}
  - {secret: kafkaOauthCa, section: [kafka, security, sasl, oauthbearer], mountPath: /etc/herald-tls/kafka-oauth, volume: kafka-oauth-ca}
  - {secret: redisTls, section: [redis], mountPath: /etc/herald-tls/redis, volume: redis-tls}
{{- end -}}

{{/* The simulator's SMTP sink, as the workers' failover reaches it through its Service. */}}
{{- define "herald.simSmtpUrl" -}}
{{- printf "smtp://%s:%d" (include "herald.componentName" (dict "root" . "component" "provider-sim")) (int .Values.providerSim.smtpPort) -}}
{{- end -}}

{{/* HERALD_SMTP_URL, the worker's email failover (providers.smtp.url), always set:
       * secrets.smtpUrl.name: from that Secret (the URL may carry a user and password);
       * else with providerSim.enabled: the simulator's sink, smtp://<fullname>-provider-sim:<smtpPort>,
         as a plain value: it carries no credentials, and a Secret the chart would have to render
         (it renders none) or the user to create for a development cluster would buy nothing;
       * else "": the failover is off. Left unset, the built-in default of config/herald.toml
         (smtp://127.0.0.1:2525, the local simulator) would apply: a loopback address with nothing
         listening in a pod, and every failover attempt would fail. NOTES.txt says it is off.
     Not in herald.toml (herald.effectiveConfig): the URL is a secret setting, and the config file
     must never hold one, whether it came from values or from the chart. */}}
{{- define "herald.smtpUrlEnv" -}}
{{- $v := .Values -}}
- name: HERALD_SMTP_URL
{{- if $v.secrets.smtpUrl.name }}
  valueFrom:
    secretKeyRef:
      name: {{ $v.secrets.smtpUrl.name }}
      key: {{ $v.secrets.smtpUrl.key }}
{{- else if $v.providerSim.enabled }}
  value: {{ include "herald.simSmtpUrl" . | quote }}
{{- else }}
  value: ""
{{- end }}
{{- end -}}

{{- define "herald.toml" -}}
# Rendered by the Herald Helm chart from .Values.config; layered over the built-in defaults.
# Environment variables (HERALD_<SECTION>__<KEY>, HERALD_PROVIDERS__<NAME>__<KEY>) still win;
# secrets come from them only.
{{- include "herald.tomlTable" (dict "path" "" "table" (include "herald.effectiveConfig" . | fromYaml)) }}
{{- end -}}

{{/* Deadlines -------------------------------------------------------------------------------- */}}

{{/* The worker drains its lanes for up to drain_timeout_ms, then waits as long again for the calls
     in flight to report (herald-worker startup.rs), then writes outcomes and leaves. */}}
{{- define "herald.workerGraceSeconds" -}}
{{- $drainMs := int64 .Values.config.worker.drain_timeout_ms -}}
{{- add (div (add (mul 2 $drainMs) 999) 1000) .Values.worker.shutdownMarginSeconds -}}
{{- end -}}

{{/* The API: 30 s for requests in flight (actix shutdown_timeout), 10 s for broker
     acknowledgements, 1 s producer flush, 5 s outbox cleaner (herald-api startup.rs). */}}
{{- define "herald.apiShutdownSeconds" -}}46{{- end -}}

{{- define "herald.apiGraceSeconds" -}}
{{- add (include "herald.apiShutdownSeconds" .) .Values.api.preStopSleepSeconds .Values.api.shutdownMarginSeconds -}}
{{- end -}}

{{/* Pod pieces ------------------------------------------------------------------------------- */}}

{{/* The providers' credentials: each from secrets.<secret> (an existing Secret; empty name: the
     variable is not set and the built-in default of config/herald.toml, the simulator's, applies)
     as the variable env, to the components listed. The worker sends with them; the API also gets
     the Twilio auth token, to verify Twilio's status callbacks (docs/DESIGN.md, "Provider
     callbacks"). Required ones are checked in validate.yaml. A new provider credential joins by one
     entry here (and secrets.<secret> in values.yaml and values.schema.json); the SMTP URL has rules
     of its own (herald.smtpUrlEnv). env is a flat alias herald-config knows
     (HERALD_TELEGRAM_BOT_TOKEN) or the nested name every setting has
     (HERALD_PROVIDERS__PUSHOVER__APP_TOKEN is providers.pushover.app_token). */}}
{{- define "herald.providerCredentials" -}}
credentials:
  - {secret: twilioAuthToken, env: HERALD_TWILIO_AUTH_TOKEN, components: [api, worker]}
  - {secret: sendgridApiKey, env: HERALD_SENDGRID_API_KEY, components: [worker]}
  - {secret: telegramBotToken, env: HERALD_TELEGRAM_BOT_TOKEN, components: [worker]}
  - {secret: pushoverAppToken, env: HERALD_PROVIDERS__PUSHOVER__APP_TOKEN, components: [worker]}
  - {secret: unsubscribeSigningKey, env: HERALD_UNSUBSCRIBE__SIGNING_KEY, components: [api, worker]}
  - {secret: unsubscribePreviousSigningKeys, env: HERALD_UNSUBSCRIBE__PREVIOUS_SIGNING_KEYS, components: [api, worker]}
{{- end -}}

{{/* Environment every Herald process gets. Call with (dict "root" $ "component" "api"). */}}
{{- define "herald.env" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
- name: HERALD_CONFIG_FILE
  value: /etc/herald/herald.toml
- name: HERALD_LOG_FORMAT
  value: {{ $v.logging.format | quote }}
- name: RUST_LOG
  value: {{ $v.logging.level | quote }}
- name: HERALD_DATABASE__URL
  valueFrom:
    secretKeyRef:
      name: {{ required "secrets.databaseUrl.name: the name of an existing Secret holding the PostgreSQL URL" $v.secrets.databaseUrl.name }}
      key: {{ $v.secrets.databaseUrl.key }}
{{- if and (eq .component "api") $v.secrets.databaseListenUrl.name }}
- name: HERALD_DATABASE__LISTEN_URL
  valueFrom:
    secretKeyRef:
      name: {{ $v.secrets.databaseListenUrl.name }}
      key: {{ $v.secrets.databaseListenUrl.key }}
{{- end }}
{{- if ne .component "migrations" }}
- name: HERALD_REDIS__URL
  valueFrom:
    secretKeyRef:
      name: {{ required "secrets.redisUrl.name: the name of an existing Secret holding the Redis URL" $v.secrets.redisUrl.name }}
      key: {{ $v.secrets.redisUrl.key }}
{{- end }}
{{- range $credential := (include "herald.providerCredentials" $root | fromYaml).credentials }}
{{- $secret := get $v.secrets $credential.secret }}
{{- if and (has $.component $credential.components) $secret.name }}
- name: {{ $credential.env }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret.name }}
      key: {{ $secret.key }}
{{- end }}
{{- end }}
{{- /* The brokers' login (config.kafka.security.sasl), for every component: the migrations Job
       runs create-topics. */}}
{{- range $credential := list (dict "secret" "kafkaSaslPassword" "env" "HERALD_KAFKA__SECURITY__SASL__PASSWORD") (dict "secret" "kafkaOauthClientSecret" "env" "HERALD_KAFKA__SECURITY__SASL__OAUTHBEARER__CLIENT_SECRET") }}
{{- $secret := get $v.secrets $credential.secret }}
{{- if $secret.name }}
- name: {{ $credential.env }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret.name }}
      key: {{ $secret.key }}
{{- end }}
{{- end }}
{{- if and (eq .component "migrations") $v.secrets.redisTls.name }}
{{- /* The migrations never connect to Redis and get no Redis URL: Redis's TLS files, named in the
       shared herald.toml, would be refused beside the default redis:// URL. */}}
- name: HERALD_REDIS__CA_FILE
  value: ""
- name: HERALD_REDIS__CERTIFICATE_FILE
  value: ""
- name: HERALD_REDIS__KEY_FILE
  value: ""
{{- end }}
{{- if eq .component "worker" }}
{{ include "herald.smtpUrlEnv" $root }}
{{- end }}
{{- if $v.otel.endpoint }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $v.otel.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $v.otel.protocol | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ get $v.otel.serviceNames .component | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $v.otel.tracesSampler | quote }}
{{- if $v.otel.tracesSamplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $v.otel.tracesSamplerArg | quote }}
{{- end }}
{{- /* service.version is the binary's own (herald-telemetry sets it from the crate version). */}}
{{- $attributes := list "k8s.namespace.name=$(POD_NAMESPACE)" "k8s.pod.name=$(POD_NAME)" }}
{{- range $key := keys $v.otel.resourceAttributes | sortAlpha }}
{{- $attributes = append $attributes (printf "%s=%s" $key (get $v.otel.resourceAttributes $key)) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attributes | quote }}
{{- end }}
{{- end -}}

{{/* topologySpreadConstraints from values, with the component's selector filled in, spreading
     each revision's pods on their own (revisionLabel: a Deployment's pod-template-hash, the
     default, or a StatefulSet's controller-revision-hash). */}}
{{- define "herald.topologySpread" -}}
{{- $root := .root -}}
{{- $component := .component -}}
{{- $revisionLabel := default "pod-template-hash" .revisionLabel -}}
{{- range .constraints }}
- topologyKey: {{ .topologyKey }}
  maxSkew: {{ .maxSkew }}
  whenUnsatisfiable: {{ .whenUnsatisfiable }}
  labelSelector:
    matchLabels:
      {{- include "herald.selectorLabels" (dict "root" $root "component" $component) | nindent 6 }}
  matchLabelKeys:
    - {{ $revisionLabel }}
{{- end }}
{{- end -}}

{{- define "herald.configChecksum" -}}
{{- include "herald.toml" . | sha256sum -}}
{{- end -}}

{{/* Volumes every Herald container mounts: the config and a writable /tmp. */}}
{{- define "herald.volumeMounts" -}}
- name: config
  mountPath: /etc/herald
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- range $tls := (include "herald.tlsSecrets" . | fromYaml).tls }}
{{- if (get $.Values.secrets $tls.secret).name }}
- name: {{ $tls.volume }}
  mountPath: {{ $tls.mountPath }}
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{/* Call with (dict "root" $ "configMap" NAME). */}}
{{- define "herald.volumes" -}}
- name: config
  configMap:
    name: {{ .configMap }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- range $tls := (include "herald.tlsSecrets" .root | fromYaml).tls }}
{{- $secret := get $.root.Values.secrets $tls.secret }}
{{- if $secret.name }}
- name: {{ $tls.volume }}
  secret:
    secretName: {{ $secret.name }}
    defaultMode: 0444
    items:
      {{- if $secret.caKey }}
      - {key: {{ $secret.caKey }}, path: ca.crt}
      {{- end }}
      {{- if $secret.certificateKey }}
      - {key: {{ $secret.certificateKey }}, path: tls.crt}
      - {key: {{ required (printf "secrets.%s.keyKey: the client key's key in the Secret, with certificateKey" $tls.secret) $secret.keyKey }}, path: tls.key}
      {{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{- /* How many worker pods a rollout adds beyond the replica count, which the database connection
       check counts: a Deployment's maxSurge (worker.yaml); a StatefulSet replaces its pods one by
       one, under the same names, and adds none. */ -}}
{{- define "herald.workerRolloutSurge" -}}{{ ternary 0 1 (eq .Values.worker.workload "StatefulSet") }}{{- end -}}

{{/* Network policies -------------------------------------------------------------------------- */}}

{{/* The clouds' instance metadata services (AWS, GCP, Azure, Oracle, OpenStack: 169.254.169.254;
     Alibaba: 100.100.100.200; AWS over IPv6: fd00:ec2::254): they hand out the node's credentials
     to whoever asks, so no Herald pod may reach them, whatever else an egress rule allows. */}}
{{- define "herald.metadataCidrs" -}}
- 169.254.169.254/32
- 100.100.100.200/32
{{- end -}}

{{- define "herald.metadataCidrsIPv6" -}}
- fd00:ec2::254/128
{{- end -}}

{{/* Every public address: 0.0.0.0/0 and ::/0 less networkPolicy.egress.internet's private, shared,
     link-local and loopback networks and the metadata services' (NetworkPolicy peers, a YAML
     list). The workers' internet rule and the OIDC token endpoint's default peers. */}}
{{- define "herald.publicAddressPeers" -}}
{{- $internet := .Values.networkPolicy.egress.internet -}}
- ipBlock:
    cidr: 0.0.0.0/0
    except:
      {{- toYaml (uniq (concat $internet.except (include "herald.metadataCidrs" . | fromYamlArray | toStrings) | sortAlpha)) | nindent 6 }}
- ipBlock:
    cidr: ::/0
    except:
      {{- toYaml (uniq (concat $internet.exceptIPv6 (include "herald.metadataCidrsIPv6" . | fromYamlArray | toStrings) | sortAlpha)) | nindent 6 }}
{{- end -}}

{{/* The port of a host:port (or scheme://host:port/...) string, else the default given:
     (dict "address" "b-1.kafka:9096" "default" 9092). */}}
{{- define "herald.addressPort" -}}
{{- $hostPort := .address -}}
{{- if contains "://" $hostPort }}{{ $hostPort = (urlParse $hostPort).host }}{{ end -}}
{{- $port := regexFind ":[0-9]+$" $hostPort | trimPrefix ":" -}}
{{- default (toString .default) $port -}}
{{- end -}}

{{/* One egress rule of networkPolicy.egress: its peers (`to`), or when none are given any address
     but the metadata services', on its ports (TCP, or the protocols given). Call with
     (dict "what" "PostgreSQL" "rule" .Values.networkPolicy.egress.database "root" $). */}}
{{- define "herald.egressRule" -}}
# {{ .what }}
- to:
  {{- if .rule.to }}
    {{- toYaml .rule.to | nindent 4 }}
  {{- else if .defaultPeers }}
    {{- include .defaultPeers .root | nindent 4 }}
  {{- else }}
    - ipBlock:
        cidr: 0.0.0.0/0
        except:
          {{- include "herald.metadataCidrs" .root | nindent 10 }}
    - ipBlock:
        cidr: ::/0
        except:
          {{- include "herald.metadataCidrsIPv6" .root | nindent 10 }}
  {{- end }}
  ports:
  {{- range $port := required (printf "networkPolicy.egress: the ports of %s" .what) .rule.ports }}
  {{- range $protocol := default (list "TCP") $.protocols }}
    - port: {{ $port }}
      protocol: {{ $protocol }}
  {{- end }}
  {{- end }}
{{- end -}}

{{- /* The high-priority notifications' topic: config.kafka.high_priority_topic, or {topic}.high
       (docs/DESIGN.md, "Priority lanes"), as Herald derives it. */ -}}
{{- define "herald.highPriorityTopic" -}}
{{- default (printf "%s.high" .Values.config.kafka.topic) .Values.config.kafka.high_priority_topic -}}
{{- end -}}

{{- /* config.kafka.security.sasl.mechanism in lower case, "none" when unset. */ -}}
{{- define "herald.kafkaSaslMechanism" -}}
{{- lower (toString (dig "kafka" "security" "sasl" "mechanism" "none" .Values.config)) -}}
{{- end -}}
