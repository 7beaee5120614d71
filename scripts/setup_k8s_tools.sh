#!/usr/bin/env bash
# Tools and schemas for the static Kubernetes tests (tests/unit/k8s); nothing here needs a cluster.
#   - kustomize, built from the Go module proxy at the version pinned in k8s/versions.env;
#   - the CRDs of the three operators at their pinned versions, from their published artifacts:
#       CloudNativePG  Go module zip github.com/cloudnative-pg/cloudnative-pg  -> config/crd/bases/*.yaml
#       Flink operator Maven org.apache.flink:flink-kubernetes-operator-api     -> META-INF/fabric8/*-v1.yml
#       Strimzi        Maven io.strimzi:api (model classes, no YAML) run through io.strimzi:crd-generator
#                      with the exact arguments of the io.strimzi:api pom's CRD generation step.
#     and Argo CD's Application/AppProject CRDs (Go module zip github.com/argoproj/argo-cd/v3 ->
#     manifests/crds), for the GitOps Application in k8s/gitops.
# Everything is cached under .streamflow/ (never copied into the repo). Idempotent: a stamp (hash of
# this script + k8s/versions.env) makes a warm run return in milliseconds.
# Prints nothing on stdout; logs go to stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${STREAMFLOW_INSTALL_DIR:-${STREAMFLOW_STATE_DIR:-$ROOT/.streamflow}}"   # the installation (settings.install_dir)
STAMPS="$STATE/stamps"
BIN="$STATE/tools/bin"
CRDS="$STATE/k8s-crds"
WORK="$STATE/k8s-tools-build"

log() { printf '[k8s-tools] %s\n' "$*" >&2; }
die() { printf '[k8s-tools] ERROR: %s\n' "$*" >&2; exit 1; }

# shellcheck source=/dev/null
source "$ROOT/k8s/versions.env"
key="$(cat "${BASH_SOURCE[0]}" "$ROOT/k8s/versions.env" | sha256sum | cut -c1-16)"
if [[ -f "$STAMPS/k8s-tools" && "$(cat "$STAMPS/k8s-tools")" == "$key" && -x "$BIN/kustomize" ]]; then
  exit 0
fi
mkdir -p "$STAMPS" "$BIN" "$CRDS" "$WORK"
start=$SECONDS

# --- kustomize (Go module proxy) ------------------------------------------------------------------
if [[ "$("$BIN/kustomize" version 2>/dev/null)" != "$KUSTOMIZE_VERSION" ]]; then
  command -v go >/dev/null || die "go not found: kustomize is built from the Go module proxy (apt-get install golang-go, or a Go toolchain on PATH)."
  log "building kustomize $KUSTOMIZE_VERSION (go install)"
  GOBIN="$BIN" GOFLAGS="-buildvcs=false" GOTOOLCHAIN="${GOTOOLCHAIN:-local}" \
    go install -ldflags "-s -w -X sigs.k8s.io/kustomize/api/provenance.version=${KUSTOMIZE_VERSION}" \
    "sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION}" >&2 \
    || die "go install sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION} failed (see above)."
fi

