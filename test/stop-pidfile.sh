# Sourced by test/docker/teardown.sh and test/slurm/teardown.sh: stop a
# service this suite started, by the PID in its pidfile, and nothing else.
#
# stop_pidfile STATE NAME EXPECTED_COMM: signals the PID in STATE/NAME.pid
# only while /proc/PID/comm is EXPECTED_COMM (a recycled PID is left
# alone), waits up to 20 s, removes the pidfile; sets rc=1 when it would
# not stop.
stop_pidfile() {
  local pidfile=$1/$2.pid pid comm
  [ -f "$pidfile" ] || { echo "teardown: $2: no pid file, nothing to stop"; return 0; }
  pid=$(cat "$pidfile")
  comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  if [ "$comm" != "$3" ]; then
    echo "teardown: $2: pid $pid is gone (or is now '$comm'), not killing"
    rm -f "$pidfile"
    return 0
  fi
  kill "$pid"
  for ((i = 0; i < 40; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "teardown: $2: pid $pid still running after 20 s" >&2
    rc=1
    return 0
  fi
  rm -f "$pidfile"
  echo "teardown: $2: pid $pid stopped"
}
