#!/usr/bin/env bash
# bench/run.sh's figure (2), /bin/true tasks/s against the vfork floor, on
# a pure cgroup v2 kernel: User-Mode Linux, through test/cgroup2/run.sh
# (its root filesystem, its hostfs mounts). Uses build-bench as run.sh
# builds it (release, no sanitizer). Run as root:  bash bench/uml.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d build-bench ] || meson setup build-bench --buildtype=release -Dtests=disabled >/dev/null
ninja -C build-bench >/dev/null
cc -O2 -o build-bench/floor bench/floor.c
OCPS_UML_GUEST_ENV="export FLOOR=/build/floor N=${1:-300}" OCPS_UML_TIMEOUT=${OCPS_UML_TIMEOUT:-1200} \
  bash test/cgroup2/run.sh . build-bench build-bench/cmd/ocps-proxyd build-bench/cmd/ocps-shim \
  bench/uml_guest.py
