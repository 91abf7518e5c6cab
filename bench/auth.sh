#!/usr/bin/env bash
# What authentication costs, as ratios measured in the same run:
#   (5) durable submits/s and GET state/s with a bearer token, against the
#       same requests on a listener that needs none (target: within 10%);
#   (6) GET state/s over TLS with a token, against nginx serving the same
#       bytes over TLS with the same certificate (target: 0.5 or better).
# One daemon (release build) with three listeners: 127.0.0.1 without
# authentication (principal "bench"), 127.0.0.1 with tokens, https with
# tokens; the token is bench's, so both sides see the same tasks. ROUNDS
# rounds (default 3), each side's run alternating which goes first; a
# round's ratio compares its two runs, the figure is the median of the
# rounds. Submits pile up queued (a task holding every core keeps them
# there), so each round of submits starts a fresh daemon.
# Not a test. Run as root on Debian 12:  bash bench/auth.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
for p in wrk nginx-light curl bc gnutls-bin; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null
done
[ -d build-bench ] || meson setup build-bench --buildtype=release -Dtests=disabled >/dev/null
ninja -C build-bench >/dev/null
rounds=${1:-3}
secs=${SECS:-10}

work=$(mktemp -d /tmp/ocps-bench-auth-XXXXXX)
daemon_pid= nginx_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The server's certificate: ECDSA P-256, for 127.0.0.1, from a CA made here.
pki=$work/pki
mkdir -p "$pki"
ct() { certtool "$@" >/dev/null 2>&1; }
ct --generate-privkey --key-type=ecdsa --outfile "$pki/ca.key"
printf 'cn = "bench CA"\nca\ncert_signing_key\nexpiration_days = 2\n' >"$pki/ca.tmpl"
ct --generate-self-signed --load-privkey "$pki/ca.key" --template "$pki/ca.tmpl" --outfile "$pki/ca.pem"
ct --generate-privkey --key-type=ecdsa --outfile "$pki/server.key"
printf 'cn = "127.0.0.1"\nip_address = "127.0.0.1"\ntls_www_server\nsigning_key\nexpiration_days = 2\n' \
  >"$pki/server.tmpl"
ct --generate-certificate --load-privkey "$pki/server.key" --load-ca-certificate "$pki/ca.pem" \
  --load-ca-privkey "$pki/ca.key" --template "$pki/server.tmpl" --outfile "$pki/server.pem"

