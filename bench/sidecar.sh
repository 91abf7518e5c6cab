#!/usr/bin/env bash
# The sidecar image against the same daemon run on the host, in one run on
# this machine: the release build scripts/build-image.sh makes (the image's
# binaries and the host daemon are the same build), the same config but
# for host_root, the same client. Per round, each side in turn (the order
# alternates): N trivial container tasks (`true`) one after another,
# submit to end (bench/docker_tasks.py), and GET /v1/jobproxy/state/{id}
# for SECS s (wrk -t2 -c16) with the daemon's CPU per request; then the
# medians of sidecar / host. Also the image's size. Target: within 5%.
#
#   bash bench/sidecar.sh            (root; dockerd and ocps-test/busybox:1
#                                     already there: test/docker/setup.sh)
#   ROUNDS=3 N=20 SECS=10 bash bench/sidecar.sh
#
# The sidecar runs with --network host here (this dockerd has no bridge):
# its loopback is the host's, so both listen on 127.0.0.1 the same way.
# Each daemon gets a top-level cpu cgroup of its own with the same weight
# (--cgroup-parent for the container): otherwise the container competes as
# one group of 1024 shares beside every other container in /docker, while
# a daemon in the root group competes thread by thread, and on a loaded
# machine that, not the daemon, is what the figures would show.
# Never starts or stops dockerd; removes only its own container and the
# task containers labelled with its own instances.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3} n=${N:-20} secs=${SECS:-10}
IMAGE=ocps-test/busybox:1
DOCKER=/usr/bin/docker
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
bash scripts/install-deps.sh
for p in wrk curl bc; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null
done
curl -sf --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null ||
  { echo "dockerd does not answer (test/docker/setup.sh)" >&2; exit 1; }
$DOCKER image inspect $IMAGE >/dev/null || { echo "no $IMAGE (test/docker/setup.sh)" >&2; exit 1; }

