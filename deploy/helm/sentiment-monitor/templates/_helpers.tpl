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

{{/* The API process (`sentiment-monitor api`): its own Deployment, Service, PDB and ServiceMonitor. */}}
{{- define "sm.apiFullname" -}}
{{- printf "%s-api" (include "sm.fullname" . | trunc 59 | trimSuffix "-") }}
{{- end }}

{{- define "sm.apiSelectorLabels" -}}
app.kubernetes.io/name: {{ include "sm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: api
{{- end }}

{{- define "sm.apiLabels" -}}
helm.sh/chart: {{ include "sm.chart" . }}
{{ include "sm.apiSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Where alerts link to the live page (SM_DASHBOARD_URL): api.dashboardUrl, else the API
Service's in-cluster address; empty when there is neither (the worker's own default then). */}}
{{- define "sm.dashboardUrl" -}}
{{- if .Values.api.dashboardUrl }}
{{- .Values.api.dashboardUrl }}
{{- else if .Values.api.enabled }}
{{- printf "http://%s.%s.svc:%d/dashboard" (include "sm.apiFullname" .) .Release.Namespace (int .Values.api.service.port) }}
{{- end }}
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

{{/* The API loads no model: the CPU image even when the workers run on GPUs (api.image.tag, else
image.tag, else "<appVersion>-cpu"). */}}
{{- define "sm.apiImage" -}}
{{- $tag := .Values.api.image.tag | default .Values.image.tag | default (printf "%s-cpu" .Chart.AppVersion) }}
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
{{- /* Ports and probes, the Services and the ServiceMonitors follow these: the chart sets them. */}}
{{- $owned := dict "SM_WEB_HOST" "a pod listens on 0.0.0.0" "SM_WEB_PORT" "set service.port" "SM_API_HOST" "a pod listens on 0.0.0.0" "SM_API_PORT" "set api.service.port" }}
{{- range $key := keys $owned | sortAlpha }}
{{- if hasKey $.Values.config $key }}
{{- fail (printf "config.%s is the chart's: %s" $key (get $owned $key)) }}
{{- end }}
{{- end }}
{{- end }}

{{/* A ServiceMonitor endpoint: /metrics on the port named http, with the bearer token
(SM_WEB_TOKEN) when one is set; the workers and the API both want it there. */}}
{{- define "sm.metricsEndpoint" -}}
- port: http
  path: /metrics
  interval: {{ .Values.serviceMonitor.interval }}
  scrapeTimeout: {{ .Values.serviceMonitor.scrapeTimeout }}
  {{- if or .Values.webToken .Values.existingSecret }}
  authorization:
    type: Bearer
    credentials:
      name: {{ include "sm.secretName" . }}
      key: SM_WEB_TOKEN
      {{- if .Values.existingSecret }}
      optional: true
      {{- end }}
  {{- end }}
{{- end }}
