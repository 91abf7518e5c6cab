#!/usr/bin/env bash
# Stops the dockerd and registry that test/docker/setup.sh started, and only
# those: a daemon that was already running has no pid file and is left alone.
set -euo pipefail

STATE=${OCPS_DOCKER_STATE:-/tmp/ocps-docker}
rc=0

. "$(dirname "$0")/../stop-pidfile.sh"
# stop NAME EXPECTED_COMM
stop() { stop_pidfile "$STATE" "$1" "$2"; }

# Registry first: it does not depend on dockerd, and dockerd takes longer.
stop registry docker-registry
stop dockerd dockerd
exit $rc
