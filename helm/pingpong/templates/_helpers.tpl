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

{{/* Non-empty for the mechanisms of a user name and password. */}}
{{- define "pingpong.saslUserPassword" -}}
{{- if has .Values.kafka.sasl.mechanism (list "PLAIN" "SCRAM-SHA-256" "SCRAM-SHA-512") }}true{{ end }}
{{- end }}

{{/* Non-empty with OAUTHBEARER. */}}
{{- define "pingpong.saslOAuth" -}}
{{- if eq .Values.kafka.sasl.mechanism "OAUTHBEARER" }}true{{ end }}
{{- end }}

{{/* Non-empty when the SASL credentials are in a Secret: not with AWS_MSK_IAM, whose come from
the AWS SDK's chain (IRSA, EKS Pod Identity). */}}
{{- define "pingpong.saslSecretNeeded" -}}
{{- if or (include "pingpong.saslUserPassword" .) (include "pingpong.saslOAuth" .) }}true{{ end }}
{{- end }}

{{/* The data of the Secret the chart creates from values. */}}
{{- define "pingpong.saslSecretData" -}}
{{- if include "pingpong.saslOAuth" . }}
client-secret: {{ .Values.kafka.sasl.oauth.clientSecret | b64enc | quote }}
{{- else }}
username: {{ .Values.kafka.sasl.username | b64enc | quote }}
password: {{ .Values.kafka.sasl.password | b64enc | quote }}
{{- end }}
{{- end }}

{{- define "pingpong.saslClientSecretKey" -}}
{{- if .Values.kafka.sasl.existingSecret }}{{ .Values.kafka.sasl.existingSecretClientSecretKey }}{{ else }}client-secret{{ end }}
{{- end }}

{{/* The ServiceAccount's annotations: the user's, IRSA's role and the common ones. */}}
{{- define "pingpong.serviceAccountAnnotations" -}}
{{- $annotations := merge (deepCopy .Values.serviceAccount.annotations) .Values.commonAnnotations }}
{{- with .Values.kafka.sasl.aws.roleArn }}
{{- $_ := set $annotations "eks.amazonaws.com/role-arn" . }}
{{- end }}
{{- with $annotations }}{{ toYaml . }}{{ end }}
{{- end }}

{{/* Non-empty when the topics hook needs the pods' AWS identity but the release's
ServiceAccount does not exist yet (hooks run first): it gets a hook-owned copy. */}}
{{- define "pingpong.hookServiceAccount" -}}
{{- if and (eq .Values.kafka.sasl.mechanism "AWS_MSK_IAM") .Values.serviceAccount.create }}true{{ end }}
{{- end }}

