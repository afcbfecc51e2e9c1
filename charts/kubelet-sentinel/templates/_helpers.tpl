{{/* The chart's name. */}}
{{- define "kubelet-sentinel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of every object: the release name when it already contains the chart's. */}}
{{- define "kubelet-sentinel.fullname" -}}
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

{{- define "kubelet-sentinel.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubelet-sentinel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubelet-sentinel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kubelet-sentinel.labels" -}}
helm.sh/chart: {{ include "kubelet-sentinel.chart" . }}
{{ include "kubelet-sentinel.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubelet-sentinel
{{- end }}

{{- define "kubelet-sentinel.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kubelet-sentinel.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kubelet-sentinel.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The policy's YAML text ("" when none): a string as given, an object as YAML. */}}
{{- define "kubelet-sentinel.policy" -}}
{{- if .Values.policy }}
{{- if kindIs "string" .Values.policy }}
{{- .Values.policy }}
{{- else }}
{{- toYaml .Values.policy }}
{{- end }}
{{- end }}
{{- end }}

{{/* The job label every scrape gets: the alert rules and dashboards select it. */}}
{{- define "kubelet-sentinel.jobRelabeling" -}}
- action: replace
  targetLabel: job
  replacement: kubelet-sentinel
{{- end }}

{{/* The monitors' scheme and tlsConfig (metrics.tls). */}}
{{- define "kubelet-sentinel.scrapeTls" -}}
{{- if .Values.metrics.tls.enabled }}
# HTTPS (metrics.tls); the default tlsConfig skips verification: the bearer token is
# what protects the data (see docs/protected-metrics.md).
scheme: https
tlsConfig:
  {{- toYaml (.Values.metrics.tls.scrapeTlsConfig | default (dict "insecureSkipVerify" true)) | nindent 2 }}
{{- else }}
scheme: http
{{- end }}
{{- end }}
