#!/bin/sh
# Starts the daemon ($OCPS_REAL_PROXYD) inside the cgroup $OCPS_TEST_CGROUP,
# as a service manager starts a service in the unit's cgroup: the process
# joins it, then execs (test_cgroup2.py's Service).
echo $$ >"$OCPS_TEST_CGROUP/cgroup.procs" || exit 125
exec "$OCPS_REAL_PROXYD" "$@"
