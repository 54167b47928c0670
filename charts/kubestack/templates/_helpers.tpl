{{- define "kubestack.name" -}}kubestack{{- end -}}
{{- define "kubestack.labels" -}}
app.kubernetes.io/name: kubestack
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- define "kubestack.selector" -}}
app.kubernetes.io/name: kubestack
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