bash scripts/build-image.sh
version=$(meson introspect --projectinfo build-image | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
image=ocps-proxy:$version

work=$(mktemp -d /tmp/ocps-bench-sidecar-XXXXXX)
chmod 755 "$work"
name=ocps-bench-sidecar-$$
host_port=18091 side_port=18092
daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  $DOCKER rm -f "$name" >/dev/null 2>&1 || true
  rmdir /sys/fs/cgroup/cpu/ocps-bench-host-$$ /sys/fs/cgroup/*/ocps-bench-side-$$ 2>/dev/null || true
  for inst in bench-host-$$ bench-sidecar-$$; do
    for c in $($DOCKER ps -aq --filter "label=org.ocps-proxy.instance=$inst"); do
      $DOCKER rm -f "$c" >/dev/null
    done
  done
  rm -rf "$work"
}
trap cleanup EXIT

config() { # PORT INSTANCE [host_root]
  printf 'log_level: warn\ncapacity: {cores: 8}\nbackends: [docker]\n'
  printf 'docker: {network: none, pull: never, instance: %s}\n' "$2"
  printf 'listen: [{address: "127.0.0.1:%s", unauthenticated: bench}]\n' "$1"
  printf 'principals: {bench: {run_as: [nobody]}}\n'
  [ -z "${3:-}" ] || printf 'host_root: %s\ndata_dir: /srv/ocps\n' "$3"
}
mkdir -p "$work/host" "$work/side/data" "$work/side/run"
config $host_port bench-host-$$ >"$work/host/config.yaml"
config $side_port bench-sidecar-$$ /host >"$work/side/config.yaml"

./build-image/cmd/ocps-proxyd --config "$work/host/config.yaml" --data-dir "$work/host/data" \
  2>>"$work/host/daemon.log" &
daemon_pid=$!
mkdir /sys/fs/cgroup/cpu/ocps-bench-host-$$
echo $daemon_pid >/sys/fs/cgroup/cpu/ocps-bench-host-$$/cgroup.procs
$DOCKER run -d --name "$name" --network host --cgroup-parent /ocps-bench-side-$$ \
  --read-only --tmpfs /tmp \
  --security-opt no-new-privileges --cap-drop ALL \
  --cap-add CHOWN --cap-add DAC_OVERRIDE --cap-add SETUID --cap-add SETGID \
  -v /var/run/docker.sock:/var/run/docker.sock \
  -v "$work/side/data:/srv/ocps" -v "$work/side/run:/run/ocps-proxy" \
  --mount type=bind,source=/,target=/host,readonly,bind-nonrecursive=true \
  -v "$work/side/config.yaml:/etc/ocps-proxy/config.yaml:ro" "$image" >/dev/null
side_pid=$($DOCKER inspect -f '{{.State.Pid}}' "$name")
for port in $host_port $side_port; do
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/v1/jobproxy/ping >/dev/null && break; sleep 0.1; done
  curl -sf http://127.0.0.1:$port/v1/jobproxy/ping >/dev/null || { echo "port $port: no daemon" >&2; $DOCKER logs "$name" >&2; exit 1; }
done

# Warm-up: the first containers pay for the page cache and dockerd's caches.
python3 bench/docker_tasks.py $host_port 3 1 $IMAGE >/dev/null
python3 bench/docker_tasks.py $side_port 3 1 $IMAGE >/dev/null
# The task whose state the GETs read, one per daemon.
task_of() { curl -sf "http://127.0.0.1:$1/v1/jobproxy/state" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"][0]["id"])'; }
host_task=$(task_of $host_port) side_task=$(task_of $side_port)

tick=$(getconf CLK_TCK)
latency() { # PORT -> mean ms of N sequential container tasks
  python3 bench/docker_tasks.py "$1" "$n" 1 $IMAGE | awk '{print $1}'
}
gets() { # PORT TASK PID -> "req/s cpu_us_per_request"
  local c0 c1 out
  c0=$(awk '{print $14 + $15}' /proc/$3/stat)
  out=$(wrk -t2 -c16 -d${secs}s "http://127.0.0.1:$1/v1/jobproxy/state/$2")
  c1=$(awk '{print $14 + $15}' /proc/$3/stat)
  echo "$out" | awk -v c="$((c1 - c0))" -v t="$tick" \
    '/requests in/ {n = $1} /Requests\/sec/ {r = $2} END {printf "%s %.1f\n", r, c * 1000000 / t / n}'
}
ratio() { echo "$1 / $2" | bc -l; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

echo "machine: $(nproc) cores, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), dockerd $(dockerd --version | awk '{print $3}' | tr -d ,)"
lat_r=() lat_runs=() get_r=() get_runs=() cpu_r=() cpu_runs=()
for i in $(seq "$rounds"); do
  if ((i % 2)); then hl=$(latency $host_port); sl=$(latency $side_port)
  else sl=$(latency $side_port); hl=$(latency $host_port); fi
  if ((i % 2)); then read -r hg hc < <(gets $host_port "$host_task" $daemon_pid); read -r sg sc < <(gets $side_port "$side_task" $side_pid)
  else read -r sg sc < <(gets $side_port "$side_task" $side_pid); read -r hg hc < <(gets $host_port "$host_task" $daemon_pid); fi
  lat_r+=($(ratio "$sl" "$hl")) lat_runs+=("$sl/$hl")
  get_r+=($(ratio "$sg" "$hg")) get_runs+=("$sg/$hg")
  cpu_r+=($(ratio "$sc" "$hc")) cpu_runs+=("$sc/$hc")
done
size=$($DOCKER image inspect -f '{{.Size}}' "$image")
printf '%-56s %.3f (ms, sidecar/host: %s)\n' "container task latency, sequential, sidecar / host" "$(median "${lat_r[@]}")" "${lat_runs[*]}"
printf '%-56s %.3f (sidecar/host: %s)\n' "GET state/s, 16 connections, sidecar / host" "$(median "${get_r[@]}")" "${get_runs[*]}"
printf '%-56s %.3f (us, sidecar/host: %s)\n' "daemon CPU per GET, sidecar / host" "$(median "${cpu_r[@]}")" "${cpu_runs[*]}"
printf '%-56s %s bytes (%.1f MiB)\n' "image $image" "$size" "$(echo "$size / 1048576" | bc -l)"
