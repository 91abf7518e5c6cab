#!/usr/bin/env bash
# The process backend on a real cgroup v2 kernel: boots User-Mode Linux
# (Debian's user-mode-linux: a Linux 6.1 kernel that runs as an ordinary
# process) with cgroup_no_v1=all on a root filesystem built from this
# host's files (rootfs.sh, cached), runs the guest tests in it against the
# daemon and shim built for the guest, and prints their TAP.
#
#   run.sh SOURCE_DIR BUILD_DIR OCPS_PROXYD OCPS_SHIM TEST.py
#
# What cannot run here (no linux.uml, no room for the root filesystem, a
# guest that does not finish) is a failure with its reason ("Bail out!"),
# never a skip: CI must run this suite.
#
# OCPS_UML_ROOTFS=systemd: boots systemd on a debootstrap'd Debian
# (systemd-rootfs.sh) instead of init.sh on busybox (rootfs.sh).
# OCPS_UML_CACHE: where root filesystems are kept (/var/cache/ocps-uml,
# or ~/.cache/ocps-uml when that is not writable); OCPS_UML_TIMEOUT: the
# guest's seconds (default 420); OCPS_UML_GUEST_ENV: shell lines the guest
# runs before the test (bench/uml.sh's settings).
set -uo pipefail

bail() {
  echo "Bail out! $*"
  exit 1
}
[ $# -eq 5 ] || bail "usage: run.sh SOURCE_DIR BUILD_DIR OCPS_PROXYD OCPS_SHIM TEST.py"
src=$(readlink -f "$1")
build=$(readlink -f "$2")
proxyd=$(readlink -f "$3")
shim=$(readlink -f "$4")
test=$(readlink -f "$5")
here=$(dirname "$(readlink -f "$0")")

uml=$(command -v linux.uml) ||
  bail "linux.uml not found: install Debian's user-mode-linux (scripts/install-deps.sh --tests does)"
[ "$(id -u)" -eq 0 ] || bail "needs root (the guest's hostfs files are written as this user)"
case $proxyd:$shim:$test in
  "$build"/*:"$build"/*:"$src"/*) ;;
  *) bail "the binaries must be in the build tree and the test in the source tree" ;;
esac

cache=${OCPS_UML_CACHE:-/var/cache/ocps-uml}
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/ocps-uml
  mkdir -p "$cache" || bail "cannot make the cache directory $cache"
fi
# A root filesystem is ~50 MB; the guest's memory file (mem=) as much again.
avail=$(df -Pk "$cache" | awk 'NR == 2 {print $4}')
[ "${avail:-0}" -ge 204800 ] || bail "no room for the root filesystem in $cache (${avail:-0} KiB free, 200 MiB needed)"
if [ "${OCPS_UML_ROOTFS:-busybox}" = systemd ]; then
  root=$(bash "$here/systemd-rootfs.sh" "$cache" "$proxyd" "$shim" 2>&1 | tail -n 1)
  [ -f "$root/.complete" ] || bail "cannot build the systemd root filesystem: $root"
  init=/lib/systemd/systemd
else
  root=$(bash "$here/rootfs.sh" "$cache" "$proxyd" "$shim" 2>&1 | tail -n 1)
  [ -f "$root/.complete" ] || bail "cannot build the root filesystem: $root"
  init=/init
fi

run=$build/test/cgroup2/run-$(basename "$test" .py)
rm -rf "$run"
mkdir -p "$run/uml"
# The guest's memory is a file in TMPDIR: on tmpfs when there is one with room.
memdir=$run/uml
shm=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 {print $4}')
if [ "${shm:-0}" -ge 524288 ]; then
  memdir=$(mktemp -d /dev/shm/ocps-uml.XXXXXX)
  trap 'rm -rf "$memdir"' EXIT
fi

cat >"$run/guest.sh" <<EOF
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export OCPS_PROXYD=/build${proxyd#"$build"} OCPS_SHIM=/build${shim#"$build"}
export PYTHONPATH=/src/test/integration:/src/test/cgroup2 PYTHONDONTWRITEBYTECODE=1
${OCPS_UML_GUEST_ENV:-}
cd /tmp
exec python3 /src${test#"$src"}
EOF

umid=ocps-$$
TMPDIR=$memdir timeout -k 10 "${OCPS_UML_TIMEOUT:-420}" "$uml" mem=384M "umid=$umid" "uml_dir=$run/uml" \
  root=/dev/root rootfstype=hostfs "rootflags=$root" rw con=null ssl=null con0=null,fd:1 quiet \
  cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 \
  "ocps_src=$src" "ocps_build=$build" "ocps_out=$run" "init=$init" </dev/null >"$run/guest.log" 2>&1
uml_rc=$?

[ -f "$run/guest.out" ] && cat "$run/guest.out"
if [ ! -f "$run/guest.rc" ]; then
  echo "# the guest's console ($run/guest.log):"
  tail -n 30 "$run/guest.log" | sed 's/^/#   /'
  if [ "$uml_rc" -eq 124 ] || [ "$uml_rc" -eq 137 ]; then
    bail "the guest did not finish in ${OCPS_UML_TIMEOUT:-420} s"
  fi
  bail "the guest did not finish (linux.uml exit $uml_rc)"
fi
exit "$(cat "$run/guest.rc")"
