#!/usr/bin/env bash
# The README's test command: installs what is missing (Debian 12, as root),
# starts dockerd and a loopback registry for the container tests and a
# one-node Slurm cluster for the Slurm backend's, installs
# the OpenAPI linter and validator (npm ci), builds with AddressSanitizer
# and UBSan, and runs every test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --tests
# The container tests need a real dockerd, a loopback registry and the
# offline busybox image; stop afterwards only what this run started.
# The Slurm tests find the cluster through $OCPS_SLURM_STATE/env; of its
# daemons, stop only those this run started (a cluster found running is
# someone else's). The trap is set first: a setup that fails halfway still
# has its started daemons stopped.
export OCPS_SLURM_STATE=${OCPS_SLURM_STATE:-/tmp/ocps-slurm}
slurm_started=$(mktemp)
cleanup() {
  bash test/slurm/teardown.sh --started "$slurm_started" || true
  rm -f "$slurm_started"
  bash test/docker/teardown.sh
}
trap cleanup EXIT
bash test/docker/setup.sh
OCPS_SLURM_STARTED=$slurm_started bash test/slurm/setup.sh
# The OpenAPI linter and response validator, pinned in openapi/package-lock.json.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
(cd openapi && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
builddir=${BUILDDIR:-build-ci}
if [ ! -d "$builddir" ]; then
  meson setup "$builddir" -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debug
fi
ninja -C "$builddir"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
meson test -C "$builddir" --print-errorlogs --num-processes 2
