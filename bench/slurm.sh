#!/usr/bin/env bash
# Slurm tasks, in one run on this machine, against a one-node cluster of
# its own (test/slurm/setup.sh in its own state dir and ports, never the
# tests' cluster):
#   (a) submits/s straight to slurmrestd by bench/slurm_submit.c (the
#       floor: the backend's own submit body and token, one submit after
#       the other on one connection, as the proxy's start thread makes
#       them);
#   (b) the same number of submits/s through the proxy (cmd_backend:
#       slurm), from the first HTTP submit until slurmrestd has answered
#       the proxy's last submit (bench/slurm_tasks.py), alternating with
#       (a): ROUNDS pairs, each proxy run against the mean of the floor
#       runs around it, the median of those ratios reported; each run
#       starts with no job of the run before it pending;
#   (c) the proxy's CPU time (utime+stime of /proc/PID/stat) per task
#       over the (b) runs: HTTP submit, store, slurmrestd submit, and the
#       poller meanwhile;
#   (d) the proxy's CPU time per minute while it follows PENDING pending
#       jobs, quiet (nothing else changes in the cluster) and busy (a
#       job of someone else's starts and ends every second, so the job
#       list changes at every poll, as on a cluster in use).
# The jobs pend because they go to a partition that is DOWN ("held",
# made here with scontrol): slurmctld queues them, gives them the reason
# PartitionDown and keeps them in its job list, which is all the proxy
# sees of a pending job - the list slurmrestd returns is the same size
# whether the jobs wait for a down partition or for a full cluster. The
# busy phase's jobs run in the partition "debug" beside it.
# Every job of the run is named ocps-bench-PID and only those are
# cancelled afterwards; of the cluster's daemons only those this run
# started are stopped. Not a test: it prints figures for bench/README.md.
# Run as root on Debian 12:  bash bench/slurm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-500}
ROUNDS=${ROUNDS:-3}
PENDING=${PENDING:-10000}
MEASURE=${MEASURE:-60} # seconds of each (d) phase
bash scripts/install-deps.sh

export OCPS_SLURM_STATE=${OCPS_BENCH_SLURM_STATE:-/tmp/ocps-bench-slurm}
# Below the kernel's ephemeral ports (32768-60999): a client's connection
# could hold one of them when slurmd binds.
export OCPS_SLURM_PORT_BASE=${OCPS_BENCH_SLURM_PORT_BASE:-21817}
# 10,000 pending jobs and the runs' own: past slurmctld's default of 10,000.
export OCPS_SLURM_EXTRA_CONF="MaxJobCount=100000"
name=ocps-bench-$$
work=$(mktemp -d /tmp/ocps-bench-slurm-XXXXXX)
# The jobs' users reach their output directories through it.
chmod 0711 "$work"
daemon_pid=
cleanup() {
  local rc=$?
  [ "$rc" -eq 0 ] || tail -n 20 "$work/daemon.log" 2>/dev/null >&2 || true
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  if [ -n "${SLURM_CONF:-}" ]; then scancel --name="$name" 2>/dev/null || true; fi
  bash test/slurm/teardown.sh --started "$work/started" >/dev/null || true
  # A slurmctld this run started and stopped leaves its jobs in its state
  # dir, to be read again by the next start: the next run's job lists
  # would hold them (for MinJobAge). Its cluster, its jobs: gone with it.
  if grep -qx slurmctld "$work/started" 2>/dev/null && [ ! -e "$OCPS_SLURM_STATE/slurmctld.pid" ]; then
    rm -rf "$OCPS_SLURM_STATE/ctld"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
OCPS_SLURM_STARTED=$work/started bash test/slurm/setup.sh >/dev/null
# shellcheck disable=SC1091
. "$OCPS_SLURM_STATE/env"
export SLURM_CONF
scontrol show partition held >/dev/null 2>&1 ||
  scontrol create PartitionName=held Nodes="$OCPS_SLURM_NODE" State=DOWN MaxTime=INFINITE

[ -d build-bench ] || meson setup build-bench --buildtype=release -Dtests=disabled >/dev/null
ninja -C build-bench >/dev/null
cc -O2 -D_GNU_SOURCE -Ilib -Ibackends -I/usr/include/cjson -o build-bench/slurm_submit \
  bench/slurm_submit.c build-bench/libocps.a -lcurl -lcjson -lnettle -lpthread

# The task of every run: what a JobProxy client sends for a trivial
# command; the daemon adds nothing the harness does not (no walltime or
# cputime maximum in its policy below). A fraction of a core (Slurm
# rounds it up to one CPU): a principal's cores quota is at most 1024,
# and 10,000 tasks of one core each would not fit in it. The partition
# is the task's tag, so the harness's jobs go where the proxy's do.
task='{"user": "nobody", "cmd": ["/bin/true"], "cores": 0.1, "memory": "100M", "name": "'$name'",
  "tags": {"slurm.partition": "held"}}'
