#!/usr/bin/env bash
# Build the jobs' Java functions (jvm/flink-functions -> streamflow-flink-functions.jar) with javac against
# the jars of the Flink distribution they run in: no Maven resolution, so the classes compile against
# exactly the Flink they meet (PyFlink's bundled distribution locally, /opt/flink in the image).
#   build_flink_functions.sh FLINK_HOME OUT_JAR
# Idempotent: skipped when OUT_JAR is newer than every source file.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
flink_home="${1:?usage: build_flink_functions.sh FLINK_HOME OUT_JAR}"
out="${2:?usage: build_flink_functions.sh FLINK_HOME OUT_JAR}"
src="$ROOT/jvm/flink-functions/src/main/java"
command -v javac >/dev/null || { echo "javac not found: install a JDK 17 (Debian: openjdk-17-jdk-headless)" >&2; exit 1; }
[[ -d "$flink_home/lib" ]] || { echo "no Flink distribution at $flink_home (lib/ missing)" >&2; exit 1; }
if [[ -f "$out" && -z "$(find "$src" -name '*.java' -newer "$out" -print -quit)" ]]; then exit 0; fi
classes="$(mktemp -d)"
trap 'rm -rf "$classes"' EXIT
mapfile -t sources < <(find "$src" -name '*.java' | LC_ALL=C sort)
javac --release 17 -nowarn -Xlint:-processing -encoding UTF-8 -cp "$flink_home/lib/*:$flink_home/opt/*" \
  -d "$classes" "${sources[@]}"
mkdir -p "$(dirname "$out")"
jar --create --file "$out.tmp" --no-manifest -C "$classes" .
mv "$out.tmp" "$out"
echo "built $out (${#sources[@]} sources)"
