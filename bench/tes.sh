#!/usr/bin/env bash
# GA4GH TES list pages over 100,000 stored tasks (issue #13): GET
# /ga4gh/tes/v1/tasks?view=MINIMAL&page_size=256, walking every page by
# next_page_token, p99 latency (target: 20 ms); and the same over TES's
# filters (name_prefix, tag pairs) and in the BASIC view, for the record.
# Not a test: it prints figures for bench/README.md. Run as root on
# Debian 12:  bash bench/tes.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for p in wrk sqlite3 curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null
done
[ -d build-bench ] || meson setup build-bench --buildtype=release -Dtests=disabled >/dev/null
ninja -C build-bench >/dev/null

work=$(mktemp -d /tmp/ocps-bench-tes-XXXXXX)
port=18090
daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  # OCPS_BENCH_KEEP=1: the data dir stays, for EXPLAIN QUERY PLAN by hand.
  if [ -n "${OCPS_BENCH_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# A principal of its own (not an admin): it lists its own tasks, as a
# workflow manager's token does.
printf '%s\n' 'capacity: {cores: 2}' 'backends: [process]' \
  'principals: {bench: {run_as: [nobody]}}' > "$work/config.yaml"
./build-bench/cmd/ocps-proxyd --listen-unauthenticated 127.0.0.1:$port=bench --data-dir "$work/data" \
  --config "$work/config.yaml" --log-level warn 2>>"$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/v1/jobproxy/ping >/dev/null && break; sleep 0.05; done

# A task holding all the capacity keeps the rest queued: 100,000 stored tasks.
blocker=$(curl -sf -H 'Accept: text/plain' -H 'Content-Type: application/json' \
  -d '{"user":"nobody","cmd":"sleep 3600","cores":2}' http://127.0.0.1:$port/v1/jobproxy/submit | tr -d '\n')
wrk -t2 -c8 -d300s -s bench/tes_submit.lua http://127.0.0.1:$port/v1/jobproxy/submit >/dev/null &
wrk_pid=$!
while [ "$(sqlite3 "$work/data/ocps-proxy.db" 'select count(*) from tasks')" -lt 100000 ]; do sleep 1; done
kill $wrk_pid; wait $wrk_pid 2>/dev/null || true
stored=$(sqlite3 "$work/data/ocps-proxy.db" 'select count(*) from tasks')
prefix=$(sqlite3 "$work/data/ocps-proxy.db" "select substr(name, 1, instr(substr(name, 7), '-') + 6) from tasks where name like 'bench-%' limit 1")

echo "machine: $(nproc) cores, kernel $(uname -r); $stored tasks stored (queued)"
printf '%-58s %s\n' "GET /ga4gh/tes/v1/tasks ... (3 walks)" "pages p50 p99 max (ms)"
for q in "view=MINIMAL&page_size=256" \
         "view=MINIMAL&page_size=256&name_prefix=${prefix}1" \
         "view=MINIMAL&page_size=256&tag_key=wf&tag_value=w3" \
         "view=MINIMAL&page_size=256&tag_key=lab&tag_key=wf&tag_value=x&tag_value=w3" \
         "view=BASIC&page_size=256"; do
  walks=3
  [[ $q == view=BASIC* ]] && walks=1
  printf '%-58s %s\n' "$q" "$(python3 bench/tes_list.py $port $walks "$q")"
done

curl -sf -X DELETE http://127.0.0.1:$port/v1/jobproxy/delete/$blocker >/dev/null
for _ in $(seq 100); do
  curl -sf http://127.0.0.1:$port/v1/jobproxy/state/$blocker | grep -q '"CANCELED"' && break
  sleep 0.1
done
