#!/usr/bin/env bash
# Container tasks, in one run on this machine: a trivial task (`true`)
# through the proxy end to end, against the same create/wait/start/remove
# issued straight to the Engine API by bench/docker_floor.c (the floor)
# and against `docker run --rm`; sequential and 8 in parallel; the
# proxy's own CPU time per container task, the floor's, the engine's
# (dockerd, containerd, its shims and runc) for the same tasks, and one
# Engine call's through libcurl against by hand (bench/engine_cost.c). Not a test: it prints figures
# for bench/README.md. Run as root on Debian 12:  bash bench/docker.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash test/docker/setup.sh >/dev/null
trap 'bash test/docker/teardown.sh >/dev/null' EXIT
[ -d build-bench ] || meson setup build-bench --buildtype=release -Dtests=disabled >/dev/null
ninja -C build-bench >/dev/null
cc -O2 -D_GNU_SOURCE -Ilib -Ibackends -I/usr/include/cjson -o build-bench/docker_floor \
  bench/docker_floor.c build-bench/libocps.a -lcurl -lcjson -lpthread
cc -O2 -D_GNU_SOURCE -Ilib -Ibackends -I/usr/include/cjson -o build-bench/engine_cost \
  bench/engine_cost.c build-bench/libocps.a -lcurl -lcjson -lpthread

IMAGE=ocps-test/busybox:1
N=${N:-40}
work=$(mktemp -d /tmp/ocps-bench-docker-XXXXXX)
daemon_pid=
# The engine's CPU for the same tasks: dockerd and containerd are moved into
# a cpuacct group of their own, which the shims and runc they start inherit
# (containers get groups of their own from runc), so the group's usage is
# the engine's work for the tasks and nothing else. Only a dockerd that
# test/docker/setup.sh started (ours to touch) is moved.
engine_cg=/sys/fs/cgroup/cpuacct/ocps-bench-engine
engine_pids=()
state=${OCPS_DOCKER_STATE:-/tmp/ocps-docker}
if [ -f "$state/dockerd.pid" ] && [ -d /sys/fs/cgroup/cpuacct ]; then
  dpid=$(cat "$state/dockerd.pid")
  if [ "$(cat /proc/$dpid/comm 2>/dev/null)" = dockerd ]; then
    engine_pids=("$dpid" $(pgrep -P "$dpid" -x containerd || true))
    mkdir -p "$engine_cg"
    for p in "${engine_pids[@]}"; do echo "$p" >"$engine_cg/cgroup.procs"; done
  fi
fi
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  rm -rf "$work"
  if [ -d "$engine_cg" ]; then
    for p in $(cat "$engine_cg/cgroup.procs"); do echo "$p" >/sys/fs/cgroup/cpuacct/cgroup.procs || true; done
    rmdir "$engine_cg" 2>/dev/null || true
  fi
  bash test/docker/teardown.sh >/dev/null
}
trap cleanup EXIT

port=18082
printf 'capacity: {cores: 8}\ndocker: {network: none, pull: never}\nlog_level: warn\n' > "$work/config.yaml"
# Principal bench may run its tasks as nobody (the policy every principal needs).
echo 'principals: {bench: {run_as: [nobody]}}' >> "$work/config.yaml"
# Requests without a token, as before authentication.
./build-bench/cmd/ocps-proxyd --listen-unauthenticated 127.0.0.1:$port=bench --data-dir "$work/data" \
  --config "$work/config.yaml" 2>>"$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/v1/jobproxy/ping >/dev/null && break; sleep 0.05; done
# The daemon's CPU time in ms from utime+stime (10 ms ticks, ended threads
# included): the fallback when perf cannot count task-clock exactly.
cpu_ms_now() {
  awk '{printf "%.3f\n", ($14 + $15) * 1000 / '"$(getconf CLK_TCK)"'}' /proc/$daemon_pid/stat
}

docker_run() { # N PARALLEL -> "mean_ms tasks_per_s"
  python3 - "$1" "$2" "$IMAGE" <<'PY'
import subprocess, sys, threading, time
n, par, image = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lat, lock, left = [], threading.Lock(), [n]
def w():
    while True:
        with lock:
            if left[0] == 0: return
            left[0] -= 1
        t0 = time.monotonic()
        subprocess.run(["/usr/bin/docker", "run", "--rm", "--network", "none", "--init",
                        "--user", "65534:65534", image, "true"], check=True)
        with lock: lat.append((time.monotonic() - t0) * 1000)
t0 = time.monotonic()
ts = [threading.Thread(target=w) for _ in range(par)]
[t.start() for t in ts]; [t.join() for t in ts]
print("%.1f %.2f" % (sum(lat) / len(lat), n / (time.monotonic() - t0)))
PY
}

# Warm-up: first container starts pay for page cache and dockerd's caches.
python3 bench/docker_tasks.py $port 4 1 $IMAGE >/dev/null
./build-bench/docker_floor 4 1 $IMAGE >/dev/null

