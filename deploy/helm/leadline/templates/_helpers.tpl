{{/* Labels every object carries. */}}
{{- define "leadline.labels" -}}
app.kubernetes.io/part-of: leadline
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The three services: name, values key, port, and the Kafka topic and consumer group KEDA watches. */}}
{{- define "leadline.services" -}}
collector: {key: collector, port: 8080, hostVar: LEADLINE_COLLECTOR_HOST, portVar: LEADLINE_COLLECTOR_PORT}
enricher: {key: enricher, port: 8082, hostVar: LEADLINE_ENRICHER_HOST, portVar: LEADLINE_ENRICHER_PORT, topic: capture.raw.v1, group: leadline-enricher, groupVar: LEADLINE_ENRICHER_GROUP}
crm-core: {key: crmCore, port: 8081, hostVar: LEADLINE_CRM_HOST, portVar: LEADLINE_CRM_PORT, topic: capture.enriched.v1, group: leadline-crm-core, groupVar: LEADLINE_CRM_GROUP}
{{- end }}

{{- define "leadline.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Whether a pre-install/pre-upgrade Job migrates (else the services migrate at start). */}}
{{- define "leadline.migrateOnStart" -}}
{{- if and .Values.migrations.enabled (not .Values.postgresql.cnpg.enabled) }}false{{ else }}true{{ end }}
{{- end }}

{{/* The Secret and key holding a DSN: CloudNativePG's app Secret when the chart makes the database. */}}
{{- define "leadline.dsnRef" -}}
{{- $root := index . 0 }}{{ $key := index . 1 }}
{{- if $root.Values.postgresql.cnpg.enabled }}
name: leadline-db-app
key: uri
{{- else }}
name: {{ $root.Values.secrets.name }}
key: {{ $key }}
{{- end }}
{{- end }}

{{/* Pod-level security: the image's user 10001, never root, the runtime's seccomp profile ("restricted"). */}}
{{- define "leadline.podSecurity" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "leadline.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* Spread a service's pods over nodes, and over zones when asked. */}}
{{- define "leadline.spread" -}}
{{- $root := index . 0 }}{{ $name := index . 1 }}
- maxSkew: 1
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      app.kubernetes.io/name: leadline-{{ $name }}
{{- if $root.Values.topologySpread.zones }}
- maxSkew: 1
  topologyKey: topology.kubernetes.io/zone
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      app.kubernetes.io/name: leadline-{{ $name }}
{{- end }}
{{- end }}
