#!/usr/bin/env bash
# Checks every prerequisite of StreamFlow's set-up at once and prints, for each missing one, the
# exact command that installs it. Why one script: a new user should see the whole list before the
# first download, not one failure per `make up`.
#
#   scripts/preflight.sh            # what the local stack (`make up`) needs
#   scripts/preflight.sh --test     # plus what the test set-up (`make test`) needs: Go, unzip, chromium
#   scripts/preflight.sh --install  # also install the Debian packages (as root, or through sudo)
#   scripts/preflight.sh --brief    # one line when everything is there (used by scripts/setup.sh)
#
# Runs as root or as a normal user: only `apt-get` needs root, and it goes through sudo when the user
# is not root. Exit code: 0 all there, 1 something missing, 2 unsupported system (macOS...).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${STREAMFLOW_INSTALL_DIR:-${STREAMFLOW_STATE_DIR:-$ROOT/.streamflow}}"   # the installation (settings.install_dir)
UV_VERSION="0.13.9"   # keep in step with scripts/setup.sh
GO_MIN="1.26"         # k8s.io/kubernetes v1.36 (scripts/build_k8s_binaries.sh) needs Go 1.26
GO_TOOLCHAIN="go1.26.8"

test_mode=0; install=0; brief=0
for arg in "$@"; do
  case "$arg" in
    --test) test_mode=1 ;;
    --install) install=1 ;;
    --brief) brief=1 ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "preflight: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf '[preflight] %s\n' "$*"; }

# --- the system --------------------------------------------------------------------------------
kernel="$(uname -s)"
if [[ "$kernel" == "Darwin" ]]; then
  say "macOS is not supported. StreamFlow's local runtime runs PostgreSQL, Kafka, Flink and Airflow"
  say "as Linux processes from Debian packages (apt, /usr/lib/postgresql). Use a Debian 12 or"
  say "Ubuntu 24.04 machine or VM (for example: multipass launch 24.04, or a Debian VM in UTM)."
  exit 2
fi
if [[ "$kernel" != "Linux" ]]; then
  say "$kernel is not supported: StreamFlow runs on Debian or Ubuntu Linux."
  exit 2
fi
has_apt=0; command -v apt-get >/dev/null && has_apt=1
distro="$( (. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-Linux}") || echo Linux)"
if [[ $(id -u) -eq 0 ]]; then SUDO=""; who="root"
elif command -v sudo >/dev/null; then SUDO="sudo "; who="$(id -un), packages through sudo"
else SUDO=""; who="$(id -un), no sudo: run the apt-get commands below as root"
fi

ok_lines=(); missing_lines=(); apt_pkgs=(); manual=()
ok() { ok_lines+=("$(printf '  ok       %-22s %s' "$1" "$2")"); }
# missing WHAT APT_PACKAGES [MANUAL_COMMAND]: APT_PACKAGES may be empty when apt cannot provide it.
missing() {
  local what="$1" pkgs="$2" manual_cmd="${3:-}" fix
  if [[ -n "$pkgs" && $has_apt -eq 1 ]]; then
    # shellcheck disable=SC2206
    apt_pkgs+=($pkgs)
    fix="${SUDO}apt-get install -y --no-install-recommends $pkgs"
  else
    fix="$manual_cmd"
    [[ -n "$manual_cmd" ]] && manual+=("$what: $manual_cmd")
  fi
  missing_lines+=("$(printf '  MISSING  %-22s %s' "$what" "$fix")")
}
version_ge() { [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]; }

# --- Python 3.11 (venvs) and a Python able to make the tools venv that holds uv ------------------------
py311="${STREAMFLOW_PYTHON:-python3.11}"
if command -v "$py311" >/dev/null && [[ "$("$py311" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" == "3.11" ]]; then
  ok "python 3.11" "$(command -v "$py311") ($("$py311" -V 2>&1))"
  boot_py="$py311"
else
  boot_py="$(command -v python3 || true)"
  if [[ -s "$STATE/tools/python-path" && -x "$(cat "$STATE/tools/python-path")" ]]; then
    ok "python 3.11" "$(cat "$STATE/tools/python-path") (installed by uv)"
  else
    ok "python 3.11" "not on this system: the set-up installs it with uv (uv python install 3.11)"
  fi
fi
# The pinned uv lives in a venv under the state dir: creating it needs Python's venv module with pip.
if [[ -x "$STATE/tools/bin/uv" ]]; then
  ok "uv $UV_VERSION" "$STATE/tools/bin/uv"
elif [[ -z "$boot_py" ]]; then
  missing "python3 + venv" "python3 python3-venv" "install Python 3 with its venv module"
else
  probe="$(mktemp -d)"
  if "$boot_py" -m venv "$probe/v" >/dev/null 2>&1 && [[ -x "$probe/v/bin/pip" ]]; then
    ok "python venv + pip" "$boot_py (makes the tools venv for uv $UV_VERSION)"
  else
    pyver="$("$boot_py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)"
    missing "python venv module" "python${pyver}-venv" "install the venv module of $boot_py"
  fi
  rm -rf "$probe"
fi

# --- Java 17, Maven, PostgreSQL, npm -------------------------------------------------------------
if command -v java >/dev/null; then
  jv="$(java -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\)[."].*/\1/p' | head -n1)"
  if [[ -n "$jv" && "$jv" -ge 17 ]]; then ok "java 17" "$(java -version 2>&1 | head -n1)"
  else missing "java 17 (found ${jv:-?})" "openjdk-17-jdk-headless" "install OpenJDK 17 and put it first on PATH"; fi