# --- CloudNativePG CRDs (Go module zip) ------------------------------------------------------------
out="$CRDS/cnpg-$CNPG_VERSION"
if [[ ! -f "$out/.complete" ]]; then
  log "CloudNativePG $CNPG_VERSION CRDs from the Go module proxy"
  dir="$(cd "$WORK" && GOFLAGS=-mod=mod go mod download -json "github.com/cloudnative-pg/cloudnative-pg@v${CNPG_VERSION}" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -d "$dir/config/crd/bases" ]] || die "github.com/cloudnative-pg/cloudnative-pg@v${CNPG_VERSION} has no config/crd/bases"
  rm -rf "$out"; mkdir -p "$out"
  cp "$dir"/config/crd/bases/*.yaml "$out/"
  chmod -R u+w "$out"
  touch "$out/.complete"
fi

# --- Argo CD CRDs (Go module zip) ------------------------------------------------------------------
out="$CRDS/argocd-$ARGOCD_VERSION"
if [[ ! -f "$out/.complete" ]]; then
  log "Argo CD $ARGOCD_VERSION CRDs from the Go module proxy"
  dir="$(cd "$WORK" && GOFLAGS=-mod=mod go mod download -json "github.com/argoproj/argo-cd/v3@v${ARGOCD_VERSION}" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "$dir/manifests/crds/application-crd.yaml" ]] || die "github.com/argoproj/argo-cd/v3@v${ARGOCD_VERSION} has no manifests/crds"
  rm -rf "$out"; mkdir -p "$out"
  cp "$dir"/manifests/crds/application-crd.yaml "$dir"/manifests/crds/appproject-crd.yaml "$out/"
  chmod -R u+w "$out"
  touch "$out/.complete"
fi

# --- Maven artifacts: a throwaway pom resolves them (and the generator's classpath) ----------------
command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
command -v java >/dev/null || die "java not found (apt-get install openjdk-17-jre-headless)"
command -v unzip >/dev/null || die "unzip not found (apt-get install unzip)"

out="$CRDS/flink-operator-$FLINK_OPERATOR_VERSION"
if [[ ! -f "$out/.complete" ]]; then
  log "Flink Kubernetes Operator $FLINK_OPERATOR_VERSION CRDs from Maven Central"
  jar_dir="$WORK/flink-operator-$FLINK_OPERATOR_VERSION"
  mkdir -p "$jar_dir"
  mvn -q -B -Dstyle.color=never dependency:copy -Dartifact="org.apache.flink:flink-kubernetes-operator-api:${FLINK_OPERATOR_VERSION}" \
    -DoutputDirectory="$jar_dir" >&2 || die "Maven could not fetch flink-kubernetes-operator-api:${FLINK_OPERATOR_VERSION}"
  rm -rf "$out"; mkdir -p "$out"
  # *-v1.yml are the apiextensions.k8s.io/v1 CRDs (the operator's Helm chart ships the same files).
  unzip -q -j -o "$jar_dir/flink-kubernetes-operator-api-${FLINK_OPERATOR_VERSION}.jar" 'META-INF/fabric8/*-v1.yml' -d "$out"
  touch "$out/.complete"
fi

out="$CRDS/strimzi-$STRIMZI_VERSION"
if [[ ! -f "$out/.complete" ]]; then
  log "Strimzi $STRIMZI_VERSION CRDs: io.strimzi:crd-generator over io.strimzi:api (Maven Central)"
  gen="$WORK/strimzi-$STRIMZI_VERSION"
  mkdir -p "$gen"
  cat > "$gen/pom.xml" <<POM
<!-- Generated by scripts/setup_k8s_tools.sh: resolves Strimzi's API model and CRD generator. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.streamflow</groupId><artifactId>strimzi-crds</artifactId><version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>io.strimzi</groupId><artifactId>api</artifactId><version>${STRIMZI_VERSION}</version></dependency>
    <dependency><groupId>io.strimzi</groupId><artifactId>crd-generator</artifactId><version>${STRIMZI_VERSION}</version></dependency>
  </dependencies>
</project>
POM
  mvn -q -B -Dstyle.color=never -f "$gen/pom.xml" dependency:copy-dependencies -DoutputDirectory="$gen/lib" >&2 \
    || die "Maven could not resolve io.strimzi:api/crd-generator:${STRIMZI_VERSION}"
  rm -rf "$out"; mkdir -p "$out"
  # Same flags as the <execution> blocks in io.strimzi:api's pom (generate-crd-co-install-v1*).
  common=(--label app:strimzi --label strimzi.io/crd-install:true --target-kube 1.16+ --crd-api-version v1
          --storage-version v1beta2 --yaml)
  java -cp "$gen/lib/*" io.strimzi.crdgenerator.CrdGenerator "${common[@]}" --api-versions v1beta2 \
    "io.strimzi.api.kafka.model.kafka.Kafka=$out/040-Crd-kafka.yaml" \
    "io.strimzi.api.kafka.model.nodepool.KafkaNodePool=$out/04A-Crd-kafkanodepool.yaml" 2>/dev/null \
    || die "Strimzi crd-generator failed for Kafka/KafkaNodePool"
  java -cp "$gen/lib/*" io.strimzi.crdgenerator.CrdGenerator "${common[@]}" --api-versions v1alpha1,v1beta1,v1beta2 \
    "io.strimzi.api.kafka.model.topic.KafkaTopic=$out/043-Crd-kafkatopic.yaml" 2>/dev/null \
    || die "Strimzi crd-generator failed for KafkaTopic"
  touch "$out/.complete"
fi

echo "$key" > "$STAMPS/k8s-tools"
log "kustomize $KUSTOMIZE_VERSION and CRDs (cnpg $CNPG_VERSION, strimzi $STRIMZI_VERSION, flink-operator $FLINK_OPERATOR_VERSION) ready in $((SECONDS - start)) s -> $CRDS"
