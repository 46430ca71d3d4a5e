#!/usr/bin/env bash
# Start a private Docker engine and build the worker image, on a fresh Debian machine as root,
# with no container registry. Idempotent: every step already done is skipped.
#
#   bash scripts/docker-up.sh            # engine + base image + worker image
#   BUILD_CODELOCATION=1 bash scripts/docker-up.sh   # also the Dagster code location image (always when CI=true)
#   eval "$(bash scripts/docker-up.sh --print-env)"  # just print DOCKER_HOST for a running engine
#   bash scripts/docker-up.sh --status                # exit 0 when that engine answers
#
# Steps: (1) apt-get install docker.io + debootstrap when missing; (2) start dockerd in the
# background with its own --data-root/--exec-root/--pidfile and a unix socket under $DOCKER_STATE_DIR;
# (3) debootstrap a Debian bookworm rootfs with python3 3.11 from the mirror apt uses and
# `docker import` it as the base image; (4) build the worker image with BuildKit, giving pip the
# host CA bundle as a build secret (HTTPS goes through a TLS-intercepting proxy here).
# The last line printed on stdout is `export DOCKER_HOST=unix://...`; progress goes to stderr.
# Stop the engine with scripts/docker-down.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

STATE_DIR=${DOCKER_STATE_DIR:-/tmp/gcs-import-docker}
SOCKET=$STATE_DIR/docker.sock
export DOCKER_HOST=unix://$SOCKET
BASE_IMAGE=${BASE_IMAGE:-gcs-import-base:bookworm}
WORKER_IMAGE=${WORKER_IMAGE:-gcs-interval-import-worker:dev}
CODELOCATION_IMAGE=${CODELOCATION_IMAGE:-gcs-interval-import-codelocation:dev}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
# Debian's client: it speaks BuildKit (with --secret) without the buildx plugin. A newer
# client elsewhere on PATH may need buildx for BuildKit, so prefer /usr/bin/docker.
DOCKER=${DOCKER_CLI:-/usr/bin/docker}

log() { printf '[docker-up %5ss] %s\n' "$SECONDS" "$*" >&2; }

if [ "${1:-}" = "--print-env" ]; then
  echo "export DOCKER_HOST=$DOCKER_HOST"
  exit 0
fi
if [ "${1:-}" = "--status" ]; then  # exit 0 when the engine answers
  [ -x "$DOCKER" ] || DOCKER=docker
  exec "$DOCKER" version >/dev/null 2>&1
fi

# -- 1. packages ---------------------------------------------------------------
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
[ -x /usr/bin/docker ] || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "docker-up: missing ${need[*]}; run as root (apt-get install) or install them first" >&2
    exit 1
  fi
  log "installing ${need[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" ca-certificates iptables >&2
fi
[ -x "$DOCKER" ] || DOCKER=$(command -v docker)

# -- 2. engine -----------------------------------------------------------------
mkdir -p "$STATE_DIR"
if ! "$DOCKER" version >/dev/null 2>&1; then
  if [ -f "$STATE_DIR/docker.pid" ] && kill -0 "$(cat "$STATE_DIR/docker.pid")" 2>/dev/null; then
    log "dockerd $(cat "$STATE_DIR/docker.pid") is running but not answering yet"
  else
    rm -f "$STATE_DIR/docker.pid" "$SOCKET"
    log "starting dockerd (state in $STATE_DIR)"
    # setsid: the engine outlives this script and ignores the caller's terminal signals.
    setsid dockerd \
      --data-root "$STATE_DIR/data" \
      --exec-root "$STATE_DIR/exec" \
      --pidfile "$STATE_DIR/docker.pid" \
      -H "unix://$SOCKET" \
      --storage-driver overlay2 \
      >"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
  fi
  for _ in $(seq 1 120); do
    "$DOCKER" version >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! "$DOCKER" version >/dev/null 2>&1; then
    echo "docker-up: dockerd did not answer on $SOCKET within 60 s; its log ($STATE_DIR/dockerd.log):" >&2
    tail -n 30 "$STATE_DIR/dockerd.log" >&2 || true
    exit 1
  fi
fi
log "engine up: $("$DOCKER" version --format 'server {{.Server.Version}}')"

# -- 3. base image from Debian packages -------------------------------------------
apt_mirror() {
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) {print $i; exit}}' \
      /etc/apt/sources.list)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}
if ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  mirror=${DEBIAN_MIRROR:-$(apt_mirror)}
  rootfs=$STATE_DIR/rootfs
  log "debootstrap bookworm from $mirror (base image $BASE_IMAGE)"
  rm -rf "$rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$mirror" >"$STATE_DIR/debootstrap.log" 2>&1 || {
      echo "docker-up: debootstrap failed; log tail:" >&2; tail -n 30 "$STATE_DIR/debootstrap.log" >&2; exit 1; }
  # Smaller image: no apt lists, package caches, docs or translations.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
  tar -C "$rootfs" -c . | "$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  log "base image $BASE_IMAGE imported"
fi

# -- 4. images -------------------------------------------------------------------
build() {
  local target=$1 tag=$2 secret=()
  [ -s "$CA_BUNDLE" ] && secret=(--secret "id=ca,src=$CA_BUNDLE")
  log "building $tag (target $target)"
  DOCKER_BUILDKIT=1 "$DOCKER" build --progress=plain --network=host \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" "${secret[@]}" \
    --target "$target" -t "$tag" . >"$STATE_DIR/build-$target.log" 2>&1 || {
      echo "docker-up: building $tag failed; log tail ($STATE_DIR/build-$target.log):" >&2
      tail -n 40 "$STATE_DIR/build-$target.log" >&2; exit 1; }
}
build worker "$WORKER_IMAGE"
# The code location image too when asked, and in CI (tests/docker checks it serves the definitions).
if [ "${BUILD_CODELOCATION:-0}" = 1 ] || [ "${CI:-}" = true ]; then
  build codelocation "$CODELOCATION_IMAGE"
fi
# Rebuilding a tag leaves the previous image dangling: drop those (build cache stays).
"$DOCKER" image prune -f >/dev/null 2>&1 || true
log "done: $("$DOCKER" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'gcs-' | tr '\n' ' ')"
echo "export DOCKER_HOST=$DOCKER_HOST"
