#!/usr/bin/env bash
# A real kube-apiserver + etcd on 127.0.0.1 (no kubelet: objects are validated and stored, nothing
# runs), with the Flink operator / Strimzi / CloudNativePG CRDs installed, for trying the kubernetes
# runtime by hand. `make k8s-api` runs it in the foreground.
#
#   bash scripts/k8s_api.sh               # foreground; Ctrl-C stops it
#   bash scripts/k8s_api.sh --background  # returns once /readyz is OK; prints the kubeconfig
#   bash scripts/k8s_api.sh stop          # stops a background one
#
# Binaries and CRDs are built/fetched once (scripts/build_k8s_binaries.sh, cached per version under
# .streamflow/k8s-bin/); the CA, certificates and kubeconfig are generated per start under
# .streamflow/k8s-api/ (STREAMFLOW_K8S_API_PORT fixes the port, default: a free one).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${STREAMFLOW_STATE_DIR:-$ROOT/.streamflow}"
WORK="$STATE/k8s-api"
PY="${STREAMFLOW_INSTALL_DIR:-$STATE}/venvs/dev/bin/python"
PIDFILE="$WORK.pid"
LOG="$STATE/logs/k8s-api.log"
cd "$ROOT"

[[ -x "$PY" ]] || { echo "[k8s-api] $PY missing: run 'make setup' first" >&2; exit 1; }

stop() {
  if [[ -f "$PIDFILE" ]]; then
    pid="$(cat "$PIDFILE")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"  # the Python supervisor stops kube-apiserver and etcd, then exits
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
      echo "[k8s-api] stopped (pid $pid)"
    fi
    rm -f "$PIDFILE"
  else
    echo "[k8s-api] not running in the background"
  fi
}

# Build/fetch in the foreground of this script (a cold build shows its progress; cached: instant).
build() { bash scripts/build_k8s_binaries.sh >/dev/null && bash scripts/setup_k8s_tools.sh; }

case "${1:-}" in
  stop) stop ;;
  --background|-d)
    build
    if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      echo "[k8s-api] already running (pid $(cat "$PIDFILE")); KUBECONFIG=$WORK/admin.kubeconfig"; exit 0
    fi
    mkdir -p "$(dirname "$LOG")"
    setsid "$PY" -m tests.k8s_testenv "$WORK" >"$LOG" 2>&1 < /dev/null &
    echo $! > "$PIDFILE"
    for _ in $(seq 1 240); do
      if grep -q '^export KUBECONFIG=' "$LOG"; then grep -E '^(kube-apiserver ready|export)' "$LOG"; exit 0; fi
      kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { cat "$LOG" >&2; rm -f "$PIDFILE"; exit 1; }
      sleep 0.5
    done
    echo "[k8s-api] not ready after 120 s; see $LOG" >&2; stop; exit 1 ;;
  "") build; exec "$PY" -m tests.k8s_testenv "$WORK" ;;
  *) echo "usage: $0 [--background|stop]" >&2; exit 2 ;;
esac
