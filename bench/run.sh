#!/usr/bin/env bash
# Benchmarks of ocps-proxyd on this machine, in one run, as ratios against
# floors measured in the same run. Not a test: it prints figures for
# bench/README.md. Run as root on Debian 12:  bash bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
for p in wrk nginx-light sqlite3 bc curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null
done
[ -d build-bench ] || meson setup build-bench --buildtype=release -Dtests=disabled >/dev/null
ninja -C build-bench >/dev/null
cc -O2 -o build-bench/floor bench/floor.c

work=$(mktemp -d /tmp/ocps-bench-XXXXXX)
daemon_pid= nginx_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

port=18080
start_daemon() { # $1 = config text
  printf '%s\n' "$1" 'principals: {bench: {run_as: [nobody]}}' > "$work/config.yaml"
  # Requests without a token, as the figures before authentication were made.
  ./build-bench/cmd/ocps-proxyd --listen-unauthenticated 127.0.0.1:$port=bench --data-dir "$work/data" \
    --config "$work/config.yaml" --log-level warn 2>>"$work/daemon.log" &
  daemon_pid=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/v1/jobproxy/ping >/dev/null && return; sleep 0.05; done
  echo "daemon did not start"; cat "$work/daemon.log"; exit 1
}
stop_daemon() { kill "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=; }
peak_rss_kb() { awk '/VmHWM/ {print $2}' /proc/$daemon_pid/status; }
rps() { awk '/Requests\/sec/ {print $2}'; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, kernel $(uname -r)"

# (4a) idle RSS
start_daemon "capacity: {cores: 2}"
sleep 1
idle_rss=$(peak_rss_kb)

# (1) durable submits/s, 8 clients: a task holding all the capacity keeps the rest queued.
blocker=$(curl -sf -H 'Accept: text/plain' -H 'Content-Type: application/json' \
  -d '{"user":"nobody","cmd":"sleep 3600","cores":2}' http://127.0.0.1:$port/v1/jobproxy/submit | tr -d '\n')
submit_rps=$(wrk -t2 -c8 -d10s -s bench/submit.lua http://127.0.0.1:$port/v1/jobproxy/submit | rps)

# (3) GET state/{id} against nginx serving a file of the same size.
id=$(curl -sf -H 'Accept: text/plain' -H 'Content-Type: application/json' \
  -d '{"user":"nobody","cmd":"true","cores":1}' http://127.0.0.1:$port/v1/jobproxy/submit | tr -d '\n')
curl -sf http://127.0.0.1:$port/v1/jobproxy/state/$id > "$work/state.json"
state_rps=$(wrk -t2 -c16 -d10s http://127.0.0.1:$port/v1/jobproxy/state/$id | rps)
mkdir -p "$work/www"; cp "$work/state.json" "$work/www/state.json"
cat > "$work/nginx.conf" <<NGX
worker_processes 2; daemon off; pid $work/nginx.pid; error_log $work/nginx.err;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:18081; root $work/www; } }
NGX
nginx -c "$work/nginx.conf" & nginx_pid=$!
sleep 0.5
nginx_rps=$(wrk -t2 -c16 -d10s http://127.0.0.1:18081/state.json | rps)
kill $nginx_pid; wait $nginx_pid 2>/dev/null || true; nginx_pid=

# (4b) RSS with 100,000 stored tasks (the submits above plus more, all queued).
stored=$(curl -sf "http://127.0.0.1:$port/v1/jobproxy/state?limit=1" >/dev/null; sqlite3 "$work/data/ocps-proxy.db" 'select count(*) from tasks' 2>/dev/null || echo 0)
if [ "$stored" -lt 100000 ]; then
  wrk -t2 -c8 -d60s -s bench/submit.lua http://127.0.0.1:$port/v1/jobproxy/submit >/dev/null &
  wrk_pid=$!
  while [ "$(sqlite3 "$work/data/ocps-proxy.db" 'select count(*) from tasks')" -lt 100000 ]; do sleep 1; done
  kill $wrk_pid; wait $wrk_pid 2>/dev/null || true
fi
stored=$(sqlite3 "$work/data/ocps-proxy.db" 'select count(*) from tasks')
curl -sf "http://127.0.0.1:$port/v1/jobproxy/state?limit=2048" >/dev/null
full_rss=$(peak_rss_kb)
# Tasks outlive the daemon by design: cancel the one that held the capacity.
curl -sf -X DELETE http://127.0.0.1:$port/v1/jobproxy/delete/$blocker >/dev/null
for _ in $(seq 100); do
  curl -sf http://127.0.0.1:$port/v1/jobproxy/state/$blocker | grep -q '"CANCELED"' && break
  sleep 0.1
done
stop_daemon
rm -rf "$work/data"

# (2) trivial tasks completed per second, against the floor with the same parallelism.
# Three proxy runs, each between two runs of each floor, and the median of
# the ratios: the load other guests put on this host drifts within seconds.
start_daemon "capacity: {cores: 2}"
fl=($(./build-bench/floor 1000 20 fork)) vfl=($(./build-bench/floor 1000 20 vfork)) px=()
for i in 1 2 3; do
  px+=($(python3 bench/tasks.py $port 1000 8))
  fl+=($(./build-bench/floor 1000 20 fork))
  vfl+=($(./build-bench/floor 1000 20 vfork))
done
stop_daemon
# ratio_i = proxy_i / mean(floor_i, floor_i+1); prints "median (r1 r2 r3)" and the runs.
ratios() { # name of the floor array
  local -n f=$1
  local r=() i
  for i in 0 1 2; do r+=($(echo "${px[$i]} * 2 / (${f[$i]} + ${f[$((i + 1))]})" | bc -l)); done
  printf '%s\n' "${r[@]}" | sort -n | sed -n 2p | xargs printf '%.2f'
  printf ' (runs %.2f %.2f %.2f; proxy %s; floor %s)' "${r[@]}" "${px[*]}" "${f[*]}"
}

printf '\n%-48s %s\n' "figure" "value"
printf '%-48s %s\n' "(1) durable submits/s, 8 clients" "$submit_rps"
printf '%-48s %s\n' "(2) /bin/true tasks/s, proxy / fork floor" "$(ratios fl)"
printf '%-48s %s\n' "(2) /bin/true tasks/s, proxy / vfork floor" "$(ratios vfl)"
printf '%-48s %s / %s = %.2f\n' "(3) GET state/s, proxy / nginx" "$state_rps" "$nginx_rps" "$(echo "$state_rps / $nginx_rps" | bc -l)"
printf '%-48s %s MB\n' "(4) peak RSS idle" "$(echo "scale=1; $idle_rss / 1024" | bc)"
printf '%-48s %s MB (%s tasks)\n' "(4) peak RSS with stored tasks" "$(echo "scale=1; $full_rss / 1024" | bc)" "$stored"
