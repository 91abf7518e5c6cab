#!/usr/bin/env bash
# The README's quick start: installs what is missing, builds, and runs
# ocps-proxyd in the foreground on 127.0.0.1:8080 with the process backend.
# The data dir is $OCPS_PROXY_DATA_DIR (the CLI looks there too), else
# /var/lib/ocps-proxy; at its first start the daemon writes an admin token
# to admin.token in it (mode 0600), which the README's curl examples send.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -d build ] || meson setup build --buildtype=release
ninja -C build
data_dir=${OCPS_PROXY_DATA_DIR:-${OCPS_DATA_DIR:-/var/lib/ocps-proxy}}
exec ./build/cmd/ocps-proxyd --listen 127.0.0.1:8080 --data-dir "$data_dir" "$@"
