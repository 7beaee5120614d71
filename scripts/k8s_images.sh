#!/usr/bin/env bash
# Builds StreamFlow's container images on this machine without Docker and without any container
# registry (issue 15): the only reachable hosts are package registries (deb.debian.org, PyPI, npm,
# Maven Central).
#
#   1. base   a Debian bookworm root filesystem made by mmdebstrap from deb.debian.org (python3, venv,
#             CA certificates), imported into podman as streamflow/base:bookworm. Every Dockerfile takes
#             it as `--build-arg BASE_IMAGE=...`.
#   2. images images/<name>/Dockerfile built by podman (buildah inside) with the repository root as
#             context, tagged streamflow/<name>:<STREAMFLOW_IMAGE_TAG from k8s/versions.env>.
#   3. smoke  each image run once by podman to prove it works (generator --help, pyflink import + the
#             Flink launcher, airflow version + dbt --version).
#   4. save   `podman save` of each image as an OCI archive, the input of `ctr -n k8s.io images import`.
#
# Usage: bash scripts/k8s_images.sh [build|smoke|save|all] [airflow|flink|generator ...]
#        (default: all = build + smoke + save, for all three images)
#
# Everything is cached under .streamflow/k8s-images/ (never in /var/lib/containers): podman's image
# store (--root), the base rootfs tarball, the Maven cache the Flink image's connector stage mounts,
# the saved archives. A warm run reuses podman's layer cache: only layers whose inputs changed rebuild.
# Timings of every step are appended to .streamflow/k8s-images/timings.jsonl (read by the k8s bench).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${STREAMFLOW_STATE_DIR:-$ROOT/.streamflow}"
# shellcheck source=/dev/null
source "$ROOT/k8s/versions.env"
TAG="${STREAMFLOW_IMAGE_TAG:?}"
CACHE="$STATE/k8s-images"
STORE="$CACHE/storage"          # podman --root
RUNROOT="$CACHE/run"            # podman --runroot
BASE_IMAGE="streamflow/base:bookworm"
DEBIAN_MIRROR="${STREAMFLOW_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SECURITY="${STREAMFLOW_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
# What every image needs: Python 3.11 (the locks' interpreter; `python` = python3 like the official
# python images), venv/ensurepip, CA certificates for pip/apt over https, the user tools the
# Dockerfiles call. Changing this list (or this script) rebuilds the base and therefore every image.
BASE_PACKAGES=(python3 python3-venv python-is-python3 ca-certificates tzdata netbase passwd)
# CA certificates this machine added to its own trust store (a TLS-inspecting egress proxy, a corporate
# CA): copied into the base so that pip, Maven and npm inside the builds trust what the host trusts.
# Without them every https download in a RUN step fails with CERTIFICATE_VERIFY_FAILED here.
EXTRA_CA_DIR="${STREAMFLOW_IMAGE_EXTRA_CA_DIR:-/usr/local/share/ca-certificates}"

BASE_REBUILT=0                  # set by build_base when it (re)imports the base image

log() { printf '[k8s-images] %s\n' "$*" >&2; }
die() { printf '[k8s-images] ERROR: %s\n' "$*" >&2; exit 1; }

# runc, not crun: this VM's cgroups are v1 with an empty cgroup2 mounted at /sys/fs/cgroup/unified
# ("hybrid"), which crun 1.8 refuses ("cgroups in hybrid mode not supported, drop all controllers from
# cgroupv2"); runc 1.1 runs there. cgroupfs: there is no systemd.
PODMAN=(podman --root "$STORE" --runroot "$RUNROOT" --storage-driver overlay --cgroup-manager cgroupfs
        --events-backend file --runtime "${STREAMFLOW_OCI_RUNTIME:-runc}")
pm() { "${PODMAN[@]}" "$@"; }

record() {   # record <step> <image> <seconds> <cache: cold|warm>
  mkdir -p "$CACHE"
  printf '{"step":"%s","image":"%s","seconds":%s,"cache":"%s","at":"%s"}\n' "$1" "$2" "$3" "$4" \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$CACHE/timings.jsonl"
}

ensure_tools() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v buildah >/dev/null || missing+=(buildah)
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  [[ -x /usr/lib/cni/bridge || -x /usr/lib/cni/host-local ]] || missing+=(containernetworking-plugins)
  command -v fuse-overlayfs >/dev/null || missing+=(fuse-overlayfs)
  # podman only recommends an OCI runtime, and --no-install-recommends leaves it out (a fresh machine
  # then fails at the first import: 'default OCI runtime "runc" not found').
  command -v "${STREAMFLOW_OCI_RUNTIME:-runc}" >/dev/null || missing+=("${STREAMFLOW_OCI_RUNTIME:-runc}")
  ((${#missing[@]})) || return 0
  [[ $(id -u) -eq 0 ]] || die "missing Debian packages ${missing[*]}: apt-get install --no-install-recommends ${missing[*]}"
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
}

# --- 1. the Debian base image ---------------------------------------------------------------------
build_base() {
  # What the rootfs is made of: exactly these arguments (and the CA files). The cache key hashes them,
  # so the base (and with it every image layer) is rebuilt when, and only when, one of them changes.
  # minbase + our packages; no docs/man/locales (as in Debian's -slim images; man1 must exist for
  # openjdk's postinst); apt lists dropped (every Dockerfile runs apt-get update before installing).
  local recipe=(
    --variant=minbase --include="$(IFS=,; echo "${BASE_PACKAGES[*]}")"
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias'
    --aptopt='Acquire::Retries "3"' --aptopt='APT::Install-Recommends "false"'
    --customize-hook='mkdir -p "$1/usr/share/man/man1"'
    --customize-hook="if ls $EXTRA_CA_DIR/*.crt >/dev/null 2>&1; then cp $EXTRA_CA_DIR/*.crt \"\$1/usr/local/share/ca-certificates/\" && chroot \"\$1\" update-ca-certificates >/dev/null; fi"
    bookworm
  )
  local sources=("deb $DEBIAN_MIRROR bookworm main" "deb $DEBIAN_MIRROR bookworm-updates main"
                 "deb $DEBIAN_SECURITY bookworm-security main")
  local key tarball start made=warm
  key="$( { printf '%s\n' "${recipe[@]}" "${sources[@]}"; cat "$EXTRA_CA_DIR"/*.crt 2>/dev/null || true; } \
          | sha256sum | cut -c1-12)"
  tarball="$CACHE/base/bookworm-$key.tar"
  if [[ "$(pm image inspect --format '{{index .Labels "org.streamflow.base-key"}}' "$BASE_IMAGE" 2>/dev/null)" == "$key" ]]; then
    return 0
  fi
  BASE_REBUILT=1
  start=$SECONDS
  if [[ ! -s "$tarball" ]]; then
    made=cold
    log "making the Debian bookworm base rootfs with mmdebstrap from $DEBIAN_MIRROR"
    # The downloaded .debs are kept in $CACHE/base/debs (sync-in/sync-out) so a rebuild does not
    # download them again; they are removed from the rootfs itself.
    mkdir -p "$CACHE/base/debs"
    nice -n 10 mmdebstrap --mode=root --format=tar --quiet \
      --skip=download/empty --skip=essential/unlink \
      --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
      --setup-hook="sync-in $CACHE/base/debs /var/cache/apt/archives/" \
      --customize-hook="sync-out /var/cache/apt/archives $CACHE/base/debs" \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb "$1"/var/log/*.log' \
      "${recipe[@]}" "$tarball.tmp" "${sources[@]}" \
      || die "mmdebstrap failed: check that $DEBIAN_MIRROR is reachable (apt-get update on the host)."
    mv "$tarball.tmp" "$tarball"
    find "$CACHE/base" -maxdepth 1 -name 'bookworm-*.tar' ! -name "bookworm-$key.tar" -delete   # superseded
  fi
  log "importing the base rootfs as $BASE_IMAGE"
  pm import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL org.streamflow.base-key=$key" \
    --change 'CMD ["/bin/bash"]' \
    "$tarball" "$BASE_IMAGE" >/dev/null
  record base base $((SECONDS - start)) "$made"
  log "$BASE_IMAGE ready in $((SECONDS - start)) s ($(du -h "$tarball" | cut -f1) rootfs)"
}

# --- 2. our images ---------------------------------------------------------------------------------
build_image() {
  local name="$1" ref="streamflow/$1:$TAG" start cache=warm
  [[ -f "$ROOT/images/$name/Dockerfile" ]] || die "unknown image '$name' (no images/$name/Dockerfile)"
  # cold = no layer can be reused: the image is new, or the base it was built on was replaced.
  pm image exists "$ref" || cache=cold
  [[ "$BASE_REBUILT" == 0 ]] || cache=cold
  mkdir -p "$CACHE/m2"
  log "building $ref (podman build, base $BASE_IMAGE, $cache)"
  start=$SECONDS
  # --network host: RUN steps reach the package registries directly (no CNI needed to build).
  # The Maven cache is a build-time volume: the connector stage reuses it, it never lands in a layer.
  nice -n 10 "${PODMAN[@]}" build \
      --layers --network host --format oci \
      --build-arg "BASE_IMAGE=$BASE_IMAGE" \
      --volume "$CACHE/m2:/root/.m2" \
      -f "$ROOT/images/$name/Dockerfile" -t "$ref" "$ROOT" >"$CACHE/build-$name.log" 2>&1 \
    || { tail -30 "$CACHE/build-$name.log" >&2; die "building $ref failed (full log: $CACHE/build-$name.log)"; }
  record build "$name" $((SECONDS - start)) "$cache"
  log "$ref built in $((SECONDS - start)) s ($cache; $(pm image inspect --format '{{.Size}}' "$ref" | numfmt --to=iec))"
}

# --- 3. run each image once ------------------------------------------------------------------------
smoke() {
  local name="$1" ref="streamflow/$1:$TAG" out
  # Explicit limits: podman's defaults (nofile/nproc 1048576/4194304) exceed this VM's hard limits and
  # runc fails with "error setting rlimit type 7: operation not permitted" (no CAP_SYS_RESOURCE).
  local run=(run --rm --network none --pull never --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)"
             --ulimit nproc=16384:16384)
  case "$name" in
    generator)
      out="$(pm "${run[@]}" --read-only --user 10001:10001 "$ref" python -m generator --help 2>&1)" \
        || die "$ref: python -m generator --help failed: $out"
      grep -q -- "--events-per-second" <<<"$out" || die "$ref: generator --help lacks --events-per-second: $out" ;;
    flink)
      # PYTHONPATH as the FlinkDeployments' pod template sets it.
      out="$(pm "${run[@]}" --user 9999:9999 -e PYTHONPATH=/opt/flink/usrlib "$ref" bash -c '
        set -e
        python -c "import pyflink, sys; from pyflink.datastream import StreamExecutionEnvironment; print(\"pyflink\", pyflink.__file__)"
        python -c "import flink_app.jobs.fraud_detector" && echo jobs-import-ok
        java -version 2>&1 | head -1
        flink --version
        ls /opt/flink/lib | grep -E "^flink-connector-(kafka|jdbc)" ; ls /opt/flink/opt/flink-python-*.jar
        command -v kubernetes-jobmanager.sh kubernetes-taskmanager.sh' 2>&1)" \
        || die "$ref: smoke test failed: $out"
      for want in "pyflink /opt/venv" jobs-import-ok 'openjdk version "17' "Version: 1.20" flink-connector-kafka \
                  flink-connector-jdbc flink-python- kubernetes-jobmanager.sh; do
        grep -q -- "$want" <<<"$out" || die "$ref: smoke output lacks '$want':"$'\n'"$out"
      done ;;
    airflow)
      out="$(pm "${run[@]}" "$ref" bash -c 'airflow version && /opt/dbt-venv/bin/dbt --version | head -3 &&
              test -s /opt/streamflow/dbt-artifacts/target/manifest.json && echo manifest-ok && id -u' 2>&1)" \
        || die "$ref: smoke test failed: $out"
      for want in 3.3.2 "Core:" manifest-ok 50000; do
        grep -q -- "$want" <<<"$out" || die "$ref: smoke output lacks '$want':"$'\n'"$out"
      done ;;
    *) die "no smoke test for $name" ;;
  esac
  log "$ref runs: $(tr '\n' ' ' <<<"$out" | cut -c1-200)"
}

# --- 4. image archives for containerd --------------------------------------------------------------
# Named docker.io/streamflow/<name>:<tag>: that is what Kubernetes makes of `image: streamflow/<name>:<tag>`
# (podman would call it localhost/streamflow/...), so `ctr -n k8s.io images import` gives the kubelet
# exactly the image the manifests name, and imagePullPolicy: Never finds it.
save() {
  local name="$1" ref="streamflow/$1:$TAG" id out start=$SECONDS
  local k8s_ref="docker.io/streamflow/$1:$TAG"
  id="$(pm image inspect --format '{{.Id}}' "$ref")"
  out="$CACHE/archives/$name-$TAG.tar"
  if [[ -s "$out" && "$(cat "$out.id" 2>/dev/null)" == "$id" ]]; then return 0; fi
  mkdir -p "$CACHE/archives"
  rm -f "$out"
  pm tag "$ref" "$k8s_ref"
  pm save --quiet --format docker-archive -o "$out.tmp" "$k8s_ref"
  mv "$out.tmp" "$out"; echo "$id" > "$out.id"
  record save "$name" $((SECONDS - start)) -
  log "saved $ref -> $out ($(du -h "$out" | cut -f1))"
}

main() {
  local action="${1:-all}"; shift || true
  local images=("$@")
  ((${#images[@]})) || images=(generator flink airflow)
  case "$action" in build|smoke|save|all) ;; *) die "usage: $0 [build|smoke|save|all] [image ...]" ;; esac
  ensure_tools
  mkdir -p "$STORE" "$RUNROOT"
  if [[ "$action" == build || "$action" == all ]]; then
    build_base
    for n in "${images[@]}"; do build_image "$n"; done
    if [[ "$BASE_REBUILT" == 1 ]]; then
      # Images (and cached stage layers) made on a previous base can never be reused: free their space.
      mapfile -t stale < <(pm images --quiet --filter "before=$BASE_IMAGE" | sort -u)
      ((${#stale[@]} == 0)) || pm rmi --force "${stale[@]}" >/dev/null 2>&1 || true
    fi
  fi
  if [[ "$action" == smoke || "$action" == all ]]; then for n in "${images[@]}"; do smoke "$n"; done; fi
  if [[ "$action" == save || "$action" == all ]]; then for n in "${images[@]}"; do save "$n"; done; fi
}
main "$@"; exit $?
