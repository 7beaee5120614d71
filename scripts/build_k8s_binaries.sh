#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kubectl from the Go module proxy at pinned versions and caches them
# under .streamflow/k8s-bin/<version>/ (see docs/adr/0005-kube-apiserver-in-tests.md).
#
# Why a build and not a download: the only hosts reachable here are package registries. k8s.io/kubernetes
# is published on the module proxy, but its go.mod replaces its ~33 staging modules (k8s.io/api,
# k8s.io/apiserver, ...) with ./staging/... paths that only exist in the git repository. A throwaway
# module under .streamflow/ that requires k8s.io/kubernetes and replaces each staging module with its
# published v0.X.Y twin can `go build` the commands. etcd's server is already in that dependency graph
# (k8s.io/kubernetes requires go.etcd.io/etcd/server/v3), so it builds from the same module.
#
# Two sets, one directory:
#   bash scripts/build_k8s_binaries.sh         etcd kube-apiserver kubectl (the API test harness)
#   bash scripts/build_k8s_binaries.sh node    + kubelet kube-controller-manager kube-scheduler kube-proxy
#                                              and coredns (its own module github.com/coredns/coredns, at
#                                              the version kubeadm pins for this Kubernetes release):
#                                              what the single-node cluster of `make test-k8s` runs.
# Idempotent: binaries that exist for the pinned versions are not rebuilt; when all requested ones exist
# it prints their directory and exits in milliseconds. Prints only the binary directory on stdout (logs
# go to stderr), so callers can do
#   BIN="$(bash scripts/build_k8s_binaries.sh [node])"
# The operators' CRDs are not built here: scripts/setup_k8s_tools.sh caches them at the versions
# pinned in k8s/versions.env, and the test harness installs that cache.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${STREAMFLOW_INSTALL_DIR:-${STREAMFLOW_STATE_DIR:-$ROOT/.streamflow}}"   # the installation (settings.install_dir)
K8S_VERSION="${STREAMFLOW_K8S_VERSION:-v1.36.3}"       # k8s.io/kubernetes on the module proxy
STAGING_VERSION="v0.${K8S_VERSION#v1.}"                # k8s.io/api etc. publish v0.<minor>.<patch>
ETCD_VERSION="${STREAMFLOW_ETCD_VERSION:-v3.6.8}"      # the version k8s.io/kubernetes v1.36.3 requires
# kubeadm's CoreDNSVersion for v1.36 (cmd/kubeadm/app/constants): the DNS the cluster's pods resolve with.
COREDNS_VERSION="${STREAMFLOW_COREDNS_VERSION:-v1.14.2}"
KEY="kube-${K8S_VERSION}-etcd-${ETCD_VERSION}"
OUT="$STATE/k8s-bin/$KEY"
WORK="$STATE/k8s-build/$KEY"
CORE=(etcd kube-apiserver kubectl)
NODE=(kubelet kube-controller-manager kube-scheduler kube-proxy)

log() { printf '[k8s-bin] %s\n' "$*" >&2; }
die() { printf '[k8s-bin] ERROR: %s\n' "$*" >&2; exit 1; }

