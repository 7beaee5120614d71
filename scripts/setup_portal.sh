#!/usr/bin/env bash
# The lineage portal's browser libraries (cytoscape, cytoscape-dagre, chart.js), needed at RUN time:
# the plugin (plugins/lineage_portal/app.py, VENDOR_FILES) serves them from the git-ignored
# $STATE/portal-assets/node_modules behind Airflow's login. Installed with `npm ci` from the committed
# plugins/lineage_portal/vendor/package.json + package-lock.json (exact versions, integrity-checked).
# Chromium for the browser test is a test-only tool: scripts/setup_test_tools.sh.
#
#   scripts/setup_portal.sh          # install when the lock changed (a stamp holds its hash)
#   scripts/setup_portal.sh --check  # exit 0 when up to date, 1 otherwise (installs nothing)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${STREAMFLOW_INSTALL_DIR:-${STREAMFLOW_STATE_DIR:-$ROOT/.streamflow}}"   # the installation (settings.install_dir)
STAMPS="$STATE/stamps"
SRC="$ROOT/plugins/lineage_portal/vendor"
DEST="$STATE/portal-assets"
APP="$ROOT/plugins/lineage_portal/app.py"

log() { printf '[setup-portal] %s\n' "$*"; }
die() { printf '[setup-portal] ERROR: %s\n' "$*" >&2; exit 1; }

key="$(cat "$SRC/package.json" "$SRC/package-lock.json" | sha256sum | cut -c1-16)"
up_to_date() { [[ -f "$STAMPS/portal-assets" && "$(cat "$STAMPS/portal-assets")" == "$key" && -d "$DEST/node_modules" ]]; }
if [[ "${1:-}" == "--check" ]]; then up_to_date; exit $?; fi
up_to_date && exit 0

command -v npm >/dev/null || die "npm not found: run scripts/preflight.sh --install (Debian package npm)."
mkdir -p "$STAMPS" "$DEST"
log "installing the portal's browser libraries with npm ci (package-lock.json)"
cp "$SRC/package.json" "$SRC/package-lock.json" "$DEST/"
(cd "$DEST" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=http) \
  || die "npm ci failed in $DEST: check the npm registry access and plugins/lineage_portal/vendor/package-lock.json."
# The files the plugin serves: the right-hand side of VENDOR_FILES in plugins/lineage_portal/app.py.
mapfile -t served < <(sed -n 's/^ *"[^"]*": "\([^"]*\/dist\/[^"]*\)",\{0,1\}$/\1/p' "$APP")
((${#served[@]})) || die "found no VENDOR_FILES entries in $APP: update this script's pattern."
for f in "${served[@]}"; do
  [[ -f "$DEST/node_modules/$f" ]] \
    || die "$f missing after npm ci: the package layout changed; update VENDOR_FILES in plugins/lineage_portal/app.py."
done
echo "$key" > "$STAMPS/portal-assets"
log "portal assets ready ($DEST: ${served[*]})"
