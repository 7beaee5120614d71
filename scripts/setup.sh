#!/usr/bin/env bash
# Idempotent set-up of what the LOCAL STACK needs (`make up`): prerequisites, uv, one venv per lock,
# JVM jars from Maven, the lineage portal's browser libraries, the dbt manifest. What only the tests
# need (the dev venv, Kubernetes tools, chromium, actionlint) is scripts/setup_test_tools.sh, which
# `make test` runs: a new user reaches a populated gold layer without compiling Kubernetes.
#
# Every step writes a stamp (hash of its inputs) under $STATE/stamps and is skipped when nothing
# changed, so a warm `make up` spends a few seconds here. Steps are numbered, say how long they are
# expected to take, and show a heartbeat while they run (scripts/lib/steps.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${STREAMFLOW_INSTALL_DIR:-${STREAMFLOW_STATE_DIR:-$ROOT/.streamflow}}"   # the installation (settings.install_dir)
UV_VERSION="0.13.9"
STAMPS="$STATE/stamps"
mkdir -p "$STAMPS" "$STATE/venvs" "$STATE/jars" "$STATE/logs" "$STATE/tools"
# shellcheck source=scripts/lib/steps.sh
source "$ROOT/scripts/lib/steps.sh"

# venv name -> lock files installed into it (the same locks images/ install). The dev venv (pytest,
# ruff, mypy, playwright) is built by scripts/setup_test_tools.sh.
STACK_VENVS=(airflow dbt flink generator)
declare -A VENV_LOCKS=(
  [airflow]="locks/airflow.txt"
  [dbt]="locks/dbt.txt"
  [flink]="locks/flink.txt locks/flink-test.txt"
  [generator]="locks/generator.txt"
)
# Expected cold durations on a 2-core machine with empty caches (bench/results/make_up.json).
declare -A VENV_EXPECTED=([airflow]=45 [dbt]=15 [flink]=120 [generator]=10)
# venvs that import the repo's own packages (streamflow, generator, flink_app) get the repo on sys.path.
declare -A VENV_REPO_PATH=([airflow]=1 [flink]=1 [generator]=1 [dbt]=0)
declare -A POMS=([kafka]="jvm/kafka/pom.xml" [flink]="flink_app/pom.xml")

UV="$STATE/tools/bin/uv"
export UV_CACHE_DIR="${UV_CACHE_DIR:-$STATE/cache/uv}"
export UV_LINK_MODE=copy
export UV_NO_PROGRESS=1  # progress bars are for terminals; the step log gets one line per package
export UV_PYTHON_INSTALL_DIR="${UV_PYTHON_INSTALL_DIR:-$STATE/tools/python}"  # only used without python3.11

lock_paths() { local l; for l in ${VENV_LOCKS[$1]}; do [[ -f "$ROOT/$l" ]] && echo "$ROOT/$l"; done; }