# The harness's jobs write nowhere the proxy's would not: files under a
# directory of their own (they never run, in the held partition).
mkdir -m 1777 "$work/out"

port=18083
# info: bench/slurm_tasks.py reads each task's handover to Slurm from the
# log (one line a task, beside the audit line every submit has anyway).
cat >"$work/config.yaml" <<EOF
log_level: info
cmd_backend: slurm
slurm:
  socket: $OCPS_SLURM_SOCKET
  jwt_key: $OCPS_SLURM_JWT_KEY
  output_dir: $work/slurm-output
# Slurm queues: nothing here should hold tasks back before it. An admin
# reads /metrics (active() below).
principals:
  bench:
    admin: true
    run_as: [nobody]
    quota: {queued: 1000000, running: 1000000, cores: 1024, memory: 1000T}
EOF
./build-bench/cmd/ocps-proxyd --listen-unauthenticated 127.0.0.1:$port=bench \
  --data-dir "$work/data" --config "$work/config.yaml" 2>>"$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/v1/jobproxy/ping >/dev/null && break; sleep 0.05; done
curl -sf http://127.0.0.1:$port/v1/jobproxy/ping >/dev/null || { echo "the daemon did not start" >&2; exit 1; }

hz=$(getconf CLK_TCK)
# ticks PID: utime+stime of a process, its ended threads included.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pending() { squeue -h -n "$name" -p held -t PD -o %i | wc -l; }
# The proxy's tasks not yet ended.
active() {
  curl -sf http://127.0.0.1:$port/metrics |
    awk '/^ocps_tasks\{/ && /backend="slurm"/ {n += $NF} END {print n + 0}'
}
# expect_pending N: exactly the N jobs of the last run wait in Slurm (a
# run that was refused or lost jobs does not count).
expect_pending() {
  local got
  got=$(pending)
  [ "$got" -eq "$1" ] || { echo "expected $1 pending jobs, found $got" >&2; exit 1; }
}
# After each run its jobs are cancelled and the proxy has seen its tasks
# end, so that no run pays for the one before it: the queue does not
# grow from run to run, and the proxy's poller, idle without tasks, does
# not ask for the job list while the floor submits. (Cancelled jobs stay
# in slurmctld's list for MinJobAge, 300 s, as they would on any cluster.)
clear_run() {
  scancel --name="$name" --partition=held --state=PENDING
  for _ in $(seq 600); do [ "$(pending)" -eq 0 ] && [ "$(active)" -eq 0 ] && return 0; sleep 0.1; done
  echo "the run's jobs did not go away" >&2
  exit 1
}
floor() { ./build-bench/slurm_submit "$1" "$OCPS_SLURM_SOCKET" "$OCPS_SLURM_JWT_KEY" "$task" "$work/out"; }
proxy() { python3 bench/slurm_tasks.py $port "$1" 8 "$task" "$work/daemon.log"; }

# Warm-up: slurmrestd's and slurmctld's first submits, the daemon's first.
floor 100 >/dev/null
clear_run
proxy 100 >/dev/null
clear_run

