{{/*
Names, labels, images, the env block of each component, and the checks on values that a JSON schema
cannot express. Everything the templates share lives here, and nothing here is clever: each helper
reads alone.
*/}}

{{/* The chart's name, for the app.kubernetes.io/name label. */}}
{{- define "tollgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Prefix of every object name: the release name (or fullnameOverride), so the Services are
`<release>-envoy`, `<release>-extauthz`, `<release>-redis`. Truncated so the longest suffix still fits
the 63 characters of a DNS label.
*/}}
{{- define "tollgate.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 45 | trimSuffix "-" -}}
{{- end -}}

{{/* `<fullname>-<component>`; call with (list $ "envoy"). */}}
{{- define "tollgate.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "tollgate.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The fully qualified DNS name of one of the chart's Services; call with (list $ "extauthz"). */}}
{{- define "tollgate.serviceHost" -}}
{{- $root := index . 0 -}}
{{- printf "%s.%s.svc.%s" (include "tollgate.componentName" .) $root.Release.Namespace $root.Values.clusterDomain -}}
{{- end -}}

{{- define "tollgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select a component's Pods; call with (list $ "envoy"). Never change them: selectors are immutable. */}}
{{- define "tollgate.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "tollgate.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Every label of a component's objects; call with (list $ "envoy"). */}}
{{- define "tollgate.labels" -}}
{{- $root := index . 0 -}}
{{ include "tollgate.selectorLabels" . }}
app.kubernetes.io/part-of: tollgate
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
helm.sh/chart: {{ include "tollgate.chart" $root }}
{{- end -}}

{{/*
The Tollgate image (ext_authz, operator, Envoy config renderer, helm test): by digest when one is set
(a released chart carries the digest its release pushed), else by tag.
*/}}
{{- define "tollgate.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* An official image (Envoy, Redis) by digest when one is set; call with .Values.envoy.image. */}}
{{- define "tollgate.imageRef" -}}
{{- if .digest -}}
{{- printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}
{{- end -}}

{{- define "tollgate.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (include "tollgate.componentName" (list . "operator")) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* "true" when the chart runs its own Redis, "" when `redis.external` names another one. */}}
{{- define "tollgate.redis.bundled" -}}
{{- if not (or .Values.redis.external.url .Values.redis.external.existingSecret) -}}true{{- end -}}
{{- end -}}

{{/* The Secret (and key) holding the Redis URL the Tollgate processes connect with. */}}
{{- define "tollgate.redis.secretName" -}}
{{- default (include "tollgate.componentName" (list . "redis")) .Values.redis.external.existingSecret -}}
{{- end -}}

{{- define "tollgate.redis.secretKey" -}}
{{- if .Values.redis.external.existingSecret -}}{{ .Values.redis.external.existingSecretKey }}{{- else -}}url{{- end -}}
{{- end -}}

{{/* The Secret (and key) holding the Fernet keys. */}}
{{- define "tollgate.credentials.secretName" -}}
{{- default (include "tollgate.componentName" (list . "credentials")) .Values.credentials.existingSecret -}}
{{- end -}}

{{- define "tollgate.credentials.secretKey" -}}
{{- if .Values.credentials.existingSecret -}}{{ .Values.credentials.existingSecretKey }}{{- else -}}keys{{- end -}}
{{- end -}}

{{/*
The vendors' TCP ports, deduplicated, as a JSON list: the URL's port, or 443/80 by scheme. Envoy and
ext_authz may open connections to these and no others.
*/}}
{{- define "tollgate.vendorPorts" -}}
{{- $ports := list -}}
{{- range .Values.vendors -}}
{{- $u := urlParse .url -}}
{{- $port := ternary 443 80 (eq $u.scheme "https") -}}
{{- if regexMatch ":[0-9]+$" $u.host -}}
{{- $port = regexFind "[0-9]+$" $u.host | atoi -}}
{{- end -}}
{{- $ports = append $ports $port -}}
{{- end -}}
{{- $ports | uniq | toJson -}}
{{- end -}}

{{/* The vendor base URLs ext_authz reads from, as the JSON object TOLLGATE_EXTAUTHZ__VENDOR_URLS expects. */}}
{{- define "tollgate.vendorUrls" -}}
{{- $urls := dict -}}
{{- range .Values.vendors -}}
{{- $_ := set $urls .name .url -}}
{{- end -}}
{{- $urls | toJson -}}
{{- end -}}

{{/*
Environment shared by every process that opens the store: where Redis is, and the keys that seal
vendor keys. Both come from Secrets, never from plain values.
*/}}
{{- define "tollgate.env.store" -}}
- name: TOLLGATE_REDIS__URL
  valueFrom:
    secretKeyRef:
      name: {{ include "tollgate.redis.secretName" . }}
      key: {{ include "tollgate.redis.secretKey" . }}
- name: TOLLGATE_REDIS__REPLICA_ACKS
  value: {{ .Values.redis.replicaAcks | quote }}
- name: TOLLGATE_REDIS__REPLICA_ACK_TIMEOUT_MS
  value: {{ .Values.redis.replicaAckTimeoutMs | quote }}
- name: TOLLGATE_CREDENTIALS__KEYS
  valueFrom:
    secretKeyRef:
      name: {{ include "tollgate.credentials.secretName" . }}
      key: {{ include "tollgate.credentials.secretKey" . }}
- name: TOLLGATE_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: TOLLGATE_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- end -}}

{{/* The only place values become ext_authz's settings (tollgate.settings.Settings, TOLLGATE_*). */}}
{{- define "tollgate.env.extauthz" -}}
{{ include "tollgate.env.store" . }}
- name: TOLLGATE_EXTAUTHZ__HOST
  value: "0.0.0.0"
- name: TOLLGATE_EXTAUTHZ__PORT
  value: {{ .Values.extauthz.port | quote }}
- name: TOLLGATE_EXTAUTHZ__VENDOR_URLS
  value: {{ include "tollgate.vendorUrls" . | quote }}
{{- if .Values.extauthz.metrics.enabled }}
- name: TOLLGATE_EXTAUTHZ__METRICS_PORT
  value: {{ .Values.extauthz.metrics.port | quote }}
{{- end }}
{{- with .Values.extauthz.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The only place values become the operator's settings. The namespaces are also passed to kopf as flags
(operator-deployment.yaml); the setting tells Tollgate's own resync which namespaces are its own.
*/}}
{{- define "tollgate.env.operator" -}}
{{ include "tollgate.env.store" . }}
- name: TOLLGATE_OPERATOR__NAMESPACES
  value: {{ .Values.operator.watchNamespaces | toJson | quote }}
{{- if .Values.networkPolicy.enabled }}
- name: TOLLGATE_OPERATOR__CONFINEMENT
  value: {{ include "tollgate.confinement" . | quote }}
{{- end }}
{{- if not .Values.audit.enabled }}
{{- /* No audit sidecar, so no ledger to rebuild spend from: the operator marks grants as it writes them. */}}
- name: TOLLGATE_REDIS__AUDITED
  value: "false"
{{- end }}
{{- with .Values.operator.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Security context of every container the chart runs: the "restricted" Pod Security Standard, with a
read-only root filesystem (writable paths are emptyDirs).
*/}}
{{- define "tollgate.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Pod security context; call with (list $ <uid>): each image has its own unprivileged user. */}}
{{- define "tollgate.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ index . 1 }}
runAsGroup: {{ index . 1 }}
fsGroup: {{ index . 1 }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Affinity of a replicated component: the user's, or a soft preference for different nodes so that one
node going down leaves the other replicas answering. Call with (list $ "envoy" .Values.envoy.affinity).
*/}}
{{- define "tollgate.affinity" -}}
{{- $affinity := index . 2 -}}
{{- if $affinity -}}
{{ toYaml $affinity }}
{{- else -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "tollgate.selectorLabels" (list (index . 0) (index . 1)) | nindent 12 }}
{{- end -}}
{{- end -}}

{{/* The agent namespaces named in networkPolicy.agentNamespaces, as a sorted JSON list. */}}
{{- define "tollgate.agentNamespaces" -}}
{{- .Values.networkPolicy.agentNamespaces | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/*
What the operator needs to confine agent namespaces (ConfinementSettings, one JSON value): which
namespaces are agents', and where their Pods may go. The operator writes the egress NetworkPolicy into
each of them the moment it is labelled, so no `helm upgrade` is needed for a new namespace.
*/}}
{{- define "tollgate.confinement" -}}
{{- $np := .Values.networkPolicy -}}
{{- $envoy := include "tollgate.selectorLabels" (list . "envoy") | fromYaml -}}
{{- $labels := include "tollgate.labels" (list . "agents") | fromYaml -}}
{{- $_ := unset $labels "app.kubernetes.io/managed-by" -}}
{{- dict
  "namespace_labels" ($np.agentNamespaceLabels | default dict)
  "namespaces" (include "tollgate.agentNamespaces" . | fromJsonArray)
  "policy_name" (printf "%s-%s-agents-egress" (include "tollgate.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-")
  "agent_pod_labels" ($np.agentPodLabels | default dict)
  "envoy_namespace" .Release.Namespace
  "envoy_pod_labels" $envoy
  "envoy_port" (int .Values.envoy.listenPort)
  "dns_namespace_labels" $np.dns.namespaceLabels
  "dns_pod_labels" $np.dns.podLabels
  "labels" $labels
  | toJson -}}
{{- end -}}

{{/* The egress rule every restricted Pod needs: DNS to the cluster's resolver, UDP and TCP 53. */}}
{{- define "tollgate.networkPolicy.dnsEgress" -}}
- to:
    - namespaceSelector:
        matchLabels:
          {{- toYaml .Values.networkPolicy.dns.namespaceLabels | nindent 10 }}
      podSelector:
        matchLabels:
          {{- toYaml .Values.networkPolicy.dns.podLabels | nindent 10 }}
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- end -}}

{{/* Egress to the vendors: their ports, to networkPolicy.vendorEgressCidrs. */}}
{{- define "tollgate.networkPolicy.vendorEgress" -}}
- to:
    {{- range .Values.networkPolicy.vendorEgressCidrs }}
    - ipBlock:
        cidr: {{ . | quote }}
    {{- end }}
  ports:
    {{- range (include "tollgate.vendorPorts" . | fromJsonArray) }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end -}}

{{/* The audit database URL's Secret: the chart's own (from audit.database.url) or an existing one. */}}
{{- define "tollgate.audit.databaseSecret" -}}
{{- if .Values.audit.database.existingSecret -}}
{{ toJson (dict "name" .Values.audit.database.existingSecret "key" .Values.audit.database.existingSecretKey) }}
{{- else if .Values.audit.database.url -}}
{{ toJson (dict "name" (include "tollgate.componentName" (list . "audit")) "key" "url") }}
{{- else -}}
{}
{{- end -}}
{{- end -}}

{{/* Where the audit sidecar keeps SQLite when no database is given. */}}
{{- define "tollgate.audit.sqliteUrl" -}}
sqlite:////var/lib/tollgate/audit.db
{{- end -}}

{{/*
The only place values become the audit sidecar's settings. It gets Redis (to settle and release
reservations) but not the credential keys: it never opens a vendor key.
*/}}
{{- define "tollgate.env.audit" -}}
{{- $db := include "tollgate.audit.databaseSecret" . | fromJson }}
- name: TOLLGATE_REDIS__URL
  valueFrom:
    secretKeyRef:
      name: {{ include "tollgate.redis.secretName" . }}
      key: {{ include "tollgate.redis.secretKey" . }}
- name: TOLLGATE_AUDIT__URL
{{- if $db.name }}
  valueFrom:
    secretKeyRef:
      name: {{ $db.name }}
      key: {{ $db.key }}
{{- else }}
  value: {{ include "tollgate.audit.sqliteUrl" . | quote }}
{{- end }}
- name: TOLLGATE_AUDIT__LOG_PATH
  value: /var/log/tollgate/access.log
{{- with .Values.alerts.slackWebhook.existingSecret }}
- name: TOLLGATE_ALERTS__SLACK_WEBHOOK_URL
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.alerts.slackWebhook.existingSecretKey }}
{{- end }}
- name: TOLLGATE_ALERTS__CAP_WARN_PERCENT
  value: {{ .Values.alerts.capWarnPercent | quote }}
- name: TOLLGATE_ALERTS__DENIAL_BURST
  value: {{ .Values.alerts.denialBurst | quote }}
- name: TOLLGATE_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: TOLLGATE_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- end -}}

{{/* Egress to Redis: the bundled Pods, or networkPolicy.externalRedis. */}}
{{- define "tollgate.networkPolicy.redisEgress" -}}
{{- if include "tollgate.redis.bundled" . }}
- to:
    - podSelector:
        matchLabels:
          {{- include "tollgate.selectorLabels" (list . "redis") | nindent 10 }}
  ports:
    - protocol: TCP
      port: 6379
{{- else }}
- to:
    {{- range .Values.networkPolicy.externalRedis.cidrs }}
    - ipBlock:
        cidr: {{ . | quote }}
    {{- end }}
  ports:
    - protocol: TCP
      port: {{ .Values.networkPolicy.externalRedis.port }}
    {{- range .Values.networkPolicy.externalRedis.extraPorts }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end }}
{{- end -}}

{{/*
Checks a JSON schema cannot express. Each message says what to change. Included at the top of every
template that depends on the values it checks, so `helm template` and `helm install` fail early.
*/}}
{{- define "tollgate.validateValues" -}}
{{- $errors := list -}}
{{- if and .Values.redis.external.url .Values.redis.external.existingSecret -}}
{{- $errors = append $errors "redis.external: set `url` or `existingSecret`, not both" -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.extauthz.metrics.enabled) -}}
{{- $errors = append $errors "metrics.serviceMonitor.enabled needs extauthz.metrics.enabled: there is nothing to scrape otherwise" -}}
{{- end -}}
{{- if eq (int .Values.extauthz.metrics.port) (int .Values.extauthz.port) -}}
{{- $errors = append $errors "extauthz.metrics.port must differ from extauthz.port" -}}
{{- end -}}
{{- if and .Values.audit.database.url .Values.audit.database.existingSecret -}}
{{- $errors = append $errors "audit.database: set `url` or `existingSecret`, not both" -}}
{{- end -}}
{{- if and .Values.audit.enabled .Values.audit.metrics.enabled (has (int .Values.audit.metrics.port) (list (int .Values.envoy.listenPort) (int .Values.envoy.adminPort))) -}}
{{- $errors = append $errors "audit.metrics.port must differ from envoy.listenPort and envoy.adminPort (they share the Pod)" -}}
{{- end -}}
{{- if eq (int .Values.envoy.adminPort) (int .Values.envoy.listenPort) -}}
{{- $errors = append $errors "envoy.adminPort must differ from envoy.listenPort" -}}
{{- end -}}
{{- $names := list -}}
{{- range .Values.vendors -}}
{{- if has .name $names -}}
{{- $errors = append $errors (printf "vendors: %q is listed twice" .name) -}}
{{- end -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- if and (not .Values.operator.serviceAccount.create) (not .Values.operator.serviceAccount.name) -}}
{{- $errors = append $errors "operator.serviceAccount.name must name an existing ServiceAccount when operator.serviceAccount.create is false" -}}
{{- end -}}
{{- if $errors -}}
{{- fail (printf "\n\ninvalid values:\n  - %s" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}