# CoreDNS from its own module (its go.mod is self-contained: `go build` in a throwaway module that
# requires it). The plugin set is CoreDNS's default (plugin.cfg as released), which includes the
# kubernetes, forward, cache, health and ready plugins the cluster's Corefile uses.
build_coredns() {
  local dir="$STATE/k8s-build/coredns-${COREDNS_VERSION}"
  mkdir -p "$dir"
  (
    cd "$dir"
    log "building coredns ${COREDNS_VERSION} (module github.com/coredns/coredns)"
    gomod="$(go mod download -json "github.com/coredns/coredns@${COREDNS_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
    [[ -f "$gomod" ]] || die "could not download github.com/coredns/coredns@${COREDNS_VERSION}"
    {
      echo "module streamflow.local/corednsbin"
      echo
      echo "go $(awk '$1 == "go" {print $2; exit}' "$gomod")"
      echo
      echo "require github.com/coredns/coredns ${COREDNS_VERSION}"
      # CoreDNS's own replace directives (if any) only apply in its main module: carry them over.
      awk '$1 == "replace" && $2 != "(" {sub(/^replace /, ""); print "replace " $0}' "$gomod"
    } > go.mod
    go get "github.com/coredns/coredns@${COREDNS_VERSION}" >&2
    nice -n 19 go build -trimpath \
      -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=${COREDNS_VERSION}" \
      -o "$OUT/coredns" github.com/coredns/coredns
  )
}

# Everything runs from one function, parsed whole before it starts: editing this file while a (long)
# build runs cannot derail it.
main() {
  local set="${1:-core}" kube=() want=() missing=()
  case "$#:$set" in
    0:core|1:core) kube=("${CORE[@]}") ;;
    1:node) kube=("${CORE[@]}" "${NODE[@]}"); want=(coredns) ;;
    *) die "usage: $0 [core|node] (versions via STREAMFLOW_K8S_VERSION / STREAMFLOW_ETCD_VERSION / STREAMFLOW_COREDNS_VERSION)" ;;
  esac
  want=("${kube[@]}" "${want[@]}")
  for b in "${want[@]}"; do [[ -x "$OUT/$b" ]] || missing+=("$b"); done
  if ((${#missing[@]} == 0)); then echo "$OUT"; return 0; fi

  command -v go >/dev/null || die "go not found: the control plane is built with the Go toolchain (needs Go >= 1.26 for Kubernetes ${K8S_VERSION})"
  export GOFLAGS="-mod=mod -buildvcs=false"
  export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
  mkdir -p "$WORK" "$OUT"
  cd "$WORK"
  start=$SECONDS

  # --- throwaway module: k8s.io/kubernetes + published staging modules ----------------------------
  log "resolving k8s.io/kubernetes@${K8S_VERSION} on the module proxy"
  gomod="$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "$gomod" ]] || die "could not download k8s.io/kubernetes@${K8S_VERSION}'s go.mod"
  mapfile -t staging < <(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod")
  ((${#staging[@]} > 10)) || die "found no staging replace list in $gomod"
  go_directive="$(awk '$1 == "go" {print $2; exit}' "$gomod")"
  godebug="$(awk '$1 == "godebug" {print; exit}' "$gomod")"
  {
    echo "// Generated by scripts/build_k8s_binaries.sh: a throwaway module to build the control plane."
    echo "module streamflow.local/k8sbin"
    echo
    echo "go ${go_directive}"
    [[ -n "$godebug" ]] && echo "$godebug"
    echo
    echo "require ("
    echo "	k8s.io/kubernetes ${K8S_VERSION}"
    echo "	go.etcd.io/etcd/server/v3 ${ETCD_VERSION}"
    echo ")"
    echo
    echo "replace ("
    for m in "${staging[@]}"; do echo "	$m => $m ${STAGING_VERSION}"; done
    echo ")"
  } > go.mod
  log "downloading modules (${#staging[@]} staging modules replaced by ${STAGING_VERSION})"
  # `go get` of the three command packages fills go.sum and raises any requirement they need.
  local pkgs=("go.etcd.io/etcd/server/v3@${ETCD_VERSION}")
  for b in "${kube[@]}"; do [[ "$b" == etcd ]] || pkgs+=("k8s.io/kubernetes/cmd/$b@${K8S_VERSION}"); done
  go get "${pkgs[@]}" >&2
  dl=$SECONDS
  log "modules ready in $((dl - start)) s; compiling (nice -n 19, GOMAXPROCS=${GOMAXPROCS:-all cores})"

  ldflags="-s -w"
  for v in gitVersion=${K8S_VERSION} gitMajor=1 gitMinor=$(cut -d. -f2 <<<"${K8S_VERSION#v}") \
           gitTreeState=clean buildDate=1970-01-01T00:00:00Z; do
    ldflags+=" -X k8s.io/component-base/version.$v -X k8s.io/client-go/pkg/version.$v"
  done
  tmp="$WORK/out"
  mkdir -p "$tmp"
  for b in "${missing[@]}"; do
    case "$b" in
      etcd) nice -n 19 go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3 ;;
      coredns) continue ;;
      *) nice -n 19 go build -trimpath -ldflags "$ldflags" -o "$tmp/$b" "k8s.io/kubernetes/cmd/$b" ;;
    esac
    mv -f "$tmp/$b" "$OUT/$b"
    log "built $b ($((SECONDS - dl)) s since the modules were ready)"
  done
  if [[ " ${missing[*]} " == *" coredns "* ]]; then build_coredns; fi
  log "built ${missing[*]} in $((SECONDS - start)) s (download $((dl - start)) s, compile $((SECONDS - dl)) s) -> $OUT"
  du -sh "$OUT"/* >&2
  echo "$OUT"
}
main "$@"
