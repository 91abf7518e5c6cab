#!/usr/bin/env bash
# Stops the dockerd and registry that test/docker/setup.sh started, and only
# those: a daemon that was already running has no pid file and is left alone.
set -euo pipefail

STATE=${OCPS_DOCKER_STATE:-/tmp/ocps-docker}
rc=0

# stop NAME EXPECTED_COMM
stop() {
  local pidfile=$STATE/$1.pid pid comm
  [ -f "$pidfile" ] || { echo "teardown: $1: no pid file, nothing to stop"; return 0; }
  pid=$(cat "$pidfile")
  comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  # Guard against a recycled PID: only signal the program we started.
  if [ "$comm" != "$2" ]; then
    echo "teardown: $1: pid $pid is gone (or is now '$comm'), not killing"
    rm -f "$pidfile"
    return 0
  fi
  kill "$pid"
  for ((i = 0; i < 20; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "teardown: $1: pid $pid still running after 20 s" >&2
    rc=1
    return 0
  fi
  rm -f "$pidfile"
  echo "teardown: $1: pid $pid stopped"
}

# Registry first: it does not depend on dockerd, and dockerd takes longer.
stop registry docker-registry
stop dockerd dockerd
exit $rc
