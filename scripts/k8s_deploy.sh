#!/usr/bin/env bash
# Deploys StreamFlow to the cluster of the current kubectl context (walk-through: k8s/README.md):
#   1. namespaces (with their Pod Security labels) from the rendered overlay;
#   2. the three operators with Helm (Strimzi, CloudNativePG, Flink Kubernetes Operator) into
#      streamflow-system, at the versions pinned in k8s/versions.env, values from k8s/helm/;
#   3. the overlay (Kafka, topics, PostgreSQL, secrets, RBAC, NetworkPolicies...), except the
#      FlinkDeployments, which bootstrap_pipeline applies; then waits for Kafka and PostgreSQL;
#   4. Airflow with the official chart (k8s/helm/airflow-values.yaml) into streamflow-airflow.
# Idempotent (helm upgrade --install, kubectl apply). Needs kubectl, helm >= 3.8 and a reachable cluster
# whose nodes can pull or already hold the streamflow/* images (make images; see the README).
#   OVERLAY=k8s/overlays/single-node  HELM_TIMEOUT=15m  bash scripts/k8s_deploy.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OVERLAY="${OVERLAY:-$ROOT/k8s/overlays/single-node}"
HELM_TIMEOUT="${HELM_TIMEOUT:-15m}"
# shellcheck source=/dev/null
source "$ROOT/k8s/versions.env"

log() { printf '[k8s-deploy] %s\n' "$*" >&2; }
die() { printf '[k8s-deploy] ERROR: %s\n' "$*" >&2; exit 1; }

# --- preconditions, each with the fix in the message ------------------------------------------------
command -v kubectl >/dev/null 2>&1 || die "kubectl not found. Install it (k3s ships one: 'sudo k3s kubectl', or symlink /usr/local/bin/kubectl) and point it at the cluster (KUBECONFIG=/etc/rancher/k3s/k3s.yaml)."
command -v helm >/dev/null 2>&1 || die "helm not found. Install Helm 3 (https://helm.sh/docs/intro/install/), then re-run make k8s-deploy."
kubectl version --request-timeout=10s >/dev/null 2>&1 \
  || die "no cluster answers for kubectl context '$(kubectl config current-context 2>/dev/null || echo '<none>')'. Check KUBECONFIG (k3s: export KUBECONFIG=/etc/rancher/k3s/k3s.yaml) and that the API server is up (kubectl get nodes)."

rendered="$(mktemp)"; without_jobs="$(mktemp)"; namespaces="$(mktemp)"
trap 'rm -f "$rendered" "$without_jobs" "$namespaces"' EXIT
bash "$ROOT/scripts/k8s_render.sh" "$OVERLAY" > "$rendered" || die "rendering $OVERLAY failed"

# Split the rendered stream: namespaces alone, and everything except the FlinkDeployments.
awk -v ns="$namespaces" -v rest="$without_jobs" '
  function flush() { if (doc != "") { if (kind == "Namespace") printf "%s---\n", doc > ns;
                                      if (kind != "FlinkDeployment") printf "%s---\n", doc > rest } doc = ""; kind = "" }
  /^---$/ { flush(); next }
  /^kind: / { kind = $2 }
  { doc = doc $0 "\n" }
  END { flush() }' "$rendered"

log "1/4 namespaces"
kubectl apply -f "$namespaces"

log "2/4 operators (Helm) in streamflow-system"
helm upgrade --install strimzi oci://quay.io/strimzi-helm/strimzi-kafka-operator \
  --version "$STRIMZI_VERSION" --namespace streamflow-system \
  -f "$ROOT/k8s/helm/strimzi-values.yaml" --wait --timeout "$HELM_TIMEOUT"
helm upgrade --install cnpg cloudnative-pg --repo https://cloudnative-pg.github.io/charts \
  --version "$CNPG_CHART_VERSION" --namespace streamflow-system \
  -f "$ROOT/k8s/helm/cnpg-values.yaml" --wait --timeout "$HELM_TIMEOUT"
helm upgrade --install flink-operator flink-kubernetes-operator \
  --repo "https://archive.apache.org/dist/flink/flink-kubernetes-operator-${FLINK_OPERATOR_VERSION}/" \
  --version "$FLINK_OPERATOR_VERSION" --namespace streamflow-system \
  -f "$ROOT/k8s/helm/flink-operator-values.yaml" --wait --timeout "$HELM_TIMEOUT"
for crd in kafkas.kafka.strimzi.io kafkanodepools.kafka.strimzi.io kafkatopics.kafka.strimzi.io \
           clusters.postgresql.cnpg.io databases.postgresql.cnpg.io flinkdeployments.flink.apache.org; do
  kubectl wait --for=condition=Established "crd/$crd" --timeout=120s >/dev/null
done

log "3/4 overlay $(basename "$OVERLAY") (FlinkDeployments are left to bootstrap_pipeline)"
kubectl apply --server-side --field-manager=streamflow -f "$without_jobs"
log "waiting for Kafka (streamflow-kafka/streamflow) and PostgreSQL (streamflow-data/streamflow-warehouse)"
kubectl -n streamflow-kafka wait kafka/streamflow --for=condition=Ready --timeout=15m
kubectl -n streamflow-data wait cluster.postgresql.cnpg.io/streamflow-warehouse --for=condition=Ready --timeout=15m
kubectl -n streamflow-data wait database.postgresql.cnpg.io/airflow --for=jsonpath='{.status.applied}'=true --timeout=5m

log "4/4 Airflow (official chart $AIRFLOW_CHART_VERSION) in streamflow-airflow"
helm upgrade --install airflow airflow --repo https://airflow.apache.org \
  --version "$AIRFLOW_CHART_VERSION" --namespace streamflow-airflow \
  -f "$ROOT/k8s/helm/airflow-values.yaml" --wait --timeout "$HELM_TIMEOUT"

cat >&2 <<MSG
[k8s-deploy] done. Next (k8s/README.md, "Run bootstrap_pipeline"):
  kubectl -n streamflow-airflow port-forward svc/airflow-api-server 8080:8080
  kubectl -n streamflow-airflow exec deploy/airflow-api-server -- cat /opt/airflow/simple_auth_manager_passwords.json.generated
  kubectl -n streamflow-airflow exec deploy/airflow-api-server -- airflow dags trigger bootstrap_pipeline
MSG