floors=() proxies=() ratios=() floor_cpu=() listed=()
proxy_ticks=0
read -r f floor_ms < <(floor "$N")
expect_pending "$N"
clear_run
floors+=("$f") floor_cpu+=("$floor_ms")
for ((r = 0; r < ROUNDS; r++)); do
  # What a whole job list holds when the proxy asks for one: every job
  # slurmctld keeps, the earlier runs' cancelled ones included.
  listed+=("$(squeue -h -t all -o %i | wc -l)")
  t0=$(ticks $daemon_pid)
  p=$(proxy "$N")
  proxy_ticks=$((proxy_ticks + $(ticks $daemon_pid) - t0))
  expect_pending "$N"
  clear_run
  read -r f floor_ms < <(floor "$N")
  expect_pending "$N"
  clear_run
  prev=${floors[-1]}
  floors+=("$f") floor_cpu+=("$floor_ms") proxies+=("$p")
  ratios+=("$(echo "2 * $p / ($prev + $f)" | bc -l)")
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
cpu_per_task=$(echo "scale=3; $proxy_ticks * 1000 / $hz / ($ROUNDS * $N)" | bc)

# (d): the proxy follows PENDING jobs of its own tasks.
proxy "$PENDING" >/dev/null
expect_pending "$PENDING"
rest_pid=$(cat "$OCPS_SLURM_STATE/slurmrestd.pid")
ctld_pid=$(cat "$OCPS_SLURM_STATE/slurmctld.pid")
# per_minute PID T0 SECONDS: ms of CPU per minute since T0 ticks.
per_minute() { echo "scale=1; ($(ticks "$1") - $2) * 1000 / $hz * 60 / $3" | bc; }
# Past the submits' short polls: the poller has backed off by now.
sleep 10
d0=$(ticks $daemon_pid) r0=$(ticks "$rest_pid") c0=$(ticks "$ctld_pid")
sleep "$MEASURE"
quiet=$(per_minute $daemon_pid "$d0" "$MEASURE") quiet_rest=$(per_minute "$rest_pid" "$r0" "$MEASURE")
quiet_ctld=$(per_minute "$ctld_pid" "$c0" "$MEASURE")
d0=$(ticks $daemon_pid) r0=$(ticks "$rest_pid") c0=$(ticks "$ctld_pid")
for _ in $(seq "$MEASURE"); do
  sbatch -Q -p debug -J "$name" --uid=nobody -o /dev/null -e /dev/null --wrap true >/dev/null
  sleep 1
done
busy=$(per_minute $daemon_pid "$d0" "$MEASURE") busy_rest=$(per_minute "$rest_pid" "$r0" "$MEASURE")
busy_ctld=$(per_minute "$ctld_pid" "$c0" "$MEASURE")
expect_pending "$PENDING"
rss=$(awk '/VmHWM/ {printf "%.1f MB", $2 / 1024}' /proc/$daemon_pid/status)

echo "machine: $(nproc) cores, kernel $(uname -r), $(slurmctld -V), $N submits a run, $ROUNDS rounds"
printf '\n%-52s %s\n' "(a) floor submits/s (slurm_submit)" "${floors[*]}"
printf '%-52s %s\n' "(b) proxy submits/s" "${proxies[*]}"
printf '%-52s %.3f (runs %s; target >= 0.9)\n' "(b) proxy / floor, median" "$median" \
  "$(printf '%.3f ' "${ratios[@]}")"
printf '%-52s %s\n' "(b) jobs in slurmctld's list at each proxy run" "${listed[*]}"
printf '%-52s %s ms (floor: %s ms of its own)\n' "(c) proxy CPU per Slurm task (submit)" "$cpu_per_task" \
  "$(printf '%s ' "${floor_cpu[@]}")"
printf '%-52s %s ms/min (slurmrestd %s, slurmctld %s)\n' "(d) proxy CPU, $PENDING pending jobs, quiet" \
  "$quiet" "$quiet_rest" "$quiet_ctld"
printf '%-52s %s ms/min (slurmrestd %s, slurmctld %s)\n' "(d) the same, a job starting and ending each second" \
  "$busy" "$busy_rest" "$busy_ctld"
printf '%-52s %s\n' "proxy peak RSS (VmHWM)" "$rss"
