#!/usr/bin/env bash
# Stops the daemons test/slurm/setup.sh started, and only those: each has a
# pid file in the state dir, checked against the program's name so that a
# recycled pid is never signalled. Files stay (the next setup reuses the
# keys); `rm -rf $OCPS_SLURM_STATE` after it removes everything.
#   bash test/slurm/teardown.sh [--started FILE]
# With --started, only the daemons FILE names (setup.sh's OCPS_SLURM_STARTED:
# what one run started, not what it found running); an empty FILE stops
# nothing.
set -euo pipefail

STATE=${OCPS_SLURM_STATE:-/tmp/ocps-slurm}
rc=0
wanted=" slurmrestd slurmd slurmctld munged "
case "${1:-}" in
  --started) [ $# -eq 2 ] || { echo "usage: $0 [--started FILE]" >&2; exit 2; }
             wanted=" $(tr '\n' ' ' <"$2") " ;;
  "") ;;
  *) echo "usage: $0 [--started FILE]" >&2; exit 2 ;;
esac

. "$(dirname "$0")/../stop-pidfile.sh"
# stop NAME EXPECTED_COMM: only the daemons this run was asked to stop.
stop() {
  [[ " $wanted " == *" $1 "* ]] || return 0
  stop_pidfile "$STATE" "$1" "$2"
}

# Clients first, munged last: the others authenticate through it.
stop slurmrestd slurmrestd
stop slurmd slurmd
# slurmd leaves its (by now empty) cgroups behind: slurm_<node>/ in each
# v1 hierarchy, or under the unified one. rmdir removes only empty ones.
if [[ " $wanted " == *" slurmd "* ]] && [ ! -f "$STATE/slurmd.pid" ]; then
  # From slurm.conf, which setup.sh writes before it starts anything (its
  # env file comes last, missing after a setup that failed).
  node=$(sed -n 's/^NodeName=\([^ ]*\).*/\1/p' "$STATE/slurm.conf" 2>/dev/null || true)
  if [ -n "$node" ]; then
    for d in /sys/fs/cgroup/slurm_"$node" /sys/fs/cgroup/*/slurm_"$node"; do
      [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
  fi
fi
stop slurmctld slurmctld
stop munged munged
exit $rc
