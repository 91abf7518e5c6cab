#!/usr/bin/env bash
# A TES task against the same container through the JobProxy API, in one
# run on this machine: create-to-COMPLETE latency of a one-executor TES
# task (POST /ga4gh/tes/v1/tasks, image ocps-test/busybox:1, command
# `true`) and of the same container submitted to /v1/jobproxy/submit,
# one task at a time, the two kinds alternating so that the machine's
# drift hits both alike. Latency is what a client sees: from just before
# its create request to the first poll (GET /v1/jobproxy/state/{id},
# which answers for both kinds, every 5 ms) that says COMPLETE. The TES
# task does all a TES task does (its host mapping, /tmp bound, its
# tes-log.json), with nothing to stage. Prints medians, p90s and the
# ratio for bench/README.md. Not a test.
#
# Needs the test dockerd with the busybox image (bash test/docker/setup.sh);
# it is neither started nor stopped here. Run as root:  bash bench/tes_run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-40}
IMAGE=ocps-test/busybox:1
curl -sf --unix-socket /var/run/docker.sock "http://localhost/v1.41/images/$IMAGE/json" >/dev/null ||
  { echo "no dockerd with $IMAGE: run test/docker/setup.sh" >&2; exit 1; }
[ -d build-bench ] || meson setup build-bench --buildtype=release -Dtests=disabled >/dev/null
ninja -C build-bench >/dev/null

work=$(mktemp -d /tmp/ocps-bench-tes-XXXXXX)
daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
cat >"$work/config.yaml" <<EOF
capacity: {cores: 8}
docker: {network: none, pull: never, instance: bench-tes-$$}
log_level: warn
principals: {bench: {run_as: [nobody], tes_user: nobody}}
EOF
./build-bench/cmd/ocps-proxyd --listen-unauthenticated 127.0.0.1:$port=bench --data-dir "$work/data" \
  --config "$work/config.yaml" 2>>"$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/v1/jobproxy/ping >/dev/null && break; sleep 0.05; done

python3 - "$port" "$N" "$IMAGE" <<'PY'
import http.client, json, statistics, sys, time
port, n, image = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

def call(method, path, body=None):
    conn.request(method, path, json.dumps(body) if body is not None else None,
                 {"Content-Type": "application/json"} if body is not None else {})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise SystemExit("%s %s: %d %s" % (method, path, r.status, data[:200]))
    return json.loads(data)

kinds = {
    "jobproxy": ("/v1/jobproxy/submit", {"user": "nobody", "container": {"image": image, "cmd": ["true"]}}),
    "tes": ("/ga4gh/tes/v1/tasks", {"executors": [{"image": image, "command": ["true"]}]}),
}

def one(kind):
    path, body = kinds[kind]
    t0 = time.monotonic()
    tid = call("POST", path, body)["id"]
    while True:
        st = call("GET", "/v1/jobproxy/state/" + tid)
        if st["code"] not in ("QUEUED", "INITIALIZING", "RUNNING"):
            break
        time.sleep(0.005)
    if st["code"] != "COMPLETE":
        raise SystemExit("%s task %s: %s" % (kind, tid, st))
    return (time.monotonic() - t0) * 1000

for kind in kinds:  # warm: the image's layers, the runner threads
    one(kind)
lat = {k: [] for k in kinds}
for i in range(n):
    order = list(kinds) if i % 2 == 0 else list(reversed(list(kinds)))
    for kind in order:
        lat[kind].append(one(kind))

def p90(v):
    return sorted(v)[int(0.9 * (len(v) - 1))]

for k, v in lat.items():
    print("%-9s n=%d  median %.1f ms  mean %.1f ms  p90 %.1f ms" % (k, len(v), statistics.median(v),
                                                                statistics.mean(v), p90(v)))
print("TES / JobProxy create-to-COMPLETE: median %.3f, mean %.3f (target <= 1.05)" % (
    statistics.median(lat["tes"]) / statistics.median(lat["jobproxy"]),
    statistics.mean(lat["tes"]) / statistics.mean(lat["jobproxy"])))
PY