open=18180 authed=18181 tls=18182 ngx=18183 ngx_tls=18184
daemon=./build-bench/cmd/ocps-proxyd
start_daemon() {
  rm -rf "$work/data"
  cat >"$work/config.yaml" <<CFG
capacity: {cores: 2}
log_level: warn
principals: {bench: {run_as: [nobody]}}
tls: {cert: $pki/server.pem, key: $pki/server.key}
listen:
  - {address: 127.0.0.1:$open, unauthenticated: bench}
  - 127.0.0.1:$authed
  - https://127.0.0.1:$tls
CFG
  $daemon --config "$work/config.yaml" --data-dir "$work/data" 2>>"$work/daemon.log" &
  daemon_pid=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$open/v1/jobproxy/ping >/dev/null && break; sleep 0.05; done
  curl -sf http://127.0.0.1:$open/v1/jobproxy/ping >/dev/null || { cat "$work/daemon.log"; exit 1; }
  token=$($daemon token create --data-dir "$work/data" --principal bench)
  # Every core held: the submits stay queued.
  curl -sf -H 'Content-Type: application/json' -H 'Accept: text/plain' \
    -d '{"user":"nobody","cmd":"sleep 3600","cores":2}' \
    http://127.0.0.1:$open/v1/jobproxy/submit >"$work/blocker"
}
stop_daemon() {
  curl -sf -X DELETE "http://127.0.0.1:$open/v1/jobproxy/delete/$(tr -d '\n' <"$work/blocker")" >/dev/null || true
  kill "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=
}
# wrk's requests/s; the daemon's CPU per request (utime + stime, in us)
# goes to $work/cpu, a steadier figure than throughput on a shared machine.
tick=$(getconf CLK_TCK)
measure() { # wrk ARGS...
  local c0 c1 out
  c0=$(awk '{print $14 + $15}' /proc/$daemon_pid/stat)
  out=$(wrk "$@")
  c1=$(awk '{print $14 + $15}' /proc/$daemon_pid/stat)
  echo "$out" | awk -v c="$((c1 - c0))" -v t="$tick" \
    '/requests in/ {n = $1} END {printf "%.1f\n", c * 1000000 / t / n}' >"$work/cpu"
  echo "$out" | awk '/Requests\/sec/ {print $2}'
}
submits() { # PORT [token]
  OCPS_TOKEN=${2:-} measure -t2 -c8 -d${secs}s -s bench/submit.lua http://127.0.0.1:$1/v1/jobproxy/submit
}
gets() { # URL [token]
  if [ -n "${2:-}" ]; then measure -t2 -c16 -d${secs}s -H "Authorization: Bearer $2" "$1"
  else measure -t2 -c16 -d${secs}s "$1"; fi
}
ratio() { echo "$1 / $2" | bc -l; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"

# (5a) durable submits/s, 8 clients, a fresh daemon each round.
sub_r=() sub_runs=() sub_cpu=()
for i in $(seq "$rounds"); do
  start_daemon
  if ((i % 2)); then a=$(submits $open); ac=$(<"$work/cpu"); b=$(submits $authed "$token"); bc=$(<"$work/cpu")
  else b=$(submits $authed "$token"); bc=$(<"$work/cpu"); a=$(submits $open); ac=$(<"$work/cpu"); fi
  stop_daemon
  sub_r+=($(ratio "$b" "$a")) sub_runs+=("$b/$a") sub_cpu+=("$bc/$ac")
done

# (5b), (6): GET state/{id} of one task, token or none, https against nginx.
start_daemon
id=$(curl -sf -H 'Accept: text/plain' -H 'Content-Type: application/json' \
  -d '{"user":"nobody","cmd":"true","cores":1}' http://127.0.0.1:$open/v1/jobproxy/submit | tr -d '\n')
mkdir -p "$work/www"
curl -sf http://127.0.0.1:$open/v1/jobproxy/state/$id >"$work/www/state.json"
cat >"$work/nginx.conf" <<NGX
worker_processes 2; daemon off; pid $work/nginx.pid; error_log $work/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  server { listen 127.0.0.1:$ngx; root $work/www; }
  server {
    listen 127.0.0.1:$ngx_tls ssl; root $work/www;
    ssl_certificate $pki/server.pem; ssl_certificate_key $pki/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305;
  }
}
NGX
nginx -c "$work/nginx.conf" & nginx_pid=$!
sleep 0.5
state=/v1/jobproxy/state/$id
get_r=() get_runs=() get_cpu=() tls_r=() tls_runs=() tls_cost=() ngx_cost=()
for i in $(seq "$rounds"); do
  if ((i % 2)); then
    a=$(gets http://127.0.0.1:$open$state); ac=$(<"$work/cpu")
    b=$(gets http://127.0.0.1:$authed$state "$token"); bc=$(<"$work/cpu")
  else
    b=$(gets http://127.0.0.1:$authed$state "$token"); bc=$(<"$work/cpu")
    a=$(gets http://127.0.0.1:$open$state); ac=$(<"$work/cpu")
  fi
  get_r+=($(ratio "$b" "$a")) get_runs+=("$b/$a") get_cpu+=("$bc/$ac")
  if ((i % 2)); then p=$(gets https://127.0.0.1:$tls$state "$token"); n=$(gets https://127.0.0.1:$ngx_tls/state.json)
  else n=$(gets https://127.0.0.1:$ngx_tls/state.json); p=$(gets https://127.0.0.1:$tls$state "$token"); fi
  tls_r+=($(ratio "$p" "$n")) tls_runs+=("$p/$n")
  np=$(wrk -t2 -c16 -d${secs}s http://127.0.0.1:$ngx/state.json | awk '/Requests\/sec/ {print $2}')
  tls_cost+=($(ratio "$p" "$b")) ngx_cost+=($(ratio "$n" "$np"))
done
kill $nginx_pid; wait $nginx_pid 2>/dev/null || true; nginx_pid=
stop_daemon

printf '\n%-58s %s\n' "figure" "median (runs)"
printf '%-58s %.3f (%s)\n' "(5) durable submits/s, token / none" "$(median "${sub_r[@]}")" "${sub_runs[*]}"
printf '%-58s %s\n' "    daemon CPU per submit, token / none (us)" "${sub_cpu[*]}"
printf '%-58s %.3f (%s)\n' "(5) GET state/s, token / none" "$(median "${get_r[@]}")" "${get_runs[*]}"
printf '%-58s %s\n' "    daemon CPU per GET, token / none (us)" "${get_cpu[*]}"
printf '%-58s %.3f (%s)\n' "(6) GET state/s over TLS with a token, proxy / nginx" "$(median "${tls_r[@]}")" "${tls_runs[*]}"
printf '%-58s %.3f\n' "    the proxy's TLS: https / http, both with a token" "$(median "${tls_cost[@]}")"
printf '%-58s %.3f\n' "    nginx's TLS: https / http" "$(median "${ngx_cost[@]}")"
