{{/* Labels every object of the release carries. */}}
{{- define "projections.labels" -}}
app.kubernetes.io/part-of: projections
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The S3 endpoint the pods use: the configured one, else the chart's MinIO in this namespace. */}}
{{- define "projections.s3Endpoint" -}}
{{- .Values.store.endpoint | default (printf "http://minio.%s.svc:9000" .Release.Namespace) -}}
{{- end -}}

{{/* The bucket of a store URL (s3://bucket[/prefix]). */}}
{{- define "projections.storeBucket" -}}
{{- (split "/" (trimPrefix "s3://" .Values.store.url))._0 -}}
{{- end -}}
