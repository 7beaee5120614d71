#!/usr/bin/env bash
# Entrypoint of the StreamFlow Flink image (kubernetes.entry.path, Flink's default /docker-entrypoint.sh).
#
# Flink's native Kubernetes mode (what the Flink Kubernetes Operator deploys) always starts containers in
# pass-through mode: `/docker-entrypoint.sh bash -c "kubernetes-jobmanager.sh kubernetes-application ..."`
# and the same with kubernetes-taskmanager.sh. The operator mounts the generated configuration at
# $FLINK_HOME/conf, so unlike the official image's entrypoint nothing here rewrites configuration files;
# it only enables jemalloc (RocksDB's memory fragmentation under glibc malloc, as in the official image)
# and runs the command.
set -euo pipefail

if [[ "${DISABLE_JEMALLOC:-false}" != "true" ]]; then
  jemalloc="/usr/lib/$(uname -m)-linux-gnu/libjemalloc.so.2"
  if [[ -f "$jemalloc" ]]; then
    export LD_PRELOAD="${LD_PRELOAD:+$LD_PRELOAD:}$jemalloc"
  else
    echo "WARNING: $jemalloc not found: glibc malloc is used (set DISABLE_JEMALLOC=true to silence this)." >&2
  fi
fi

if [[ $# -eq 0 || "$1" == "help" ]]; then
  cat <<'EOF'
StreamFlow Flink image (Flink 1.20 + PyFlink, Java 17). Run by the Flink Kubernetes Operator in native
Kubernetes mode: the container's arguments are the command to run, e.g.
  bash -c "kubernetes-jobmanager.sh kubernetes-application"
Any other arguments are executed as given (flink, python, java ...).
EOF
  exit 0
fi

exec "$@"
