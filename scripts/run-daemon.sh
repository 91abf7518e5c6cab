#!/usr/bin/env bash
# The README's quick start: installs what is missing, builds, and runs
# ocps-proxyd in the foreground on 127.0.0.1:8080 with the process backend.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -d build ] || meson setup build --buildtype=release
ninja -C build
exec ./build/cmd/ocps-proxyd --listen 127.0.0.1:8080 --data-dir "${OCPS_DATA_DIR:-/var/lib/ocps-proxy}" "$@"
