#!/usr/bin/env bash
# Idempotent set-up of what only the TESTS need (`make test` runs it; `make up` does not):
#   - the dev venv (pytest, hypothesis, ruff, mypy, playwright on top of the Airflow lock);
#   - kustomize + the operators' CRD schemas (scripts/setup_k8s_tools.sh, tests/unit/k8s);
#   - etcd, kube-apiserver, kubectl compiled from the Go module proxy (scripts/build_k8s_binaries.sh,
#     tests/integration/k8s_api; ~11 min cold on 2 cores, cached under $STATE/k8s-bin);
#   - chromium (Debian) for the portal's browser test: installed by the preflight below;
#   - actionlint, built from the Go module proxy, which checks .github/workflows/ (tests/unit/cli).
# Expects scripts/setup.sh to have run (uv, the interpreter); the Makefile orders them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${STREAMFLOW_INSTALL_DIR:-${STREAMFLOW_STATE_DIR:-$ROOT/.streamflow}}"   # the installation (settings.install_dir)
STAMPS="$STATE/stamps"
BIN="$STATE/tools/bin"
UV="$BIN/uv"
ACTIONLINT_VERSION="v1.7.12"  # served by the Go module proxy, builds with Go 1.26
GO_MIN="1.26"
GO_TOOLCHAIN="go1.26.8"
mkdir -p "$STAMPS" "$BIN" "$STATE/venvs"
# shellcheck source=scripts/lib/steps.sh
source "$ROOT/scripts/lib/steps.sh"
export UV_CACHE_DIR="${UV_CACHE_DIR:-$STATE/cache/uv}"
export UV_LINK_MODE=copy
export UV_NO_PROGRESS=1

[[ -x "$UV" ]] || die "uv missing at $UV: run scripts/setup.sh first (make setup-test does)."
steps_init setup-test 5

# --- 1. prerequisites of the tests (Go, unzip, chromium) ------------------------------------------------
next_step
printf '%s prerequisites for the tests (scripts/preflight.sh --test)\n' "$STEP_TAG"
bash "$ROOT/scripts/preflight.sh" --test --install --brief \
  || die "test prerequisites missing (listed above): install them, then run 'make test' again."
# A Go older than GO_MIN but new enough to switch toolchains fetches GO_TOOLCHAIN as a Go module.
if command -v go >/dev/null; then
  gv="$(go env GOVERSION | sed 's/^go//')"
  if ! version_ge "$gv" "$GO_MIN"; then export GOTOOLCHAIN="$GO_TOOLCHAIN"; say "go$gv on PATH: using GOTOOLCHAIN=$GO_TOOLCHAIN"; fi
fi

# --- 2. the dev venv ------------------------------------------------------------------------------
locks=("$ROOT/locks/airflow.txt" "$ROOT/locks/dev.txt")
key="$(venv_key "${locks[@]}")"
if fresh venv-dev "$key" && [[ -x "$STATE/venvs/dev/bin/python" ]]; then step_fresh "venv 'dev'"
else
  step_run "venv 'dev'" 40 build_venv dev 1 "${locks[@]}" \
    || die "installing venv 'dev' failed: see the uv output above; the lock files are in locks/."
  stamp venv-dev "$key"
fi

# --- 3. kustomize + operator CRDs -----------------------------------------------------------------
step_run "kustomize + operator CRDs" 100 bash "$ROOT/scripts/setup_k8s_tools.sh" \
  || die "installing kustomize/CRDs for tests/unit/k8s failed (log above)."

# --- 4. etcd, kube-apiserver, kubectl --------------------------------------------------------------
step_run "etcd + kube-apiserver + kubectl (go build)" 650 bash "$ROOT/scripts/build_k8s_binaries.sh" \
  || die "building etcd/kube-apiserver/kubectl from the Go module proxy failed (log above; docs/adr/0005-kube-apiserver-in-tests.md)."

# --- 5. actionlint (checks .github/workflows/*.yml in tests/unit/cli) ----------------------------------
build_actionlint() {
  GOBIN="$BIN" GOFLAGS="-buildvcs=false" go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
}
if fresh actionlint "$ACTIONLINT_VERSION" && [[ -x "$BIN/actionlint" ]]; then step_fresh "actionlint $ACTIONLINT_VERSION"
else
  step_run "actionlint $ACTIONLINT_VERSION (go install)" 60 build_actionlint \
    || die "go install github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION failed (log above)."
  stamp actionlint "$ACTIONLINT_VERSION"
fi
say "test tools ready in ${SECONDS} s ($STATE)"