else
  missing "java 17" "openjdk-17-jdk-headless" "install OpenJDK 17 (the JDK: javac compiles the jobs' Java functions)"
fi
if command -v javac >/dev/null; then ok "javac" "$(javac -version 2>&1 | head -n1) (compiles jvm/flink-functions)"
else missing "javac (a JDK 17)" "openjdk-17-jdk-headless" "install the OpenJDK 17 JDK (the jobs' Java functions are compiled)"; fi
if command -v mvn >/dev/null; then ok "maven" "$(command -v mvn)"
else missing "maven (mvn)" "maven" "install Apache Maven 3.8+"; fi
pg="$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -n1)"
if [[ -n "$pg" ]]; then ok "postgresql server" "$pg"
else missing "postgresql server" "postgresql" "install PostgreSQL 15+ server binaries under /usr/lib/postgresql/<major>/bin"; fi
if command -v npm >/dev/null; then ok "npm" "$(command -v npm) (the lineage portal's browser libraries)"
else missing "npm" "npm" "install Node.js with npm"; fi

# --- test set-up only ---------------------------------------------------------------------------
if ((test_mode)); then
  if command -v unzip >/dev/null; then ok "unzip" "$(command -v unzip)"; else missing "unzip" "unzip" "install unzip"; fi
  if [[ -x /usr/bin/chromium ]]; then ok "chromium" "/usr/bin/chromium (browser test)"
  else missing "chromium" "chromium" "install Chromium as /usr/bin/chromium"; fi
  go_fix="Go >= $GO_MIN is in no Debian/Ubuntu release: install the official toolchain into /usr/local/go
                                  (${SUDO}rm -rf /usr/local/go && curl -fsSL https://go.dev/dl/${GO_TOOLCHAIN}.linux-amd64.tar.gz | ${SUDO}tar -C /usr/local -xz)
                                  and add /usr/local/go/bin to PATH"
  if command -v go >/dev/null; then
    gv="$(go env GOVERSION 2>/dev/null | sed 's/^go//')"
    if [[ -n "$gv" ]] && version_ge "$gv" "$GO_MIN"; then ok "go >= $GO_MIN" "$(command -v go) (go$gv)"
    elif [[ -n "$gv" ]] && version_ge "$gv" "1.21"; then
      ok "go >= $GO_MIN" "go$gv on PATH: the test set-up runs it with GOTOOLCHAIN=$GO_TOOLCHAIN (fetched as a Go module)"
    else missing "go >= $GO_MIN (found go${gv:-?})" "" "$go_fix"; fi
  else
    missing "go >= $GO_MIN" "" "$go_fix"
  fi
fi

# --- room to work -------------------------------------------------------------------------------
mkdir -p "$STATE" 2>/dev/null || true
free_gb="$(df -Pk "$STATE" 2>/dev/null | awk 'NR==2 {print int($4/1048576)}')"
# Measured (2026-12-03): a fresh clone peaks at 6.4 GB during a whole `make test` (venvs 2.1 GB, package
# caches 2.3 GB, Kafka/PostgreSQL/Flink data; Flink's temp files live there too); `make up` alone needs
# less. 8 GB covers that with room, before or after the set-up.
need_gb=8
if [[ -n "$free_gb" && "$free_gb" -lt "$need_gb" ]]; then
  missing "disk space (${free_gb} GB free)" "" "free at least ${need_gb} GB under $STATE (measured: ~6 GB after a whole make test; venvs, caches, Kafka/PostgreSQL/Flink data)"
else ok "disk space" "${free_gb:-?} GB free under $STATE"; fi

# --- report -------------------------------------------------------------------------------------
if ((${#missing_lines[@]} == 0)); then
  if ((brief)); then say "all prerequisites found ($distro, $who)"; else
    say "prerequisites for the $( ((test_mode)) && echo "local stack and the tests" || echo "local stack") on $distro ($who):"
    printf '%s\n' "${ok_lines[@]}"
    say "all found."
  fi
  exit 0
fi

say "prerequisites on $distro ($who):"
((brief)) || printf '%s\n' "${ok_lines[@]}"
printf '%s\n' "${missing_lines[@]}"
if ((has_apt == 0)); then
  say "no apt-get here: StreamFlow supports Debian 12+ and Ubuntu 22.04+; install the items above by hand."
elif ((${#apt_pkgs[@]})); then
  say "all Debian packages in one command:"
  printf '    %sapt-get update && %sapt-get install -y --no-install-recommends %s\n' "$SUDO" "$SUDO" "${apt_pkgs[*]}"
fi

if ((install)) && ((${#apt_pkgs[@]})) && ((has_apt)); then
  # shellcheck source=scripts/lib/steps.sh
  source "$ROOT/scripts/lib/steps.sh"
  say "installing: ${apt_pkgs[*]}"
  apt_install "${apt_pkgs[@]}" || { say "apt-get failed: run the command above yourself"; exit 1; }
  # Debian starts a cluster on 5432 when it installs postgresql; StreamFlow runs its own server.
  if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
      as_root pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true
    done
  fi
  again=(); ((test_mode)) && again+=(--test)
  exec "${BASH_SOURCE[0]}" --brief "${again[@]}"
fi
exit 1
