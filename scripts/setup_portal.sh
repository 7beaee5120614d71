#!/usr/bin/env bash
# Set-up for the lineage portal (plugins/lineage_portal), idempotent like scripts/setup.sh:
#  1. the browser libraries (cytoscape, cytoscape-dagre, chart.js) from the npm registry, with `npm ci`
#     from the committed package.json + package-lock.json (exact versions, integrity-checked), into the
#     git-ignored $STATE/portal-assets/ - the plugin serves them from there behind Airflow's login;
#  2. Debian's chromium for the headless browser test (tests/e2e/test_portal_browser.py), when missing.
# A stamp (hash of the lock) under $STATE/stamps skips step 1 when nothing changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${STREAMFLOW_STATE_DIR:-$ROOT/.streamflow}"
STAMPS="$STATE/stamps"
SRC="$ROOT/plugins/lineage_portal/vendor"
DEST="$STATE/portal-assets"
mkdir -p "$STAMPS"

log() { printf '[setup-portal] %s\n' "$*"; }
die() { printf '[setup-portal] ERROR: %s\n' "$*" >&2; exit 1; }

# --- system packages: node/npm for the install, chromium for the browser test ------------------
apt_missing=()
command -v npm >/dev/null || apt_missing+=(npm)
[[ -x /usr/bin/chromium ]] || apt_missing+=(chromium)
if ((${#apt_missing[@]})); then
  [[ $(id -u) -eq 0 ]] || die "missing system packages ${apt_missing[*]}: apt-get install ${apt_missing[*]} (or re-run as root)."
  log "installing Debian packages: ${apt_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
  fi
fi

# --- browser libraries from the npm registry -------------------------------------------------------
h="$(cat "$SRC/package.json" "$SRC/package-lock.json" | sha256sum | cut -c1-16)"
if [[ -f "$STAMPS/portal-assets" && "$(cat "$STAMPS/portal-assets")" == "$h" && -d "$DEST/node_modules" ]]; then
  exit 0
fi
log "installing the portal's browser libraries with npm ci (package-lock.json)"
mkdir -p "$DEST"
cp "$SRC/package.json" "$SRC/package-lock.json" "$DEST/"
(cd "$DEST" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) \
  || die "npm ci failed in $DEST: check the npm registry access and plugins/lineage_portal/vendor/package-lock.json."
for f in cytoscape/dist/cytoscape.min.js cytoscape-dagre/dist/cytoscape-dagre.js chart.js/dist/chart.umd.min.js; do
  [[ -f "$DEST/node_modules/$f" ]] || die "$f missing after npm ci: the package layout changed, update plugins/lineage_portal/assets.py."
done
echo "$h" > "$STAMPS/portal-assets"
log "portal assets ready ($DEST)"
