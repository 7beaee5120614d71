#!/usr/bin/env bash
# Builds the three StreamFlow images from images/*/Dockerfile (context: the repository root), tagged
# streamflow/<name>:<STREAMFLOW_IMAGE_TAG from k8s/versions.env>.
#   bash scripts/build_images.sh [airflow|flink|generator ...]     (default: all three)
#   STREAMFLOW_IMAGES_IMPORT_K3S=1 ...   also import them into a local k3s (k3s ctr images import)
# Exit codes: 0 built, 1 a build failed, 2 no usable Docker engine here (nothing built).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=/dev/null
source "$ROOT/k8s/versions.env"
TAG="${STREAMFLOW_IMAGE_TAG:?}"
IMAGES=("$@")
((${#IMAGES[@]})) || IMAGES=(airflow flink generator)

log() { printf '[images] %s\n' "$*" >&2; }

if ! command -v docker >/dev/null 2>&1; then
  log "no 'docker' command on this machine: the images cannot be built here."
  log "Build them where a Docker engine runs (make images), or with any OCI builder using the same"
  log "Dockerfiles and the repository root as context, e.g.:"
  for name in "${IMAGES[@]}"; do log "  docker build -f images/$name/Dockerfile -t streamflow/$name:$TAG ."; done
  exit 2
fi
if ! docker info >/dev/null 2>&1; then
  log "the docker CLI is installed but no Docker engine answers (docker info failed): nothing built."
  log "Start the engine (or point DOCKER_HOST at one) and re-run make images."
  exit 2
fi

for name in "${IMAGES[@]}"; do
  [[ -f "$ROOT/images/$name/Dockerfile" ]] || { log "unknown image '$name' (images/$name/Dockerfile)"; exit 1; }
  log "building streamflow/$name:$TAG"
  start=$SECONDS
  DOCKER_BUILDKIT=1 docker build -f "$ROOT/images/$name/Dockerfile" -t "streamflow/$name:$TAG" "$ROOT" \
    || { log "building streamflow/$name:$TAG failed"; exit 1; }
  log "streamflow/$name:$TAG built in $((SECONDS - start)) s"
  if [[ "${STREAMFLOW_IMAGES_IMPORT_K3S:-0}" == 1 ]]; then
    log "importing streamflow/$name:$TAG into k3s (containerd)"
    docker save "streamflow/$name:$TAG" | sudo k3s ctr images import - >&2
  fi
done
