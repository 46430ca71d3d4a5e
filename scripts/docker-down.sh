#!/usr/bin/env bash
# Stop the Docker engine started by scripts/docker-up.sh (by its pid file). Images stay cached
# under $DOCKER_STATE_DIR for the next docker-up; pass --purge to delete them too.
set -euo pipefail
STATE_DIR=${DOCKER_STATE_DIR:-/tmp/gcs-import-docker}
pidfile=$STATE_DIR/docker.pid
if [ -f "$pidfile" ] && pid=$(cat "$pidfile") && kill -0 "$pid" 2>/dev/null; then
  kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "docker-down: dockerd $pid still running after 30 s; sending KILL" >&2
    kill -KILL "$pid"
  fi
  echo "docker-down: stopped dockerd $pid" >&2
else
  echo "docker-down: no dockerd running for $STATE_DIR" >&2
fi
rm -f "$pidfile"
if [ "${1:-}" = "--purge" ]; then
  # overlay mounts may linger under the data root; unmount before deleting.
  grep -o " $STATE_DIR[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$STATE_DIR"
  echo "docker-down: removed $STATE_DIR" >&2
fi
