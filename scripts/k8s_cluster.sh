#!/usr/bin/env bash
# A real single-node Kubernetes on this machine, from processes (issue 15 step B; no Docker, no kind,
# no registry): etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd (runc,
# cgroupfs), kubelet, kube-proxy (iptables), the CNI bridge + host-local plugins and CoreDNS.
# Pods get 198.18.0.0/24 on the bridge sfk8s0 (node address 198.18.0.1), Services 198.19.0.0/24.
# Everything lives under one state dir; `down` removes every process, mount, bridge and iptables rule.
#
#   bash scripts/k8s_cluster.sh up       # returns once the node is Ready and CoreDNS answers;
#                                        # imports our images (docker-archives) into containerd k8s.io
#   bash scripts/k8s_cluster.sh status   # components, node, pods
#   bash scripts/k8s_cluster.sh down     # stops everything and cleans the host
#
# Needs root (bridge, iptables, mounts, cgroups) and the binaries of scripts/build_k8s_binaries.sh
# (+ `node`); Debian's containerd/runc/crun/containernetworking-plugins are installed when missing.
# STREAMFLOW_K8S_CLUSTER_DIR: the state dir (default <STREAMFLOW_STATE_DIR>/k8s-cluster);
# STREAMFLOW_K8S_OCI_RUNTIME=runc|crun (default runc: crun 1.8 refuses this VM's hybrid cgroups);
# STREAMFLOW_K8S_IMAGES="flink generator": which archives `up` imports (default: airflow flink generator
# flink-operator, those found under <install>/k8s-images/archives).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${STREAMFLOW_STATE_DIR:-$ROOT/.streamflow}"
INSTALL="${STREAMFLOW_INSTALL_DIR:-$STATE}"
CLUSTER_DIR="${STREAMFLOW_K8S_CLUSTER_DIR:-$STATE/k8s-cluster}"
PY="$INSTALL/venvs/dev/bin/python"
# shellcheck source=/dev/null
source "$ROOT/k8s/versions.env"
ARCHIVES="$INSTALL/k8s-images/archives"
cd "$ROOT"

[[ -x "$PY" ]] || { echo "[k8s-cluster] $PY missing: run 'make setup' first" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "[k8s-cluster] needs root (bridge, iptables, mounts, cgroups)" >&2; exit 1; }

case "${1:-}" in
  up)
    started=$(date +%s.%N)
    bash scripts/build_k8s_binaries.sh >/dev/null   # cached: instant
    images=()
    for name in ${STREAMFLOW_K8S_IMAGES:-airflow flink generator flink-operator}; do
      tag="$STREAMFLOW_IMAGE_TAG"; [[ $name == flink-operator ]] && tag="$FLINK_OPERATOR_VERSION"
      archive="$ARCHIVES/$name-$tag.tar"
      if [[ -f "$archive" ]]; then images+=("$archive")
      else echo "[k8s-cluster] no $archive (scripts/k8s_images.sh / tests/k8s_cluster_env.py"\
                " ensure_operator_image_archive build it); not imported" >&2; fi
    done
    "$PY" -m tests.k8s_cluster_env up "$CLUSTER_DIR" "${images[@]}"
    printf '[k8s-cluster] up in %.1f s; export KUBECONFIG=%s\n' \
      "$(echo "$(date +%s.%N) - $started" | bc)" "$CLUSTER_DIR/admin.kubeconfig" ;;
  down) exec "$PY" -m tests.k8s_cluster_env down "$CLUSTER_DIR" ;;
  status) exec "$PY" -m tests.k8s_cluster_env status "$CLUSTER_DIR" ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