{{- define "pingpong.hookServiceAccountName" -}}
{{- if include "pingpong.hookServiceAccount" . }}
{{- printf "%s-topics" (include "pingpong.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- else if eq .Values.kafka.sasl.mechanism "AWS_MSK_IAM" }}
{{- include "pingpong.serviceAccountName" . }}
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
{{- if and (include "pingpong.saslUserPassword" .) $k.sasl.passwordAsFile }}
KAFKA_SASL_PASSWORD_FILE: {{ printf "%s/password" (include "pingpong.saslDir" .) | quote }}
{{- end }}
{{- if include "pingpong.saslOAuth" . }}
{{- $o := $k.sasl.oauth }}
KAFKA_SASL_OAUTH_TOKEN_URL: {{ $o.tokenUrl | quote }}
KAFKA_SASL_OAUTH_CLIENT_ID: {{ $o.clientId | quote }}
KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE: {{ printf "%s/client-secret" (include "pingpong.saslDir" .) | quote }}
{{- with $o.scope }}
KAFKA_SASL_OAUTH_SCOPE: {{ . | quote }}
{{- end }}
{{- with $o.extensions }}
{{- $pairs := list }}
{{- range $key := keys . | sortAlpha }}
{{- $pairs = append $pairs (printf "%s=%s" $key (get $o.extensions $key)) }}
{{- end }}
KAFKA_SASL_OAUTH_EXTENSIONS: {{ join "," $pairs | quote }}
{{- end }}
{{- end }}
{{- if and (eq $k.sasl.mechanism "AWS_MSK_IAM") $k.sasl.aws.region }}
AWS_REGION: {{ $k.sasl.aws.region | quote }}
{{- end }}
{{- end }}
LOG_LEVEL: {{ .Values.config.logLevel | quote }}
LOG_FORMAT: {{ .Values.config.logFormat | quote }}
{{- end }}

{{/* The environment variables read from Secrets. Takes (dict "root" . "secret" <the SASL Secret's name>). */}}
{{- define "pingpong.secretEnv" -}}
{{- $ := .root }}
{{- if include "pingpong.saslUserPassword" $ }}
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
{{- if include "pingpong.saslFile" $ }}
- name: kafka-sasl
  secret:
    secretName: {{ .secret }}
    defaultMode: 0440
    items:
      {{- if include "pingpong.saslOAuth" $ }}
      - key: {{ include "pingpong.saslClientSecretKey" $ }}
        path: client-secret
      {{- else }}
      - key: {{ include "pingpong.saslPasswordKey" $ }}
        path: password
      {{- end }}
{{- end }}
{{- end }}

{{/* Non-empty when a SASL secret is mounted as a file: the password, or the OAuth client secret. */}}
{{- define "pingpong.saslFile" -}}
{{- if or (and (include "pingpong.saslUserPassword" .) .Values.kafka.sasl.passwordAsFile) (include "pingpong.saslOAuth" .) }}true{{ end }}
{{- end }}

{{- define "pingpong.kafkaVolumeMounts" -}}
{{- $tls := .Values.kafka.tls }}
{{- if and $tls.enabled (or $tls.caKey $tls.certKey) }}
- name: kafka-tls
  mountPath: {{ include "pingpong.tlsDir" . }}
  readOnly: true
{{- end }}
{{- if include "pingpong.saslFile" . }}
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
{{- if include "pingpong.saslUserPassword" . }}
{{- if and (not $sasl.existingSecret) (or (not $sasl.username) (not $sasl.password)) }}
{{- fail "kafka.sasl.mechanism is set: give kafka.sasl.existingSecret (preferred) or kafka.sasl.username and kafka.sasl.password" }}
{{- end }}
{{- end }}
{{- if include "pingpong.saslOAuth" . }}
{{- if or (not $sasl.oauth.tokenUrl) (not $sasl.oauth.clientId) }}
{{- fail "kafka.sasl.mechanism is OAUTHBEARER: give kafka.sasl.oauth.tokenUrl and kafka.sasl.oauth.clientId" }}
{{- end }}
{{- if and (not $sasl.existingSecret) (not $sasl.oauth.clientSecret) }}
{{- fail "kafka.sasl.mechanism is OAUTHBEARER: give kafka.sasl.existingSecret (preferred) or kafka.sasl.oauth.clientSecret" }}
{{- end }}
{{- end }}
{{- if eq $sasl.mechanism "AWS_MSK_IAM" }}
{{- if not $v.kafka.tls.enabled }}
{{- fail "kafka.sasl.mechanism is AWS_MSK_IAM: set kafka.tls.enabled (MSK takes IAM sign-in only on its TLS listeners, port 9098)" }}
{{- end }}
{{- if $v.autoscaling.keda.enabled }}
{{- fail "autoscaling.keda.enabled with AWS_MSK_IAM: KEDA's scaler signs in with KEDA's own AWS identity, which this chart does not configure; use autoscaling.hpa, or write the ScaledObject yourself (docs/security.md, Cloud sign-in)" }}
{{- end }}
{{- end }}
{{- if and (include "pingpong.saslOAuth" .) $v.autoscaling.keda.enabled }}
{{- fail "autoscaling.keda.enabled with OAUTHBEARER: KEDA's scaler needs its own OAuth settings, which this chart does not write; use autoscaling.hpa, or write the ScaledObject yourself" }}
{{- end }}
{{- if and $sasl.aws.roleArn (not $v.serviceAccount.create) }}
{{- fail "kafka.sasl.aws.roleArn is set but serviceAccount.create is false: annotate your ServiceAccount with eks.amazonaws.com/role-arn yourself and leave roleArn empty" }}
{{- end }}
{{- if and (or $sasl.aws.roleArn $sasl.aws.region) (ne $sasl.mechanism "AWS_MSK_IAM") }}
{{- fail "kafka.sasl.aws is set, but kafka.sasl.mechanism is not AWS_MSK_IAM" }}
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
{{- with $v.kafka.delivery.transactionalId }}
{{- if or (ne (include "pingpong.replicasFromChart" $) "true") (gt (int $v.replicaCount) 1) $v.autoscaling.hpa.enabled $v.autoscaling.keda.enabled (ne $v.updateStrategy.type "Recreate") }}
{{- fail (printf "kafka.delivery.transactionalId is %q: a fixed transactional id belongs to one producer, and every pod that runs with it fences the others (their transactions abort, their answers are read again). Leave it empty, so that each pod uses <config.consumerGroup>-<pod name>; or run one pod at a time: replicaCount 1, no autoscaler, replicaCountFromChart true, updateStrategy.type Recreate" .) }}
{{- end }}
{{- end }}
{{- $managed := list "HTTP_ADDR" "SHUTDOWN_TIMEOUT" "KAFKA_SASL_USERNAME" "KAFKA_SASL_PASSWORD" "AWS_REGION" }}
{{- $managed = concat $managed (keys (include "pingpong.kafkaEnv" . | fromYaml)) (keys (include "pingpong.serviceEnv" . | fromYaml)) (keys (include "pingpong.tracingEnv" . | fromYaml)) }}
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
{{- $d := .Values.kafka.delivery }}
KAFKA_DELIVERY: {{ $d.mode | quote }}
KAFKA_TRANSACTION_INTERVAL: {{ $d.transactionInterval | quote }}
KAFKA_TRANSACTION_MAX_REQUESTS: {{ int $d.transactionMaxRequests | quote }}
KAFKA_TRANSACTION_TIMEOUT: {{ $d.transactionTimeout | quote }}
{{- with $d.transactionalId }}
KAFKA_TRANSACTIONAL_ID: {{ . | quote }}
{{- end }}
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
{{- if or (include "pingpong.saslSecretNeeded" .) (and $k.tls.enabled (or $k.tls.caKey $k.tls.certKey)) }}true{{ end }}
{{- end }}

{{/*
OpenTelemetry's standard variables, as "NAME: value" lines; none while tracing.endpoint is empty
(tracing off). k8s.namespace.name tells the releases of several namespaces apart.
*/}}
{{- define "pingpong.tracingEnv" -}}
{{- $t := .Values.tracing -}}
{{- if $t.endpoint -}}
{{- $attrs := list (printf "k8s.namespace.name=%s" .Release.Namespace) -}}
{{- range $k, $v := $t.resourceAttributes }}{{ $attrs = append $attrs (printf "%s=%s" $k $v) }}{{ end -}}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ $t.endpoint | quote }}
OTEL_EXPORTER_OTLP_PROTOCOL: {{ $t.protocol | quote }}
OTEL_SERVICE_NAME: {{ default (include "pingpong.fullname" .) $t.serviceName | quote }}
OTEL_TRACES_SAMPLER: {{ $t.sampler | quote }}
OTEL_TRACES_SAMPLER_ARG: {{ $t.samplerArg | toString | quote }}
OTEL_RESOURCE_ATTRIBUTES: {{ join "," $attrs | quote }}
{{- end }}
{{- end }}

{{/* The port of tracing.endpoint: its own, else the protocol's default (4317 grpc, 4318 http). */}}
{{- define "pingpong.tracingPort" -}}
{{- $t := .Values.tracing -}}
{{- $host := (urlParse $t.endpoint).host -}}
{{- if regexMatch ":[0-9]+$" $host -}}
{{- regexFind "[0-9]+$" $host -}}
{{- else if eq $t.protocol "grpc" -}}
4317
{{- else -}}
4318
{{- end -}}
{{- end }}
