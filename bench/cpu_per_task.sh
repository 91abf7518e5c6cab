#!/usr/bin/env bash
# CPU per process task of two builds, alternately: the daemon's, and the
# shim's with the children it reaped (the tasks' own processes), from
# /proc/PID/stat around 1000 trivial tasks (bench/tasks.py, 8 connections)
# after a 50-task warm-up that starts the shim. Steadier than tasks/s on a
# shared machine: it is what each build spends, whatever else runs.
# Each TREE must have a release build in TREE/build-bench (bench/run.sh
# makes one). Run as root:  bash bench/cpu_per_task.sh BEFORE_TREE AFTER_TREE [PAIRS]
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BEFORE_TREE AFTER_TREE [PAIRS]" >&2; exit 2; }
tick=$(getconf CLK_TCK)
port=18090
one() { # TREE LABEL
  local tree=$1 label=$2 work dpid spid d0 d1 s0 s1
  work=$(mktemp -d /tmp/ocps-cpu-XXXXXX)
  printf 'capacity: {cores: 2}\nlog_level: warn\n' >"$work/config.yaml"
  # Requests without a token: a listener that needs none, in a build that has them.
  local listen=(--listen 127.0.0.1:$port)
  [[ $("$tree/build-bench/cmd/ocps-proxyd" --help) == *--listen-unauthenticated* ]] &&
    listen=(--listen-unauthenticated 127.0.0.1:$port=bench)
  # ... and in a build with policies, principal bench may run as nobody.
  [[ $("$tree/build-bench/cmd/ocps-proxyd" --help) == *--listen-unauthenticated* ]] &&
    echo 'principals: {bench: {run_as: [nobody]}}' >>"$work/config.yaml"
  "$tree/build-bench/cmd/ocps-proxyd" "${listen[@]}" --data-dir "$work/data" \
    --config "$work/config.yaml" 2>"$work/log" &
  dpid=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/v1/jobproxy/ping >/dev/null && break; sleep 0.05; done
  python3 "$tree/bench/tasks.py" $port 50 8 >/dev/null
  spid=$(ls "$work/data/shims" | grep -o '^[0-9]*' | head -1)
  d0=$(awk '{print $14 + $15}' /proc/$dpid/stat)
  s0=$(awk '{print $14 + $15 + $16 + $17}' /proc/$spid/stat)
  python3 "$tree/bench/tasks.py" $port 1000 8 >/dev/null || true # counts the warm-up too
  d1=$(awk '{print $14 + $15}' /proc/$dpid/stat)
  s1=$(awk '{print $14 + $15 + $16 + $17}' /proc/$spid/stat)
  printf '%-7s daemon %.3f ms/task   shim and tasks %.3f ms/task\n' "$label" \
    "$(echo "($d1 - $d0) * 1000 / $tick / 1000" | bc -l)" "$(echo "($s1 - $s0) * 1000 / $tick / 1000" | bc -l)"
  kill $dpid
  wait $dpid 2>/dev/null || true
  rm -rf "$work"
}
for _ in $(seq "${3:-3}"); do
  one "$1" before
  one "$2" after
done
