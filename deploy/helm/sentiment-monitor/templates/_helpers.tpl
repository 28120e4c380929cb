{{/* Chart name. */}}
{{- define "sm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name. */}}
{{- define "sm.fullname" -}}
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

{{- define "sm.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: worker
{{- end }}

{{- define "sm.labels" -}}
helm.sh/chart: {{ include "sm.chart" . }}
{{ include "sm.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sm.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sm.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sm.secretName" -}}
{{- default (include "sm.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "sm.image" -}}
{{- $flavour := ternary "cuda" "cpu" .Values.gpu.enabled }}
{{- $tag := default (printf "%s-%s" .Chart.AppVersion $flavour) .Values.image.tag }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}

{{/* Checks that fail the render with a message, before anything reaches the cluster. */}}
{{- define "sm.validate" -}}
{{- $partitions := int .Values.kafka.topicPartitions }}
{{- if and (not .Values.autoscaling.enabled) (gt (int .Values.replicaCount) $partitions) }}
{{- fail (printf "replicaCount %d exceeds kafka.topicPartitions %d: the extra workers would get no partition" (int .Values.replicaCount) $partitions) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.maxReplicas) $partitions) }}
{{- fail (printf "autoscaling.maxReplicas %d exceeds kafka.topicPartitions %d" (int .Values.autoscaling.maxReplicas) $partitions) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas exceeds autoscaling.maxReplicas" }}
{{- end }}
{{- if and (not .Values.existingSecret) (not .Values.redis.url) }}
{{- fail "redis.url is required (or existingSecret with SM_REDIS_URL)" }}
{{- end }}
{{- range $key, $_ := .Values.config }}
{{- if not (hasPrefix "SM_" $key) }}
{{- fail (printf "config.%s: settings are SM_* variables" $key) }}
{{- end }}
{{- end }}
{{- end }}