perf_out=$work/perf.txt
if perf stat -e task-clock true >/dev/null 2>&1; then
  perf stat -e task-clock -x, -o "$perf_out" -p $daemon_pid &
  perf_pid=$!
fi
engine_ns() { [ ${#engine_pids[@]} -gt 0 ] && cat "$engine_cg/cpuacct.usage" || echo 0; }
# dockerd and containerd alone (their threads; not the shims and runc they start).
daemons_ticks() {
  local t=0 p
  for p in "${engine_pids[@]}"; do t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat))); done
  echo $t
}
c0=$(cpu_ms_now)
e0=$(engine_ns)
k0=$(daemons_ticks)
read -r proxy_seq_ms proxy_seq_tps < <(python3 bench/docker_tasks.py $port "$N" 1 $IMAGE)
read -r proxy_par_ms proxy_par_tps < <(python3 bench/docker_tasks.py $port "$N" 8 $IMAGE)
c1=$(cpu_ms_now)
e1=$(engine_ns)
k1=$(daemons_ticks)
if [ -n "${perf_pid:-}" ]; then kill -INT $perf_pid; wait $perf_pid || true; fi
read -r floor_seq_ms floor_seq_tps floor_seq_cpu < <(./build-bench/docker_floor "$N" 1 $IMAGE)
read -r floor_par_ms floor_par_tps floor_par_cpu < <(./build-bench/docker_floor "$N" 8 $IMAGE)
read -r run_seq_ms run_seq_tps < <(docker_run "$N" 1)
read -r run_par_ms run_par_tps < <(docker_run "$N" 8)
# One Engine API call's CPU time through libcurl against the same request
# written by hand, on the same connection and dockerd (bench/engine_cost.c).
engine_cost=$(./build-bench/engine_cost 200)
if [ -s "$perf_out" ] && grep -q task-clock "$perf_out"; then
  cpu_ms=$(awk -F, '/task-clock/ {printf "%.2f", $1 / (2 * '"$N"')}' "$perf_out")
  cpu_how="perf stat task-clock"
else
  cpu_ms=$(echo "scale=2; ($c1 - $c0) / (2 * $N)" | bc)
  cpu_how="utime+stime ticks"
fi

echo "machine: $(nproc) cores, kernel $(uname -r), dockerd $(dockerd --version | awk '{print $3}' | tr -d ,)"
printf '\n%-44s %10s %10s %10s %12s\n' "container task (true), $N tasks" "proxy" "floor" "docker run" "proxy/floor"
printf '%-44s %8s ms %7s ms %7s ms %12.3f\n' "mean latency, sequential" "$proxy_seq_ms" "$floor_seq_ms" "$run_seq_ms" "$(echo "$proxy_seq_ms / $floor_seq_ms" | bc -l)"
printf '%-44s %8s ms %7s ms %7s ms %12.3f\n' "mean latency, 8 in parallel" "$proxy_par_ms" "$floor_par_ms" "$run_par_ms" "$(echo "$proxy_par_ms / $floor_par_ms" | bc -l)"
printf '%-44s %8s/s %7s/s %7s/s\n' "tasks per second, 8 in parallel" "$proxy_par_tps" "$floor_par_tps" "$run_par_tps"
printf '%-44s %8s ms (%s)\n' "proxy CPU time per container task" "$cpu_ms" "$cpu_how"
# The floor's own CPU (the same Engine calls through the same libcurl engine,
# no logs, no store, no HTTP): what any client of dockerd pays on this machine.
floor_cpu=$(echo "scale=2; ($floor_seq_cpu + $floor_par_cpu) / 2" | bc)
printf '%-44s %8s ms (its own clock, seq %s / par %s)\n' "floor CPU time per container task" "$floor_cpu" "$floor_seq_cpu" "$floor_par_cpu"
if [ ${#engine_pids[@]} -gt 0 ]; then
  engine_ms=$(echo "scale=2; ($e1 - $e0) / 1000000 / (2 * $N)" | bc)
  printf '%-44s %8s ms (dockerd, containerd, shims, runc: cpuacct)\n' "engine CPU time per container task" "$engine_ms"
  printf '%-44s %8.2f %% (target: under 3 %%)\n' "proxy CPU / engine CPU" "$(echo "100 * $cpu_ms / $engine_ms" | bc -l)"
  daemons_ms=$(echo "scale=2; ($k1 - $k0) * 1000 / $(getconf CLK_TCK) / (2 * $N)" | bc)
  printf '%-44s %8s ms (utime+stime ticks; proxy / these: %.2f %%)\n' "  of which dockerd and containerd alone" "$daemons_ms" "$(echo "100 * $cpu_ms / $daemons_ms" | bc -l)"
else
  echo "engine CPU time per container task: not measured (dockerd was not started by test/docker/setup.sh)"
fi
echo "$engine_cost"
