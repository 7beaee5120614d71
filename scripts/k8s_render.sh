#!/usr/bin/env bash
# Renders the Kubernetes overlay (default: k8s/overlays/single-node) with the pinned kustomize, to stdout.
#   bash scripts/k8s_render.sh [overlay-dir] > streamflow.yaml
# Generates the overlay's credentials first if they do not exist yet (generate-secrets.sh; git-ignored).
# The output therefore contains Secrets: do not commit or paste it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${STREAMFLOW_INSTALL_DIR:-${STREAMFLOW_STATE_DIR:-$ROOT/.streamflow}}"   # the installation (settings.install_dir)
OVERLAY="${1:-$ROOT/k8s/overlays/single-node}"

die() { printf '[k8s-render] ERROR: %s\n' "$*" >&2; exit 1; }
[[ -f "$OVERLAY/kustomization.yaml" ]] || die "no kustomization.yaml in $OVERLAY"

bash "$ROOT/scripts/setup_k8s_tools.sh" || die "could not install kustomize (scripts/setup_k8s_tools.sh)"
if [[ -x "$OVERLAY/generate-secrets.sh" ]]; then
  "$OVERLAY/generate-secrets.sh"
fi
exec "$STATE/tools/bin/kustomize" build "$OVERLAY"
