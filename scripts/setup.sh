#!/usr/bin/env bash
# Idempotent set-up for the local runtime: system packages, one venv per lock, JVM jars from Maven.
# Every step writes a stamp (hash of its inputs) under .streamflow/stamps and is skipped when
# nothing changed, so a warm `make up` / `make test` spends well under a second here.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${STREAMFLOW_STATE_DIR:-$ROOT/.streamflow}"
PYTHON="${STREAMFLOW_PYTHON:-python3.11}"
UV_VERSION="0.13.9"
STAMPS="$STATE/stamps"
mkdir -p "$STAMPS" "$STATE/venvs" "$STATE/jars" "$STATE/logs"

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
fresh() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
stamp() { echo "$2" > "$STAMPS/$1"; }

# --- system packages (Debian) ------------------------------------------------------------------
apt_missing=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || apt_missing+=(postgresql postgresql-contrib)
command -v java >/dev/null || apt_missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || apt_missing+=(maven)
command -v "$PYTHON" >/dev/null || die "$PYTHON not found: StreamFlow needs CPython 3.11 (set STREAMFLOW_PYTHON)."
if ((${#apt_missing[@]})); then
  [[ $(id -u) -eq 0 ]] || die "missing system packages ${apt_missing[*]}: install them (apt-get install ${apt_missing[*]}) or re-run as root."
  log "installing Debian packages: ${apt_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
  # Debian auto-creates and starts a cluster on 5432; StreamFlow runs its own, so stop that one.
  command -v pg_ctlcluster >/dev/null && pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
    pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true; done
fi

# --- uv (pinned) in a tools venv ---------------------------------------------------------------
UV="$STATE/tools/bin/uv"
if ! fresh uv "$UV_VERSION" || [[ ! -x "$UV" ]]; then
  log "installing uv $UV_VERSION"
  "$PYTHON" -m venv "$STATE/tools"
  "$STATE/tools/bin/pip" install -q "uv==$UV_VERSION"
  stamp uv "$UV_VERSION"
fi
export UV_CACHE_DIR="${UV_CACHE_DIR:-$STATE/cache/uv}"
export UV_LINK_MODE=copy

# --- one venv per lock -------------------------------------------------------------------------
# venv name -> lock files installed into it (the same locks images/ install).
declare -A VENV_LOCKS=(
  [airflow]="locks/airflow.txt"
  [dbt]="locks/dbt.txt"
  [flink]="locks/flink.txt locks/flink-test.txt"
  [generator]="locks/generator.txt"
  [dev]="locks/airflow.txt locks/dev.txt"
)
# venvs that import the repo's own packages (streamflow, generator, flink_app) get the repo on sys.path.
declare -A VENV_REPO_PATH=([airflow]=1 [flink]=1 [generator]=1 [dev]=1)

for name in airflow dbt flink generator dev; do
  locks=()
  for l in ${VENV_LOCKS[$name]}; do [[ -f "$ROOT/$l" ]] && locks+=("$ROOT/$l"); done
  h="$(hash_of "${locks[@]}")-$("$PYTHON" -V 2>&1 | tr -d ' ')"
  venv="$STATE/venvs/$name"
  if fresh "venv-$name" "$h" && [[ -x "$venv/bin/python" ]]; then continue; fi
  log "creating venv '$name' from ${locks[*]#$ROOT/} (one-off, ~1 min for the big ones)"
  start=$SECONDS
  "$UV" venv -q --allow-existing --python "$PYTHON" "$venv"
  "$UV" pip sync -q --python "$venv/bin/python" "${locks[@]}" \
    || die "installing venv '$name' failed: see the uv output above; the lock files are in locks/."
  if [[ -n "${VENV_REPO_PATH[$name]:-}" ]]; then
    site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    echo "$ROOT" > "$site/streamflow_repo.pth"
  fi
  stamp "venv-$name" "$h"
  log "venv '$name' ready in $((SECONDS - start)) s"
done

# --- JVM artifacts from Maven Central ----------------------------------------------------------
declare -A POMS=([kafka]="jvm/kafka/pom.xml" [flink]="flink_app/pom.xml")
for name in kafka flink; do
  pom="$ROOT/${POMS[$name]}"
  h="$(hash_of "$pom")"
  out="$STATE/jars/$name"
  if fresh "jars-$name" "$h" && [[ -d "$out" ]]; then continue; fi
  log "resolving $name jars with Maven from ${POMS[$name]}"
  rm -rf "$out"
  mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$out" \
    || die "Maven could not resolve ${POMS[$name]}: check the versions in that pom."
  stamp "jars-$name" "$h"
done
# --- test tooling: kustomize + operator CRD schemas (tests/unit/k8s), portal JS bundle + chromium --
bash "$ROOT/scripts/setup_k8s_tools.sh" || die "installing kustomize/CRDs for tests/unit/k8s failed: see the [k8s-tools] lines above."
bash "$ROOT/scripts/build_k8s_binaries.sh" >/dev/null \
  || die "building etcd/kube-apiserver/kubectl from the Go module proxy failed: see above (docs/adr/0005-kube-apiserver-in-tests.md)"
bash "$ROOT/scripts/setup_portal.sh" || die "installing the lineage portal's JS bundle / chromium failed: see above."
log "environment ready ($STATE)"
