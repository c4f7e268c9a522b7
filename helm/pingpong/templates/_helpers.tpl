{{/* Names, labels and the settings several templates share. */}}

{{- define "pingpong.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's resource name, at most 63 characters (the DNS label limit). */}}
{{- define "pingpong.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "pingpong.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "pingpong.labels" -}}
helm.sh/chart: {{ include "pingpong.chart" . }}
{{ include "pingpong.selectorLabels" . }}
app.kubernetes.io/version: {{ include "pingpong.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pingpong
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that identify the release's pods, whatever their component. */}}
{{- define "pingpong.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pingpong.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels that select the service's pods (not the topics hook's). */}}
{{- define "pingpong.serviceSelectorLabels" -}}
{{ include "pingpong.selectorLabels" . }}
app.kubernetes.io/component: service
{{- end }}

{{- define "pingpong.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pingpong.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "pingpong.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* registry/repository:tag, or @digest when a digest is given (it pins the image). */}}
{{- define "pingpong.image" -}}
{{- $registry := default .Values.image.registry .Values.global.imageRegistry }}
{{- $repository := .Values.image.repository }}
{{- if $registry }}
{{- $repository = printf "%s/%s" $registry $repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (include "pingpong.imageTag" .) }}
{{- end }}
{{- end }}

{{- define "pingpong.imagePullSecrets" -}}
{{- $secrets := concat .Values.global.imagePullSecrets .Values.image.pullSecrets | uniq }}
{{- if $secrets }}
imagePullSecrets:
{{- range $secrets }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Where the Kafka secrets are mounted in the container. */}}
{{- define "pingpong.tlsDir" -}}/etc/pingpong/kafka-tls{{- end }}
{{- define "pingpong.saslDir" -}}/etc/pingpong/kafka-sasl{{- end }}

{{/* The Secret holding the SASL user name and password: the user's, or the chart's. */}}
{{- define "pingpong.saslSecretName" -}}
{{- if .Values.kafka.sasl.existingSecret }}
{{- .Values.kafka.sasl.existingSecret }}
{{- else }}
{{- printf "%s-kafka" (include "pingpong.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The copy of the chart's SASL Secret that the pre-install hook can use: hooks run before
the release's own objects exist. */}}
{{- define "pingpong.hookSaslSecretName" -}}
{{- if .Values.kafka.sasl.existingSecret }}
{{- .Values.kafka.sasl.existingSecret }}
{{- else }}
{{- printf "%s-topics-kafka" (include "pingpong.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "pingpong.saslUsernameKey" -}}
{{- if .Values.kafka.sasl.existingSecret }}{{ .Values.kafka.sasl.existingSecretUsernameKey }}{{ else }}username{{ end }}
{{- end }}

{{- define "pingpong.saslPasswordKey" -}}
{{- if .Values.kafka.sasl.existingSecret }}{{ .Values.kafka.sasl.existingSecretPasswordKey }}{{ else }}password{{ end }}
{{- end }}

{{/*
The non-secret Kafka settings, as "NAME: value" lines: the service reads them from its
ConfigMap, the topics hook gets them inline. One definition, so both reach the same cluster the
same way.
*/}}
{{- define "pingpong.kafkaEnv" -}}
{{- $k := .Values.kafka -}}
KAFKA_BROKERS: {{ $k.brokers | quote }}
KAFKA_TIMEOUT: {{ $k.timeout | quote }}
TOPIC_PREFIX: {{ .Values.config.topicPrefix | quote }}
{{- if $k.tls.enabled }}
KAFKA_TLS_ENABLED: "true"
{{- if $k.tls.caKey }}
KAFKA_TLS_CA_FILE: {{ printf "%s/ca.crt" (include "pingpong.tlsDir" .) | quote }}
{{- end }}
{{- if $k.tls.certKey }}
KAFKA_TLS_CERT_FILE: {{ printf "%s/tls.crt" (include "pingpong.tlsDir" .) | quote }}
KAFKA_TLS_KEY_FILE: {{ printf "%s/tls.key" (include "pingpong.tlsDir" .) | quote }}
{{- end }}
{{- with $k.tls.serverName }}
KAFKA_TLS_SERVER_NAME: {{ . | quote }}
{{- end }}
{{- if $k.tls.insecureSkipVerify }}
KAFKA_TLS_INSECURE_SKIP_VERIFY: "true"
{{- end }}
{{- end }}
{{- if $k.sasl.mechanism }}
KAFKA_SASL_MECHANISM: {{ $k.sasl.mechanism | quote }}
{{- if $k.sasl.passwordAsFile }}
KAFKA_SASL_PASSWORD_FILE: {{ printf "%s/password" (include "pingpong.saslDir" .) | quote }}
{{- end }}
{{- end }}
LOG_LEVEL: {{ .Values.config.logLevel | quote }}
LOG_FORMAT: {{ .Values.config.logFormat | quote }}
{{- end }}

{{/* The environment variables read from Secrets. Takes (dict "root" . "secret" <the SASL Secret's name>). */}}
{{- define "pingpong.secretEnv" -}}
{{- $ := .root }}
{{- if $.Values.kafka.sasl.mechanism }}
- name: KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ include "pingpong.saslUsernameKey" $ }}
{{- if not $.Values.kafka.sasl.passwordAsFile }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ include "pingpong.saslPasswordKey" $ }}
{{- end }}
{{- end }}
{{- end }}

{{/* The volumes of the Kafka secrets. Takes (dict "root" . "secret" <the SASL Secret's name>). */}}
{{- define "pingpong.kafkaVolumes" -}}
{{- $ := .root }}
{{- $tls := $.Values.kafka.tls }}
{{- if and $tls.enabled (or $tls.caKey $tls.certKey) }}
- name: kafka-tls
  secret:
    secretName: {{ $tls.existingSecret }}
    defaultMode: 0440
    items:
      {{- if $tls.caKey }}
      - key: {{ $tls.caKey }}
        path: ca.crt
      {{- end }}
      {{- if $tls.certKey }}
      - key: {{ $tls.certKey }}
        path: tls.crt
      - key: {{ $tls.keyKey }}
        path: tls.key
      {{- end }}
{{- end }}
{{- if and $.Values.kafka.sasl.mechanism $.Values.kafka.sasl.passwordAsFile }}
- name: kafka-sasl
  secret:
    secretName: {{ .secret }}
    defaultMode: 0440
    items:
      - key: {{ include "pingpong.saslPasswordKey" $ }}
        path: password
{{- end }}
{{- end }}

{{- define "pingpong.kafkaVolumeMounts" -}}
{{- $tls := .Values.kafka.tls }}
{{- if and $tls.enabled (or $tls.caKey $tls.certKey) }}
- name: kafka-tls
  mountPath: {{ include "pingpong.tlsDir" . }}
  readOnly: true
{{- end }}
{{- if and .Values.kafka.sasl.mechanism .Values.kafka.sasl.passwordAsFile }}
- name: kafka-sasl
  mountPath: {{ include "pingpong.saslDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/* The pod security context without the chart's "enabled" switch. */}}
{{- define "pingpong.podSecurityContext" -}}
{{- if .Values.podSecurityContext.enabled }}
securityContext:
  {{- omit .Values.podSecurityContext "enabled" | toYaml | nindent 2 }}
{{- end }}
{{- end }}

{{- define "pingpong.containerSecurityContext" -}}
{{- if .Values.containerSecurityContext.enabled }}
securityContext:
  {{- omit .Values.containerSecurityContext "enabled" | toYaml | nindent 2 }}
{{- end }}
{{- end }}

{{/* "true" when the chart sets the Deployment's replica count: no autoscaler, and replicaCountFromChart. */}}
{{- define "pingpong.replicasFromChart" -}}
{{- and .Values.replicaCountFromChart (not .Values.autoscaling.hpa.enabled) (not .Values.autoscaling.keda.enabled) }}
{{- end }}

{{/* The fewest replicas the release runs: what a PodDisruptionBudget must leave room under.
With replicaCountFromChart false, replicaCount is still the count it is checked against. */}}
{{- define "pingpong.minReplicas" -}}
{{- if .Values.autoscaling.keda.enabled }}
{{- .Values.autoscaling.keda.minReplicas }}
{{- else if .Values.autoscaling.hpa.enabled }}
{{- .Values.autoscaling.hpa.minReplicas }}
{{- else }}
{{- .Values.replicaCount }}
{{- end }}
{{- end }}

{{/*
Checks of values that the schema cannot express. Each failure says what to change. Included by
the Deployment, so every render runs them.
*/}}
{{- define "pingpong.validate" -}}
{{- $v := .Values }}
{{- if and $v.autoscaling.hpa.enabled $v.autoscaling.keda.enabled }}
{{- fail "autoscaling.hpa.enabled and autoscaling.keda.enabled are both true: KEDA makes its own HorizontalPodAutoscaler, enable one of them" }}
{{- end }}
{{- range $name, $a := dict "autoscaling.hpa" $v.autoscaling.hpa "autoscaling.keda" $v.autoscaling.keda }}
{{- if $a.enabled }}
{{- if gt (int $a.minReplicas) (int $a.maxReplicas) }}
{{- fail (printf "%s.minReplicas (%d) is above %s.maxReplicas (%d)" $name (int $a.minReplicas) $name (int $a.maxReplicas)) }}
{{- end }}
{{- if gt (int $a.maxReplicas) (int $v.topics.partitions) }}
{{- fail (printf "%s.maxReplicas (%d) is above topics.partitions (%d): a consumer group never gives more consumers than partitions any work, the extra pods would sit idle. Raise topics.partitions (and the topic's partitions) or lower maxReplicas" $name (int $a.maxReplicas) (int $v.topics.partitions)) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (eq (include "pingpong.replicasFromChart" .) "true") (gt (int $v.replicaCount) (int $v.topics.partitions)) }}
{{- fail (printf "replicaCount (%d) is above topics.partitions (%d): the extra consumers would sit idle" (int $v.replicaCount) (int $v.topics.partitions)) }}
{{- end }}
{{- if $v.pdb.create }}
{{- $min := int (include "pingpong.minReplicas" .) }}
{{- $minAvailable := toString $v.pdb.minAvailable }}
{{- if and $minAvailable (not (hasSuffix "%" $minAvailable)) (ge (int $minAvailable) $min) }}
{{- fail (printf "pdb.minAvailable (%s) must be below the replica count (%d), or no node could ever be drained" $minAvailable $min) }}
{{- end }}
{{- if and (hasSuffix "%" $minAvailable) (ge (int (trimSuffix "%" $minAvailable)) 100) }}
{{- fail "pdb.minAvailable must be below 100%, or no node could ever be drained" }}
{{- end }}
{{- if and (not $minAvailable) (eq (toString $v.pdb.maxUnavailable) "0") }}
{{- fail "pdb.maxUnavailable is 0: no node could ever be drained" }}
{{- end }}
{{- end }}
{{- $sasl := $v.kafka.sasl }}
{{- if $sasl.mechanism }}
{{- if and (not $sasl.existingSecret) (or (not $sasl.username) (not $sasl.password)) }}
{{- fail "kafka.sasl.mechanism is set: give kafka.sasl.existingSecret (preferred) or kafka.sasl.username and kafka.sasl.password" }}
{{- end }}
{{- end }}
{{- $tls := $v.kafka.tls }}
{{- if and $tls.enabled (or $tls.caKey $tls.certKey) (not $tls.existingSecret) }}
{{- fail "kafka.tls.caKey or kafka.tls.certKey is set: kafka.tls.existingSecret must name the Secret that holds them (or set kafka.tls.caKey to \"\" to trust the system's CAs)" }}
{{- end }}
{{- if and $tls.certKey (not $tls.keyKey) }}
{{- fail "kafka.tls.certKey is set without kafka.tls.keyKey: a client certificate needs its key" }}
{{- end }}
{{- if and $tls.keyKey (not $tls.certKey) }}
{{- fail "kafka.tls.keyKey is set without kafka.tls.certKey: a client key needs its certificate" }}
{{- end }}
{{- $managed := list "HTTP_ADDR" "SHUTDOWN_TIMEOUT" "KAFKA_SASL_USERNAME" "KAFKA_SASL_PASSWORD" }}
{{- $managed = concat $managed (keys (include "pingpong.kafkaEnv" . | fromYaml)) (keys (include "pingpong.serviceEnv" . | fromYaml)) }}
{{- range $v.extraEnv }}
{{- if has .name $managed }}
{{- fail (printf "extraEnv sets %s, which the chart sets from its values (see values.yaml): set it there. SHUTDOWN_TIMEOUT comes from config.shutdownTimeoutSeconds, because the termination grace period is derived from it" .name) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The service's own settings (beside the Kafka ones), as "NAME: value" lines. */}}
{{- define "pingpong.serviceEnv" -}}
{{- $c := .Values.config -}}
KAFKA_CONSUMER_GROUP: {{ $c.consumerGroup | quote }}
KAFKA_CONSUMER_OFFSET: {{ $c.consumerOffset | quote }}
HTTP_ADDR: {{ printf ":%d" (int .Values.containerPorts.http) | quote }}
SHUTDOWN_TIMEOUT: {{ printf "%ds" (int $c.shutdownTimeoutSeconds) | quote }}
MAX_REQUEST_BYTES: {{ int $c.maxRequestBytes | quote }}
MEMORY_BUDGET_BYTES: {{ int $c.memoryBudgetBytes | quote }}
RETRY_MAX_RETRIES: {{ int $c.retry.maxRetries | quote }}
RETRY_INITIAL_INTERVAL: {{ $c.retry.initialInterval | quote }}
RETRY_MAX_INTERVAL: {{ $c.retry.maxInterval | quote }}
RETRY_MULTIPLIER: {{ $c.retry.multiplier | toString | quote }}
RETRY_JITTER: {{ $c.retry.jitter | toString | quote }}
RETRY_MAX_ELAPSED: {{ $c.retry.maxElapsed | quote }}
{{- end }}

{{/*
The termination grace period: the service's shutdown timeout plus a margin for closing the
clients, so that Kubernetes never kills a pod that is still finishing its requests in flight.
*/}}
{{- define "pingpong.terminationGracePeriodSeconds" -}}
{{- add (int .Values.config.shutdownTimeoutSeconds) (int .Values.terminationGracePeriodMarginSeconds) }}
{{- end }}

{{/* Non-empty when KEDA's scaler needs credentials or certificates from a TriggerAuthentication. */}}
{{- define "pingpong.kedaAuthNeeded" -}}
{{- $k := .Values.kafka }}
{{- if or $k.sasl.mechanism (and $k.tls.enabled (or $k.tls.caKey $k.tls.certKey)) }}true{{ end }}
{{- end }}
