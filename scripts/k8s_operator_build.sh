#!/usr/bin/env bash
# Builds the Flink Kubernetes Operator jar from its vendored source release and caches it under
# .streamflow/k8s-operator/<version>/ (issue 15).
#
# Why a source build: only the operator's API, standalone and autoscaler artifacts are published on
# Maven Central; the operator itself (org.apache.flink:flink-kubernetes-operator) and its webhook are
# not, and no container registry is reachable here. The source tarball of tag release-<version> is
# vendored (checked by sha256 below); its dependencies all come from Maven Central.
#
# Only what the operator jar needs is built: `-pl flink-kubernetes-operator -am` (operator-api,
# standalone, autoscaler, operator), tests skipped, style/licence checks skipped, webhook not built
# (we run the operator with the webhook off). Output:
#   <out>/flink-kubernetes-operator-<version>-shaded.jar   the operator (main class FlinkOperator)
#   <out>/plugins/                                         the metrics plugins the operator image ships
#   <out>/conf/                                            the default operator config + log4j (helm chart)
# Idempotent: prints <out> and exits at once when the jar exists. Logs go to stderr, <out> to stdout:
#   OPERATOR_DIR="$(bash scripts/k8s_operator_build.sh)"
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${STREAMFLOW_STATE_DIR:-$ROOT/.streamflow}"
# shellcheck source=/dev/null
source "$ROOT/k8s/versions.env"
VERSION="${FLINK_OPERATOR_VERSION:?}"
VENDOR="${STREAMFLOW_VENDOR_DIR:-$ROOT/../shared/vendor}"
TARBALL="$VENDOR/flink-kubernetes-operator-${VERSION}-src.tar.gz"
# sha256 of the vendored source release, per version (tag release-1.10.0 = c70325503016262820ff96280e0364c8081d4f8b).
declare -A SHA256=([1.10.0]=919039feffbd742c5d9fba3ebb699b2944d3747858b04769f56c8eb059bf80a4)
OUT="$STATE/k8s-operator/$VERSION"
WORK="$STATE/k8s-operator/build-$VERSION"
JAR="flink-kubernetes-operator-${VERSION}-shaded.jar"

log() { printf '[k8s-operator] %s\n' "$*" >&2; }
die() { printf '[k8s-operator] ERROR: %s\n' "$*" >&2; exit 1; }

main() {
  if [[ -s "$OUT/$JAR" && -f "$OUT/.complete" ]]; then echo "$OUT"; return 0; fi
  [[ -f "$TARBALL" ]] || die "operator source not found: $TARBALL (set STREAMFLOW_VENDOR_DIR to the folder holding it)"
  want="${SHA256[$VERSION]:-}"
  [[ -n "$want" ]] || die "no known sha256 for operator source $VERSION: add it to SHA256 in $0 after checking the release"
  got="$(sha256sum "$TARBALL" | cut -d' ' -f1)"
  [[ "$got" == "$want" ]] || die "sha256 mismatch for $TARBALL: got $got, want $want (corrupt or different release)"
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  command -v java >/dev/null || die "java not found (apt-get install openjdk-17-jdk-headless)"

  start=$SECONDS
  rm -rf "$WORK"; mkdir -p "$WORK"
  tar -xzf "$TARBALL" -C "$WORK" --strip-components=1
  log "building the operator $VERSION from source with Maven (nice -n 10; tests, webhook, docs and style checks skipped)"
  # release 11 = the project's own target; the JDK here is 17. okhttp is the release image's HTTP client.
  # maven.antrun.skip: the API module's only antrun steps are CRD compatibility checks against the
  # previous release's CRDs, downloaded from raw.githubusercontent.com (unreachable here); they guard
  # the operator's own release process, and we build the released CRDs unchanged.
  (cd "$WORK" && nice -n 10 mvn -B -ntp -Dstyle.color=never install \
      -pl flink-kubernetes-operator -am \
      -DskipTests -Dmaven.test.skip.exec=true -Dit.skip=true \
      -Dspotless.check.skip=true -Dspotless.apply.skip=true -Dcheckstyle.skip=true -Drat.skip=true \
      -Dmaven.javadoc.skip=true -Dmaven.source.skip=true -Denforcer.skip=true -Dmaven.antrun.skip=true \
      -Dfabric8.httpclient.impl=okhttp >"$WORK/maven.log" 2>&1) \
    || { tail -40 "$WORK/maven.log" >&2; die "maven build failed (full log: $WORK/maven.log)"; }
  built="$WORK/flink-kubernetes-operator/target/$JAR"
  [[ -s "$built" ]] || die "maven succeeded but $built is missing"
  rm -rf "$OUT"; mkdir -p "$OUT/conf"
  cp "$built" "$OUT/"
  [[ -d "$WORK/flink-kubernetes-operator/target/plugins" ]] && cp -r "$WORK/flink-kubernetes-operator/target/plugins" "$OUT/plugins"
  # The chart's default operator configuration and logging: the operator image reads them from
  # $FLINK_CONF_DIR (helm/flink-kubernetes-operator/conf).
  cp "$WORK"/helm/flink-kubernetes-operator/conf/* "$OUT/conf/"
  cp "$WORK/docker-entrypoint.sh" "$OUT/docker-entrypoint.sh"
  cp "$WORK/LICENSE" "$OUT/LICENSE"
  touch "$OUT/.complete"
  log "built $JAR in $((SECONDS - start)) s -> $OUT ($(du -sh "$OUT/$JAR" | cut -f1))"
  echo "$OUT"
}
main "$@"; exit $?
