#!/usr/bin/env bash
# Stops the daemons test/slurm/setup.sh started, and only those: each has a
# pid file in the state dir, checked against the program's name so that a
# recycled pid is never signalled. Files stay (the next setup reuses the
# keys); `rm -rf $OCPS_SLURM_STATE` after it removes everything.
set -euo pipefail

STATE=${OCPS_SLURM_STATE:-/tmp/ocps-slurm}
rc=0

# stop NAME EXPECTED_COMM
stop() {
  local pidfile=$STATE/$1.pid pid comm
  [ -f "$pidfile" ] || { echo "teardown: $1: no pid file, nothing to stop"; return 0; }
  pid=$(cat "$pidfile")
  comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  if [ "$comm" != "$2" ]; then
    echo "teardown: $1: pid $pid is gone (or is now '$comm'), not killing"
    rm -f "$pidfile"
    return 0
  fi
  kill "$pid"
  for ((i = 0; i < 40; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "teardown: $1: pid $pid still running after 20 s" >&2
    rc=1
    return 0
  fi
  rm -f "$pidfile"
  echo "teardown: $1: pid $pid stopped"
}

# Clients first, munged last: the others authenticate through it.
stop slurmrestd slurmrestd
stop slurmd slurmd
stop slurmctld slurmctld
stop munged munged
exit $rc