steps_init setup $((6 + ${#STACK_VENVS[@]} + ${#POMS[@]}))

# --- 1. prerequisites (and Debian packages, as root or through sudo) -----------------------------------
next_step
printf '%s prerequisites (scripts/preflight.sh)\n' "$STEP_TAG"
bash "$ROOT/scripts/preflight.sh" --install --brief \
  || die "prerequisites missing (listed above): install them, then run 'make up' again."

# --- 2. uv (pinned) in a tools venv; Python 3.11 through uv when the system has none ------------------
install_uv() {
  local boot
  boot="$(command -v python3.11 || command -v python3)"
  "$boot" -m venv "$STATE/tools"
  "$STATE/tools/bin/pip" install --progress-bar off "uv==$UV_VERSION"
}
install_python() {
  "$UV" python install 3.11
  "$UV" python find 3.11 > "$STATE/tools/python-path"
}
if fresh uv "$UV_VERSION" && [[ -x "$UV" ]]; then step_fresh "uv $UV_VERSION"
else
  step_run "uv $UV_VERSION" 20 install_uv || die "installing uv $UV_VERSION from PyPI failed (log above)."
  stamp uv "$UV_VERSION"
fi
if [[ -n "${STREAMFLOW_PYTHON:-}" ]] || command -v python3.11 >/dev/null || [[ -x "$(resolved_python)" ]]; then
  step_fresh "python 3.11 ($(resolved_python))"
else
  step_run "python 3.11 through uv" 20 install_python \
    || die "uv could not install Python 3.11 (log above): install python3.11 from your distribution, or set STREAMFLOW_PYTHON to a 3.11 interpreter."
fi

# --- 3. network-bound steps start now and run alongside the venvs -------------------------------------
resolve_jars() {  # pom out
  rm -rf "$2"
  mvn -B -Dstyle.color=never -f "$1" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$2"
}
declare -A JAR_KEY=()
for name in kafka flink; do
  JAR_KEY[$name]="$(hash_of "$ROOT/${POMS[$name]}")"
  if ! { fresh "jars-$name" "${JAR_KEY[$name]}" && [[ -d "$STATE/jars/$name" ]]; }; then
    step_bg_start "jars-$name" "jars '$name' (Maven)" resolve_jars "$ROOT/${POMS[$name]}" "$STATE/jars/$name"
  fi
done
portal_fresh=0
bash "$ROOT/scripts/setup_portal.sh" --check && portal_fresh=1
((portal_fresh)) || step_bg_start portal "portal browser libraries (npm ci)" bash "$ROOT/scripts/setup_portal.sh"

# --- 4. one venv per lock -----------------------------------------------------------------------------
for name in "${STACK_VENVS[@]}"; do
  mapfile -t locks < <(lock_paths "$name")
  key="$(venv_key "${locks[@]}")"
  if fresh "venv-$name" "$key" && [[ -x "$STATE/venvs/$name/bin/python" ]]; then step_fresh "venv '$name'"; continue; fi
  step_run "venv '$name'" "${VENV_EXPECTED[$name]}" build_venv "$name" "${VENV_REPO_PATH[$name]}" "${locks[@]}" \
    || die "installing venv '$name' failed: see the uv output above; the lock files are in locks/."
  stamp "venv-$name" "$key"
done

# --- 5. JVM artifacts from Maven Central, the lineage portal's browser libraries (run time) -------------
for name in kafka flink; do
  if [[ -z "${_BG_PID[jars-$name]:-}" ]]; then step_fresh "jars '$name'"; continue; fi
  step_bg_wait "jars-$name" 40 || die "Maven could not resolve ${POMS[$name]}: check the versions in that pom (log above)."
  stamp "jars-$name" "${JAR_KEY[$name]}"
done
# the jobs' Java functions (the fast path of the three jobs), compiled against the flink venv's own Flink
functions_jar="$STATE/jars/functions/streamflow-flink-functions.jar"   # settings.flink_functions_jar
build_functions() {
  local home
  home="$(find "$STATE/venvs/flink/lib" -maxdepth 3 -type d -path '*/site-packages/pyflink' | head -n1)"
  rm -f "$functions_jar"
  bash "$ROOT/scripts/build_flink_functions.sh" "$home" "$functions_jar"
}
key="$(cd "$ROOT" && find jvm/flink-functions -type f -name '*.java' | LC_ALL=C sort | xargs cat | sha256sum \
  | cut -c1-16)-$(cat "$STAMPS/venv-flink" 2>/dev/null)"
if fresh flink-functions "$key" && [[ -f "$functions_jar" ]]; then step_fresh "the jobs' Java functions"
else
  step_run "the jobs' Java functions (javac, jvm/flink-functions)" 5 build_functions \
    || die "compiling jvm/flink-functions failed (log above): a JDK 17 (javac) is needed; fix the Java source."
  stamp flink-functions "$key"
fi
if ((portal_fresh)); then step_fresh "portal browser libraries"
else step_bg_wait portal 15 || die "installing the lineage portal's browser libraries failed (log above)."; fi

# --- 6. the dbt manifest the DAGs render from (re-parsed when a file of the dbt project changed) ----
manifest="${STREAMFLOW_DBT_ARTIFACTS_DIR:-${STREAMFLOW_STATE_DIR:-$ROOT/.streamflow}/dbt}/target/manifest.json"  # settings.dbt_target_dir
key="$(cd "$ROOT" && find dbt \( -path dbt/target -o -path dbt/logs -o -path dbt/dbt_packages \) -prune -o -type f -print \
  | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16)-$(cat "$STAMPS/venv-dbt" 2>/dev/null)"
if fresh dbt-manifest "$key" && [[ -f "$manifest" ]]; then step_fresh "dbt manifest"
else
  step_run "dbt manifest (dbt parse)" 20 "$ROOT/bin/streamflow" prepare \
    || die "dbt parse failed (log above): fix the dbt project, then run 'make up' again."
  stamp dbt-manifest "$key"
fi
say "local stack environment ready in ${SECONDS} s ($STATE)"
